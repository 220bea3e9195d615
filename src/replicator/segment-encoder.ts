/**
 * Turns one sync's committed WAL frames into an L0 LTX file: the newest
 * version of every page they changed, plus pages the database grew by without
 * a frame in this segment (read from earlier frames of the generation or the
 * database file, as Litestream does), with Commit = database size after the
 * last commit.
 */
import { lockPgno } from "../format/index.js";
import { readDbPages } from "./database-file.js";
import { type EncodedLtx, LtxBuilder } from "./ltx-builder.js";
import type { PageChecksums } from "./page-checksums.js";
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

/** Encodes the L0 file `0000/<txid>-<txid>.ltx` of a captured segment. */
export function encodeSegment(input: {
  captured: CapturedSegment;
  pageSize: number;
  txid: number;
  timestamp: number;
  checksums?: PageChecksums;
}): EncodedLtx {
  const { segment, pages, prevCommit } = input.captured;
  const builder = new LtxBuilder({
    pageSize: input.pageSize,
    commit: segment.commit,
    minTXID: input.txid,
    maxTXID: input.txid,
    timestamp: input.timestamp,
    walOffset: segment.startOffset,
    walSize: segment.end.offset - segment.startOffset,
    walSalt1: segment.end.salt1,
    walSalt2: segment.end.salt2,
  });
  for (const [pgno, page] of pages) {
    builder.page(pgno, page);
    input.checksums?.set(pgno, page);
  }
  if (segment.commit < prevCommit) input.checksums?.truncate(segment.commit);
  return builder.finish();
}
