/**
 * Where capture stands in the WAL (what Litestream's shadow WAL tracks): the
 * cursor after the last captured commit frame, the newest frame of each page
 * in the current WAL generation up to it, the database size there, page 1's
 * image there, and which WAL restart the replicator's own checkpoint made
 * acceptable. Decides, for each look at the WAL, whether its new frames
 * continue the captured ones or continuity is lost (and why).
 */
import { type RestartExpectation, restartIsContinuous } from "./checkpointer.js";
import type { DatabaseFiles } from "./database-files.js";
import type { ReplicatorLogger } from "./logger.js";
import type { FullSnapshot } from "./snapshot-reader.js";
import {
  initialCursor,
  readCommittedFrames,
  readFully,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  type WalCursor,
  type WalHeader,
  type WalSegment,
} from "./wal-reader.js";

/** A database file rewritten in place: page 1 differs while the WAL holds no newer one. */
export const CHANGED_OUTSIDE = "database file changed outside SQLite";

/** A position to continue from (resume), as found by resume.ts. */
export interface CapturePosition {
  cursor: WalCursor;
  walPages: Map<number, number>;
  commit: number;
  page1: Uint8Array | undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function emptyCursor(): WalCursor {
  return { salt1: 0, salt2: 0, offset: WAL_HEADER_SIZE, checksum1: 0, checksum2: 0 };
}

/** The capture position (see the module comment). */
export class WalPosition {
  /** Where the next WAL scan starts; undefined until a snapshot or resume sets it. */
  cursor: WalCursor | undefined;
  /** Newest frame of each page in the current WAL generation, up to the cursor. */
  walPages = new Map<number, number>();
  /** Database size in pages at the cursor. */
  commit = 0;
  /** A WAL restart our own checkpoint made acceptable (see checkpointer.ts). */
  expect: RestartExpectation | undefined;
  /** Newest image of page 1 at the cursor. */
  page1: Uint8Array | undefined;

  /** Forgets everything (the files were reopened: a snapshot sets the next position). */
  reset(): void {
    this.cursor = undefined;
    this.walPages = new Map();
    this.commit = 0;
    this.expect = undefined;
    this.page1 = undefined;
  }

  /** Continues from a resumed position. */
  adopt(at: CapturePosition): void {
    this.cursor = at.cursor;
    this.walPages = at.walPages;
    this.commit = at.commit;
    this.page1 = at.page1;
    this.expect = undefined;
  }

  /** Moves to a full snapshot just read. */
  moveTo(taken: FullSnapshot): void {
    this.cursor = taken.cursor;
    this.walPages = taken.walPages;
    this.expect = taken.expect;
    this.page1 = taken.page1;
    this.commit = taken.level0.header.commit;
  }

  /** Records a captured segment (its pages are in `walPages` already, see {@link readNew}). */
  advance(segment: WalSegment, page1: Uint8Array | undefined): void {
    this.cursor = segment.end;
    this.commit = segment.commit;
    if (page1) this.page1 = page1;
  }

  /** WAL frames up to the cursor (for the checkpoint thresholds). */
  frames(pageSize: number): number {
    if (!this.cursor) return 0;
    return Math.max(0, (this.cursor.offset - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + pageSize));
  }

  /**
   * The new committed frames after the cursor (their pages recorded in
   * `walPages`), or why they cannot be captured: frames lost to a WAL
   * restarted or truncated by someone else, or {@link CHANGED_OUTSIDE}.
   */
  readNew(
    files: DatabaseFiles,
    header: WalHeader | undefined,
    walBytes: number,
    log: ReplicatorLogger,
  ): WalSegment | string | undefined {
    const cursor = this.cursor!;
    let segment: WalSegment | undefined;
    if (!header) {
      // A cursor in a real generation, even at its start, may have frames
      // committed after it that a TRUNCATE copied back unread.
      const inGeneration =
        cursor.offset !== WAL_HEADER_SIZE || cursor.salt1 !== 0 || cursor.salt2 !== 0;
      if (inGeneration && !this.expect?.clean) {
        return "WAL truncated by another connection (frames not captured)";
      }
    } else if (header.salt1 === cursor.salt1 && header.salt2 === cursor.salt2) {
      if (walBytes < cursor.offset) return "WAL shrank below the replicated position";
      segment = readCommittedFrames(files.wal, header, cursor);
      // A restart is only expected before anything is appended to the WAL
      // the expectation was made for (see checkpointer.ts); until then it holds.
      if (segment.transactions > 0) this.expect = undefined;
    } else if (restartIsContinuous(this.expect)) {
      this.cursor = initialCursor(header);
      this.walPages = new Map();
      this.expect = undefined;
      segment = readCommittedFrames(files.wal, header, this.cursor);
    } else {
      log.debug("unexpected WAL restart", {
        oldSalt1: cursor.salt1,
        newSalt1: header.salt1,
        expected: this.expect ? "after our checkpoint" : "no",
      });
      return "WAL restarted by another connection (frames not captured)";
    }
    if (this.#changedOutside(files, segment)) return CHANGED_OUTSIDE;
    for (const [p, o] of segment?.pages ?? []) this.walPages.set(p, o);
    return segment;
  }

  /**
   * A database file rewritten in place (a backup copied over it) shows as a
   * page 1 that differs from the newest version captured while the WAL holds
   * no newer one.
   */
  #changedOutside(files: DatabaseFiles, segment: WalSegment | undefined): boolean {
    if (!this.page1 || this.walPages.has(1) || segment?.pages.has(1)) return false;
    const buf = new Uint8Array(100);
    readFully(files.db, buf, 0);
    return !sameBytes(buf, this.page1.subarray(0, 100));
  }

  /** With a snapshot due: moves the cursor over the committed frames of the WAL as it is now. */
  follow(files: DatabaseFiles, header: WalHeader | undefined, walBytes: number): void {
    if (!header || header.pageSize !== files.pageSize) {
      this.cursor = emptyCursor();
      return;
    }
    const c = this.cursor;
    const from =
      c && c.salt1 === header.salt1 && c.salt2 === header.salt2 && walBytes >= c.offset
        ? c
        : initialCursor(header);
    this.cursor = readCommittedFrames(files.wal, header, from).end;
  }
}
