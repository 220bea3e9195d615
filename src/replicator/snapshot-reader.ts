/**
 * Reads full-database images for level-9 snapshots through the capture side's
 * descriptors (see database-files.ts): every committed frame of the current
 * WAL generation over the database file, consistent under the replicator's pin.
 */
import { dirname } from "node:path";
import type { RestartExpectation } from "./checkpointer.js";
import { dbSizeInPages, readDbPages } from "./database-file.js";
import type { DatabaseFiles } from "./database-files.js";
import type { UploadableLtx } from "./ltx-builder.js";
import { disposeLtx } from "./ltx-upload.js";
import type { PageChecksums } from "./page-checksums.js";
import { ReplicatorError } from "./replicator-error.js";
import { type BuiltSkeleton, SkeletonCollector } from "./skeleton.js";
import { buildSnapshot } from "./snapshotter.js";
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

/** A snapshot read at the WAL's current end, with the capture position it leaves. */
export interface FullSnapshot {
  enc: UploadableLtx;
  skeleton: BuiltSkeleton | undefined;
  cursor: WalCursor;
  walPages: Map<number, number>;
  expect: RestartExpectation | undefined;
  page1: Uint8Array | undefined;
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
 * current WAL generation over the database file), rebuilding `checksums`
 * from it. Retried if the WAL was restarted while reading (possible only
 * when the pin was not effective).
 */
export async function readFullSnapshot(
  files: DatabaseFiles,
  txid: number,
  checksums: PageChecksums | undefined,
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
    const { enc, skeleton } = await encode(
      files,
      { cursor, walPages, commit, txid, timestamp: Date.now() },
      checksums,
    );
    if (!sameGeneration(header, readWalHeader(files.wal))) {
      disposeLtx(enc);
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
    return { enc, skeleton, cursor, walPages, expect, page1 };
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
): Promise<{ enc: UploadableLtx; skeleton: BuiltSkeleton | undefined } | undefined> {
  const { cursor, walPages } = at;
  const { enc, skeleton } = await encode(files, at, undefined);
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

/** Encodes the image at `at` (spooled next to the database when large), with its B-tree skeleton. */
async function encode(
  files: DatabaseFiles,
  at: SnapshotPosition,
  checksums: PageChecksums | undefined,
): Promise<{ enc: UploadableLtx; skeleton: BuiltSkeleton | undefined }> {
  const { cursor, walPages, commit, txid, timestamp } = at;
  const pageSize = files.pageSize;
  const collector = new SkeletonCollector({ pageSize, commit, txid, timestamp });
  const enc = await buildSnapshot({
    db: files.db,
    wal: files.wal,
    walPages,
    salts: cursor,
    pageSize,
    commit,
    txid,
    timestamp,
    walOffset: WAL_HEADER_SIZE,
    walSize: cursor.offset - WAL_HEADER_SIZE,
    ...(checksums ? { checksums } : {}),
    onPage: (pgno, page) => collector.add(pgno, page),
    spoolDir: dirname(files.path),
  });
  return { enc, skeleton: collector.finish() };
}
