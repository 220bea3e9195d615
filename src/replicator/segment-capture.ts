/**
 * Captures one sync's committed WAL frames for an L0 LTX file: the newest
 * image of every page they changed, plus pages the database grew by without
 * a frame in this segment (read from earlier frames of the generation or the
 * database file, as Litestream does). The capture buffer merges and encodes.
 */
import { lockPgno } from "../format/index.js";
import { readDbPages } from "./database-file.js";
import { readFramePage, type WalSegment } from "./wal-reader.js";

/** A segment with the images of every page its L0 file needs, read while they were stable. */
export interface CapturedSegment {
  segment: WalSegment;
  /** Database size in pages before the segment. */
  prevCommit: number;
  pages: Map<number, Uint8Array>;
}

/**
 * Reads the page images of a segment (synchronously: this runs under the
 * write lock before a checkpoint, where the frames must be read before the
 * WAL can be restarted).
 */
export function captureSegment(input: {
  db: number;
  wal: number;
  segment: WalSegment;
  /** Newest frame of each page across the whole WAL generation, including this segment. */
  generationPages: ReadonlyMap<number, number>;
  pageSize: number;
  prevCommit: number;
}): CapturedSegment {
  const { segment, pageSize } = input;
  const commit = segment.commit;
  const lock = lockPgno(pageSize);
  const pgnos = new Set<number>();
  for (const pgno of segment.pages.keys()) if (pgno <= commit && pgno !== lock) pgnos.add(pgno);
  for (let pgno = input.prevCommit + 1; pgno <= commit; pgno++) if (pgno !== lock) pgnos.add(pgno);
  const pages = new Map<number, Uint8Array>();
  for (const pgno of [...pgnos].sort((a, b) => a - b)) {
    const frame = segment.pages.get(pgno) ?? input.generationPages.get(pgno);
    pages.set(
      pgno,
      frame !== undefined
        ? readFramePage(input.wal, frame, pgno, segment.end, pageSize)
        : readDbPages(input.db, pageSize, pgno, 1),
    );
  }
  return { segment, prevCommit: input.prevCommit, pages };
}
