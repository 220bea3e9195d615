/**
 * Restart: what the replica already holds, and whether the local database is
 * exactly at its newest position, so replication continues at the next TXID
 * without a snapshot (as Litestream resumes from its replica's position).
 *
 * - TXIDs come from what the writer can trust: the head object (written by a
 *   pagecast writer with compare-and-swap, parsed strictly) and, above it,
 *   the headers of the files themselves, never their names alone: an object
 *   named `0000/<2^53-3>-<2^53-3>.ltx` holding 3 bytes is ignored with a warning.
 * - The database is at the head's position when its page size and size in
 *   pages match and its database checksum equals the head's `postApplyChecksum`,
 *   for one of: the state at the end of the WAL range the newest file was
 *   read from (same WAL generation: a crash right after publishing), the
 *   database file alone (a clean stop, a TRUNCATE checkpoint; the WAL frames
 *   after it are new), or the whole WAL (nothing new). Anything else (a backup
 *   copied over the file, an offline VACUUM, writes checkpointed while nobody
 *   replicated) takes a snapshot, and the reason is logged.
 */
import { existsSync } from "node:fs";
import { lockPgno, pageChecksumInto } from "../format/checksum.js";
import { decodeLtxHeader, LTX_HEADER_SIZE, LTX_TRAILER_SIZE } from "../format/index.js";
import {
  fileTime,
  type HeadObject,
  LayoutError,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { NotFoundError, StoreAbortedError, StoreRequestError } from "../storage/store-errors.js";
import type { Capture, CapturePosition } from "./capture.js";
import { dbSizeInPages, readDbPages } from "./database-file.js";
import type { DatabaseFiles } from "./database-files.js";
import type { ReplicatorLogger } from "./logger.js";
import { PageChecksums } from "./page-checksums.js";
import type { Publisher } from "./publisher.js";
import { ReplicatorError } from "./replicator-error.js";
import { restore } from "./restore.js";
import {
  initialCursor,
  readCommittedFrames,
  readFramePage,
  readWalHeader,
  WAL_HEADER_SIZE,
  type WalCursor,
  type WalHeader,
} from "./wal-reader.js";

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function readHeader(store: ObjectStore, key: string) {
  const res = await store.get(key, { range: { offset: 0, length: LTX_HEADER_SIZE } });
  if (res.notModified) throw new Error("unexpected not-modified answer");
  return decodeLtxHeader(res.body);
}

/**
 * The listed files the writer may build on, and the newest TXID among them.
 * Files above the head are checked against their own headers (newest first,
 * down to the first sound one); those whose header does not match their name
 * are left out with a warning.
 */
export async function trustedListing(
  store: ObjectStore,
  listed: ReplicaFile[],
  head: HeadObject | undefined,
  log: ReplicatorLogger,
): Promise<{ files: ReplicaFile[]; txid: number }> {
  const floor = head?.txid ?? 0;
  const above = listed.filter((f) => f.maxTXID > floor).sort((a, b) => b.maxTXID - a.maxTXID);
  const ignored = new Set<string>();
  let txid = floor;
  for (const f of above) {
    if (f.maxTXID <= txid) break;
    try {
      if (f.size < LTX_HEADER_SIZE + LTX_TRAILER_SIZE) throw new Error(`only ${f.size} bytes`);
      const h = await readHeader(store, f.key);
      if (h.minTXID !== f.minTXID || h.maxTXID !== f.maxTXID) {
        throw new Error(`its header holds TXIDs ${h.minTXID}-${h.maxTXID}`);
      }
      if (f.level === SNAPSHOT_LEVEL && h.minTXID !== 1) throw new Error("not a snapshot");
      txid = f.maxTXID;
    } catch (err) {
      if (err instanceof NotFoundError) continue;
      if (isStorageError(err)) throw err;
      ignored.add(f.key);
      log.warn("ignoring a replica file whose content does not match its name", {
        key: f.key,
        problem: errorText(err),
      });
    }
  }
  return { files: listed.filter((f) => !ignored.has(f.key)), txid };
}

function isStorageError(err: unknown): boolean {
  return err instanceof StoreRequestError || err instanceof StoreAbortedError;
}

/** A resumable position: where capture continues, and the checksums of the state there. */
export interface ResumePoint extends CapturePosition {
  checksums: PageChecksums;
  /** Which state matched (for the log). */
  matched: "WAL range of the newest file" | "database file" | "whole WAL";
}

interface Candidate {
  matched: ResumePoint["matched"];
  cursor: WalCursor;
  walPages: Map<number, number>;
  commit: number;
}

/**
 * Finds whether the database is at the head's position (see the module
 * comment). Returns the position, or the reason a snapshot is needed.
 */
export async function findResumePoint(
  store: ObjectStore,
  files: DatabaseFiles,
  head: HeadObject | undefined,
  listing: { files: ReplicaFile[]; txid: number },
): Promise<ResumePoint | { reason: string }> {
  if (!head) return { reason: "no replicated position (start)" };
  if (head.postApplyChecksum === null) {
    return { reason: "the replica's head carries no database checksum" };
  }
  if (head.pageSize !== files.pageSize) {
    return { reason: `page size ${files.pageSize} differs from the replica's ${head.pageSize}` };
  }
  if (listing.txid !== head.txid) {
    return { reason: "files newer than the head (an upload whose head write never happened)" };
  }
  const header = readWalHeader(files.wal);
  const candidates: Candidate[] = [];
  const newest =
    listing.files.find((f) => f.maxTXID === head.txid && f.level === 0) ??
    listing.files.find((f) => f.maxTXID === head.txid && f.level === SNAPSHOT_LEVEL);
  if (newest && header) {
    try {
      const h = await readHeader(store, newest.key);
      if (
        (h.walSalt1 || h.walSalt2) &&
        h.walSalt1 === header.salt1 &&
        h.walSalt2 === header.salt2
      ) {
        const end = h.walOffset + h.walSize;
        const seg = readCommittedFrames(files.wal, header, initialCursor(header), { stopAt: end });
        if (seg.end.offset === end)
          candidates.push(candidate("WAL range of the newest file", seg, files));
      }
    } catch (err) {
      if (isStorageError(err)) throw err;
      // An unreadable header only rules out this candidate.
    }
  }
  const start: Candidate = {
    matched: "database file",
    cursor: header
      ? initialCursor(header)
      : { salt1: 0, salt2: 0, offset: WAL_HEADER_SIZE, checksum1: 0, checksum2: 0 },
    walPages: new Map(),
    commit: dbSizeInPages(files.db, files.pageSize),
  };
  if (header) {
    const whole = readCommittedFrames(files.wal, header, initialCursor(header));
    if (whole.transactions > 0) candidates.push(candidate("whole WAL", whole, files));
  }
  candidates.push(start);
  const sized = candidates.filter((c) => c.commit === head.commit);
  if (sized.length === 0) {
    return {
      reason:
        `database changed while not replicated (${candidates[candidates.length - 1]!.commit} pages, ` +
        `the replica's TXID ${head.txid} has ${head.commit})`,
    };
  }
  const sums = checksumCandidates(files, header, sized);
  for (let i = 0; i < sized.length; i++) {
    if (sums[i]!.value !== head.postApplyChecksum) continue;
    const c = sized[i]!;
    const p1 = c.walPages.get(1);
    const page1 =
      p1 !== undefined && header
        ? readFramePage(files.wal, p1, 1, header, files.pageSize).slice()
        : readDbPages(files.db, files.pageSize, 1, 1);
    return { ...c, page1, checksums: sums[i]! };
  }
  return {
    reason: `database changed while not replicated (checksum differs from the replica's TXID ${head.txid})`,
  };
}

function candidate(
  matched: Candidate["matched"],
  seg: { end: WalCursor; pages: Map<number, number>; commit: number },
  files: DatabaseFiles,
): Candidate {
  const commit = seg.commit > 0 ? seg.commit : dbSizeInPages(files.db, files.pageSize);
  return { matched, cursor: seg.end, walPages: seg.pages, commit };
}

/** The per-page checksums of each candidate state, in one pass over the database file. */
function checksumCandidates(
  files: DatabaseFiles,
  header: WalHeader | undefined,
  candidates: Candidate[],
): PageChecksums[] {
  const pageSize = files.pageSize;
  const sums = candidates.map(() => {
    const s = new PageChecksums();
    s.reset(pageSize);
    return s;
  });
  const commit = candidates[0]!.commit;
  const lock = lockPgno(pageSize);
  const pair = new Uint32Array(2);
  for (let first = 1; first <= commit; first += 256) {
    const count = Math.min(256, commit - first + 1);
    const batch = readDbPages(files.db, pageSize, first, count);
    for (let i = 0; i < count; i++) {
      const pgno = first + i;
      if (pgno === lock) continue;
      let dbSum: [number, number] | undefined;
      for (let c = 0; c < candidates.length; c++) {
        const frame = candidates[c]!.walPages.get(pgno);
        if (frame !== undefined && header) {
          pageChecksumInto(pgno, readFramePage(files.wal, frame, pgno, header, pageSize), pair);
          sums[c]!.setChecksum(pgno, pair[0]!, pair[1]!);
          continue;
        }
        if (!dbSum) {
          pageChecksumInto(pgno, batch.subarray(i * pageSize, (i + 1) * pageSize), pair);
          dbSum = [pair[0]!, pair[1]!];
        }
        sums[c]!.setChecksum(pgno, dbSum[0], dbSum[1]);
      }
    }
  }
  return sums;
}

/**
 * At start, with the database open: continues at the head's position when
 * the database is still there (capturing first what was committed while
 * nobody replicated, before the pin's bump write can restart the WAL), or
 * makes a snapshot due, logging why. Returns when the newest level-9
 * snapshot was published (0: none), from which the periodic one is due: a
 * continuity snapshot at start publishes a level-9 file only when needed.
 */
export async function resumeOrSnapshot(input: {
  store: ObjectStore;
  capture: Capture;
  pub: Publisher;
  head: HeadObject | undefined;
  listing: { files: ReplicaFile[]; txid: number };
  trackChecksums: boolean;
  log: ReplicatorLogger;
}): Promise<{ lastSnapshotAt: number }> {
  const { capture, pub, head, log } = input;
  const snapshots = [...pub.files.values()].filter((f) => f.level === SNAPSHOT_LEVEL);
  const lastSnapshotAt = Math.max(0, ...snapshots.map((f) => fileTime(f)));
  const files = capture.files!;
  let before = files.conns.dataVersion();
  let found: ResumePoint | { reason: string } = { reason: "no replicated position (start)" };
  // Read unpinned (see above): another connection may restart the WAL under
  // the read. Try again; past a few attempts, publish a snapshot instead.
  for (let attempt = 1; input.trackChecksums; attempt++) {
    try {
      found = await findResumePoint(input.store, files, head, input.listing);
      break;
    } catch (err) {
      if (!walChanged(err)) throw err;
      if (attempt === RESUME_ATTEMPTS) {
        found = { reason: "the WAL kept changing while the resume point was read" };
        break;
      }
      before = files.conns.dataVersion();
    }
  }
  if ("reason" in found || !head) {
    const reason = "reason" in found ? found.reason : "no replicated position (start)";
    if (head) log.info("publishing a snapshot at start", { reason });
    capture.setSnapshotReason(reason);
    capture.pin();
    return { lastSnapshotAt };
  }
  capture.adopt(found);
  pub.adoptHead(head, found.checksums);
  log.info("resuming from the replica's head without a snapshot", {
    txid: head.txid,
    matched: found.matched,
  });
  try {
    capture.scan({ pin: false });
  } catch (err) {
    if (!walChanged(err)) throw err;
    // Frames committed since the resume point may be gone: a snapshot.
    log.info("publishing a snapshot at start", { reason: "the WAL changed while resuming" });
    capture.setSnapshotReason("the WAL changed while resuming");
    capture.pin();
    return { lastSnapshotAt };
  }
  capture.pinAfterResume(before);
  return { lastSnapshotAt };
}

/** Attempts at reading the resume point while other connections restart the WAL. */
const RESUME_ATTEMPTS = 3;

function walChanged(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "WAL_CHANGED";
}

/**
 * The database file must exist at start; with `autoRestore`, a missing one is
 * restored from the replica first (`DB_MISSING` when the replica is empty too).
 */
export async function ensureDatabase(
  path: string,
  store: ObjectStore,
  autoRestore: boolean,
  log: ReplicatorLogger,
): Promise<void> {
  if (existsSync(path)) return;
  if (!autoRestore) throw new ReplicatorError("DB_MISSING", `database ${path} does not exist`);
  try {
    const res = await restore(store, path, { logger: log });
    log.info("database restored from replica", { txid: res.txid, path });
  } catch (err) {
    if (!(err instanceof LayoutError && err.code === "REPLICA_EMPTY")) throw err;
    throw new ReplicatorError(
      "DB_MISSING",
      `database ${path} does not exist and the replica ${store.url} is empty`,
    );
  }
}
