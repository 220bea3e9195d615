/**
 * How far an LTX file may grow a database beyond the pages it holds.
 *
 * A transaction that grows the database writes the new pages, except some
 * that it freed again before committing (SQLite need not write freelist
 * leaves). So a new page count can exceed the pages written, but not by
 * much: a claim of millions of pages from a file of a few bytes is a damaged
 * or hostile file. Readers check the claim against this rule before they
 * size anything (a page index, a database file) by it.
 */
import { LTX_HEADER_SIZE, LTX_PAGE_HEADER_SIZE, LTX_TRAILER_SIZE } from "./constants.js";
import { MIN_FRAME_SIZE } from "./page-index.js";

/** Pages a database may grow by without their being written (beyond one per page written). */
export const UNWRITTEN_GROWTH_SLACK = 65536;

/**
 * Whether growing from `fromPages` to `toPages` pages is justified by
 * `written` pages written in between (an upper bound is fine): the pages
 * left unwritten may be at most as many as those written, plus
 * {@link UNWRITTEN_GROWTH_SLACK}.
 */
export function growthJustified(fromPages: number, toPages: number, written: number): boolean {
  if (toPages <= fromPages) return true;
  return toPages - fromPages - written <= written + UNWRITTEN_GROWTH_SLACK;
}

/** The most page frames an LTX file of `fileSize` bytes can hold. */
export function maxFramesIn(fileSize: number): number {
  const body = fileSize - LTX_HEADER_SIZE - LTX_PAGE_HEADER_SIZE - LTX_TRAILER_SIZE;
  return Math.max(0, Math.floor(body / MIN_FRAME_SIZE));
}
