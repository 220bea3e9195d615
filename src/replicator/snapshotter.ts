/**
 * Builds LTX files from a full database image (level-9 snapshots, and the
 * level-0 file of a TXID published after continuity was lost) read from a
 * consistent view: every page's newest committed WAL frame when the current
 * WAL generation has one, else the database file. Under the replicator's pin, checkpointers can
 * only copy frames the replicator has already seen into the database file, so
 * pages read from the file are never newer than the WAL position.
 */
import { pageChecksumInto } from "../format/checksum.js";
import { type LtxCompat, lockPgno } from "../format/index.js";
import { readDbPages } from "./database-file.js";
import {
  type EncodedLtx,
  LtxBuilder,
  type LtxBuilderOptions,
  type UploadableLtx,
} from "./ltx-builder.js";
import { disposeLtx } from "./ltx-upload.js";
import type { PageChecksums } from "./page-checksums.js";
import { readFramePage, type WalCursor } from "./wal-reader.js";

/** Inputs of {@link buildSnapshot}. */
export interface SnapshotInput {
  /** File descriptors of the database and its WAL (when one exists). */
  db: number;
  wal: number | undefined;
  /** Newest committed frame offset of each page in the current WAL generation. */
  walPages: ReadonlyMap<number, number>;
  /** Salts of the current WAL generation (checked on every frame read). */
  salts: Pick<WalCursor, "salt1" | "salt2">;
  pageSize: number;
  /** Database size in pages. */
  commit: number;
  txid: number;
  timestamp: number;
  /** WAL range the snapshot covers (recorded in the header, as Litestream does). */
  walOffset: number;
  walSize: number;
  /** Rebuilt from the snapshot's pages when given. */
  checksums?: PageChecksums;
  /** Sees every page in ascending order (e.g. a `SkeletonCollector`). */
  onPage?: (pgno: number, page: Uint8Array) => void;
  /**
   * Directory for a temp file holding the encoded snapshot once it passes
   * `spoolAfter` bytes (default: kept in memory whatever its size). The
   * result then names its spool: put it with `putLtx`, release it with
   * `disposeLtx`.
   */
  spoolDir?: string;
  /** Bytes kept in memory before spooling (default 8 MiB). */
  spoolAfter?: number;
  /** Page encoding (default `"0.5.2"`; `"0.5.1"` for Litestream 0.5.0-0.5.15). See `LtxCompat`. */
  compat?: LtxCompat;
}

const BATCH_PAGES = 256;

/**
 * Feeds every page of the image (`1..commit`, the lock page excepted) to
 * `fn` in ascending order: the newest committed WAL frame of the page when
 * the generation has one, else the database file's. Yields to the event loop
 * between batches so large databases do not stall the application.
 */
async function forEachImagePage(
  input: SnapshotInput,
  fn: (pgno: number, page: Uint8Array) => void,
): Promise<void> {
  const { pageSize, commit } = input;
  const lock = lockPgno(pageSize);
  for (let first = 1; first <= commit; first += BATCH_PAGES) {
    const count = Math.min(BATCH_PAGES, commit - first + 1);
    const batch = readDbPages(input.db, pageSize, first, count);
    for (let i = 0; i < count; i++) {
      const pgno = first + i;
      if (pgno === lock) continue;
      const frame = input.walPages.get(pgno);
      const page =
        frame !== undefined && input.wal !== undefined
          ? readFramePage(input.wal, frame, pgno, input.salts, pageSize)
          : batch.subarray(i * pageSize, (i + 1) * pageSize);
      fn(pgno, page);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function builderOptions(input: SnapshotInput): LtxBuilderOptions {
  return {
    ...(input.spoolDir !== undefined ? { spoolDir: input.spoolDir } : {}),
    ...(input.spoolAfter !== undefined ? { spoolAfter: input.spoolAfter } : {}),
    ...(input.compat !== undefined ? { compat: input.compat } : {}),
  };
}

/** The header of a file holding the image at `input.txid` (WAL range and salts as Litestream records them). */
function imageHeader(input: SnapshotInput, minTXID: number) {
  return {
    pageSize: input.pageSize,
    commit: input.commit,
    minTXID,
    maxTXID: input.txid,
    timestamp: input.timestamp,
    walOffset: input.walOffset,
    walSize: input.walSize,
    walSalt1: input.salts.salt1,
    walSalt2: input.salts.salt2,
  };
}

/**
 * Encodes a snapshot `0009/0000000000000001-<txid>.ltx`: in memory, or (with
 * `spoolDir`, past `spoolAfter` bytes) in a temp file, so that memory stays
 * bounded whatever the database size.
 */
export function buildSnapshot(input: SnapshotInput & { spoolDir?: undefined }): Promise<EncodedLtx>;
export function buildSnapshot(input: SnapshotInput): Promise<UploadableLtx>;
export async function buildSnapshot(input: SnapshotInput): Promise<UploadableLtx> {
  const builder = new LtxBuilder(imageHeader(input, 1), builderOptions(input));
  try {
    input.checksums?.reset(input.pageSize);
    await forEachImagePage(input, (pgno, page) => {
      builder.page(pgno, page);
      input.checksums?.setChecksum(pgno, builder.lastPageChecksumHi, builder.lastPageChecksumLo);
      input.onPage?.(pgno, page);
    });
    return builder.finishForUpload();
  } catch (err) {
    builder.dispose();
    throw err;
  }
}

/** Inputs of {@link buildResync}. */
export interface ResyncInput extends SnapshotInput {
  /**
   * Per-page checksums of the replica's state at `txid - 1`, for this page
   * size: the level-0 file then holds only the pages that differ from it
   * (and page 1). Without them it holds every page.
   */
  previous?: PageChecksums | undefined;
  /** Also encode the level-9 snapshot `1-<txid>` (always encoded without `previous`). */
  snapshot: boolean;
}

/** What {@link buildResync} encoded. */
export interface BuiltResync {
  /** `0000/<txid>-<txid>.ltx`: takes a reader at `txid - 1` to the image (at TXID 1: `snapshot` itself). */
  level0: UploadableLtx;
  /** The level-0 file holds every page (no previous state was known). */
  full: boolean;
  /** `0009/0000000000000001-<txid>.ltx`, when asked for or when `full`. */
  snapshot?: UploadableLtx;
}

/**
 * Encodes the image read after continuity was lost as the next TXID of the
 * level-0 chain, the way Litestream keeps every level contiguous: a level-0
 * file `<txid>-<txid>` that brings the replica's state at `txid - 1` to the
 * image. With the per-page checksums of that state (`previous`) it holds
 * only the pages that differ (page 1 always: a file never goes empty), so a
 * continuity break costs what actually changed; without them, every page.
 * In the same pass, optionally, the level-9 snapshot of the image (a new
 * starting point for readers). `checksums` and `onPage` see every page.
 */
export async function buildResync(input: ResyncInput): Promise<BuiltResync> {
  const previous = input.previous;
  const options = builderOptions(input);
  const withSnapshot = input.snapshot || previous === undefined;
  // TXID 1's level-0 file is the snapshot 1-1 byte for byte: encoded once, uploaded twice.
  const shared = withSnapshot && input.txid === 1;
  const full = previous === undefined || shared;
  const level0 = shared ? undefined : new LtxBuilder(imageHeader(input, input.txid), options);
  let snapshot: LtxBuilder | undefined;
  let level0Done: UploadableLtx | undefined;
  try {
    if (withSnapshot) snapshot = new LtxBuilder(imageHeader(input, 1), options);
    input.checksums?.reset(input.pageSize);
    const pair = new Uint32Array(2);
    await forEachImagePage(input, (pgno, page) => {
      let hi: number;
      let lo: number;
      if (snapshot) {
        snapshot.page(pgno, page);
        hi = snapshot.lastPageChecksumHi;
        lo = snapshot.lastPageChecksumLo;
      } else {
        pageChecksumInto(pgno, page, pair);
        hi = pair[0]!;
        lo = pair[1]!;
      }
      if (level0 && (full || pgno === 1 || !previous!.matches(pgno, hi, lo))) {
        level0.page(pgno, page);
      }
      input.checksums?.setChecksum(pgno, hi, lo);
      input.onPage?.(pgno, page);
    });
    if (level0) level0Done = level0.finishForUpload();
    const snapshotDone = snapshot?.finishForUpload();
    const built: BuiltResync = { level0: (level0Done ?? snapshotDone)!, full };
    if (snapshotDone) built.snapshot = snapshotDone;
    return built;
  } catch (err) {
    if (level0Done) disposeLtx(level0Done);
    else level0?.dispose();
    snapshot?.dispose();
    throw err;
  }
}
