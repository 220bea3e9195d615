/**
 * Builds full-database LTX files (level-9 snapshots) from a consistent view:
 * every page's newest committed WAL frame when the current WAL generation has
 * one, else the database file. Under the replicator's pin, checkpointers can
 * only copy frames the replicator has already seen into the database file, so
 * pages read from the file are never newer than the WAL position.
 */
import { type LtxCompat, lockPgno } from "../format/index.js";
import { readDbPages } from "./database-file.js";
import { type EncodedLtx, LtxBuilder, type UploadableLtx } from "./ltx-builder.js";
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
 * Encodes a snapshot `0009/0000000000000001-<txid>.ltx`: in memory, or (with
 * `spoolDir`, past `spoolAfter` bytes) in a temp file, so that memory stays
 * bounded whatever the database size.
 */
export function buildSnapshot(input: SnapshotInput & { spoolDir?: undefined }): Promise<EncodedLtx>;
export function buildSnapshot(input: SnapshotInput): Promise<UploadableLtx>;
export async function buildSnapshot(input: SnapshotInput): Promise<UploadableLtx> {
  const { pageSize, commit } = input;
  const builder = new LtxBuilder(
    {
      pageSize,
      commit,
      minTXID: 1,
      maxTXID: input.txid,
      timestamp: input.timestamp,
      walOffset: input.walOffset,
      walSize: input.walSize,
      walSalt1: input.salts.salt1,
      walSalt2: input.salts.salt2,
    },
    {
      ...(input.spoolDir !== undefined ? { spoolDir: input.spoolDir } : {}),
      ...(input.spoolAfter !== undefined ? { spoolAfter: input.spoolAfter } : {}),
      ...(input.compat !== undefined ? { compat: input.compat } : {}),
    },
  );
  try {
    input.checksums?.reset(pageSize);
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
        builder.page(pgno, page);
        input.checksums?.setChecksum(pgno, builder.lastPageChecksumHi, builder.lastPageChecksumLo);
        input.onPage?.(pgno, page);
      }
      // Large databases: let the application's callbacks run between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return builder.finishForUpload();
  } catch (err) {
    builder.dispose();
    throw err;
  }
}
