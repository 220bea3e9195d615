/**
 * Reads full-database images (level-9 snapshots, and the level-0 file of a
 * TXID published after continuity was lost) through the capture side's
 * descriptors (see database-files.ts): every committed frame of the current
 * WAL generation over the database file, consistent under the replicator's pin.
 */
import { dirname } from "node:path";
import type { LtxCompat } from "../format/index.js";
import type { RestartExpectation } from "./checkpointer.js";
import { dbSizeInPages, readDbPages } from "./database-file.js";
import type { DatabaseFiles } from "./database-files.js";
import type { UploadableLtx } from "./ltx-builder.js";
import { disposeLtx } from "./ltx-upload.js";
import type { PageChecksums } from "./page-checksums.js";
import { ReplicatorError } from "./replicator-error.js";
import { type BuiltSkeleton, SkeletonCollector } from "./skeleton.js";
import { type BuiltResync, buildResync, buildSnapshot, type SnapshotInput } from "./snapshotter.js";
import {
  initialCursor,
  readCommittedFrames,
  readFramePage,
  readWalHeader,
  WAL_HEADER_SIZE,
  type WalCursor,
  type WalHeader,
  type WalSegment,
} from "./wal-reader.js";

/** A full image read at the WAL's current end, encoded, with the capture position it leaves. */
export interface FullSnapshot extends BuiltResync {
  /** The level-9 snapshot's B-tree skeleton (only with a snapshot). */
  skeleton: BuiltSkeleton | undefined;
  cursor: WalCursor;
  walPages: Map<number, number>;
  expect: RestartExpectation | undefined;
  page1: Uint8Array | undefined;
}

/** What {@link readFullSnapshot} encodes besides the level-0 file (see `buildResync`). */
export interface FullSnapshotOptions {
  /** Rebuilt from the image. */
  checksums?: PageChecksums | undefined;
  /** Per-page checksums of the replica's state before (same page size): the level-0 file holds what differs. */
  previous?: PageChecksums | undefined;
  /** Also the level-9 snapshot (always without `previous`). */
  snapshot: boolean;
  compat?: LtxCompat | undefined;
}

/** Where a snapshot image is read: a capture position, and the TXID and time it is published at. */
interface SnapshotPosition {
  cursor: WalCursor;
  walPages: ReadonlyMap<number, number>;
  commit: number;
  txid: number;
  timestamp: number;
}

function emptyCursor(): WalCursor {
  return { salt1: 0, salt2: 0, offset: WAL_HEADER_SIZE, checksum1: 0, checksum2: 0 };
}

function sameGeneration(a: WalHeader | undefined, b: WalHeader | undefined): boolean {
  if (!a || !b) return a === b;
  return a.salt1 === b.salt1 && a.salt2 === b.salt2;
}

/**
 * Reads a consistent full image at TXID `txid` (every committed frame of the
 * current WAL generation over the database file) and encodes it as that
 * TXID's level-0 file, and as a level-9 snapshot when asked (see
 * `buildResync`), rebuilding `options.checksums` from it. Retried if the WAL
 * was restarted while reading (possible only when the pin was not effective).
 */
export async function readFullSnapshot(
  files: DatabaseFiles,
  txid: number,
  options: FullSnapshotOptions,
): Promise<FullSnapshot> {
  const pageSize = files.pageSize;
  for (let attempt = 0; ; attempt++) {
    const header = readWalHeader(files.wal);
    let segment: WalSegment | undefined;
    if (header) segment = readCommittedFrames(files.wal, header, initialCursor(header));
    const commit =
      segment && segment.commit > 0 ? segment.commit : dbSizeInPages(files.db, pageSize);
    const cursor = segment ? segment.end : emptyCursor();
    const walPages = segment?.pages ?? new Map<number, number>();
    const at = { cursor, walPages, commit, txid, timestamp: Date.now() };
    const collector =
      options.snapshot || !options.previous ? skeletonCollector(files, at, options) : undefined;
    const built = await buildResync({
      ...imageInput(files, at, options),
      ...(options.previous ? { previous: options.previous } : {}),
      snapshot: options.snapshot,
      ...(collector
        ? { onPage: (pgno: number, page: Uint8Array) => collector.add(pgno, page) }
        : {}),
    });
    if (!sameGeneration(header, readWalHeader(files.wal))) {
      disposeLtx(built.level0);
      if (built.snapshot) disposeLtx(built.snapshot);
      if (attempt >= 3) {
        throw new ReplicatorError(
          "WAL_CHANGED",
          "the WAL kept restarting while a snapshot was read",
        );
      }
      continue;
    }
    const p1 = walPages.get(1);
    const page1 =
      p1 !== undefined
        ? readFramePage(files.wal, p1, 1, cursor, pageSize)
        : readDbPages(files.db, pageSize, 1, 1);
    // Without a WAL generation there is none to continue yet: accept the first one that appears.
    const expect: RestartExpectation | undefined = header
      ? undefined
      : { oldSalt1: null, clean: true };
    const skeleton = built.snapshot ? collector?.finish() : undefined;
    return { ...built, skeleton, cursor, walPages, expect, page1 };
  }
}

/**
 * A snapshot of the state at the capture position itself (no new TXID: the
 * periodic snapshot), or undefined when the WAL generation moved on while it
 * was read.
 */
export async function readPositionSnapshot(
  files: DatabaseFiles,
  at: SnapshotPosition,
  compat?: LtxCompat,
): Promise<{ enc: UploadableLtx; skeleton: BuiltSkeleton | undefined } | undefined> {
  const { cursor, walPages } = at;
  const collector = skeletonCollector(files, at, { compat });
  const enc = await buildSnapshot({
    ...imageInput(files, at, { compat }),
    onPage: (pgno, page) => collector.add(pgno, page),
  });
  const skeleton = collector.finish();
  // Frames read above must still belong to the generation the position is in.
  const after = readWalHeader(files.wal);
  if (
    walPages.size > 0 &&
    (!after || after.salt1 !== cursor.salt1 || after.salt2 !== cursor.salt2)
  ) {
    disposeLtx(enc);
    return undefined;
  }
  return { enc, skeleton };
}

/** The builder inputs of the image at `at` (spooled next to the database when large). */
function imageInput(
  files: DatabaseFiles,
  at: SnapshotPosition,
  options: { checksums?: PageChecksums | undefined; compat?: LtxCompat | undefined },
): SnapshotInput {
  const { cursor, walPages, commit, txid, timestamp } = at;
  return {
    db: files.db,
    wal: files.wal,
    walPages,
    salts: cursor,
    pageSize: files.pageSize,
    commit,
    txid,
    timestamp,
    walOffset: WAL_HEADER_SIZE,
    walSize: cursor.offset - WAL_HEADER_SIZE,
    ...(options.checksums ? { checksums: options.checksums } : {}),
    ...(options.compat !== undefined ? { compat: options.compat } : {}),
    spoolDir: dirname(files.path),
  };
}

/** Collects the skeleton of the snapshot of the image at `at`, encoded like it. */
function skeletonCollector(
  files: DatabaseFiles,
  at: SnapshotPosition,
  options: { compat?: LtxCompat | undefined },
): SkeletonCollector {
  const { commit, txid, timestamp } = at;
  return new SkeletonCollector({
    pageSize: files.pageSize,
    commit,
    txid,
    timestamp,
    ...(options.compat !== undefined ? { compat: options.compat } : {}),
  });
}
