/**
 * Guesses, per open database file, which pages a query will read next, so
 * they can ride along with the page being fetched (same batch: adjacent frames
 * coalesce into one range GET, the rest go out in parallel).
 *
 * Two patterns:
 * - sequential page numbers (scans of a VACUUMed file): a window that doubles
 *   with every further sequential read;
 * - b-tree order (scans of a file whose pages are scattered): when a query
 *   reads a second consecutive child of the same interior page, the following
 *   siblings that the parent names are fetched in parallel, again with a
 *   doubling window. A single child read (a point lookup) triggers nothing.
 */

/** Options of {@link AccessTracker}. */
export interface ReadAheadOptions {
  /** Largest window (pages). 0 disables read-ahead. */
  maxPages: number;
}

interface ParentInfo {
  children: number[];
  /** Index of the child read last, -1 when none. */
  last: number;
  /** Consecutive sibling reads so far. */
  run: number;
  /** Highest child index already asked for. */
  ahead: number;
}

/** Interior pages remembered per file (a b-tree path is rarely deeper). */
const MAX_PARENTS = 16;

/** Most recently used parents searched for a read page that is not a child of the last one. */
const SEARCHED_PARENTS = 4;

/** Access-pattern tracker of one open database file. */
export class AccessTracker {
  readonly #max: number;
  #lastPgno = 0;
  #seqRun = 0;
  /** Highest page number already asked for by sequential read-ahead. */
  #ahead = 0;
  readonly #parents = new Map<number, ParentInfo>();
  /**
   * The parent used or recorded last. A scan's next leaf and a lookup's next
   * page are nearly always its children: checked first, before the others.
   */
  #recent: number | undefined;

  constructor(options: ReadAheadOptions) {
    this.#max = Math.max(0, options.maxPages);
  }

  /** Forget everything (the version changed: page numbers may mean other pages). */
  reset(): void {
    this.#lastPgno = 0;
    this.#seqRun = 0;
    this.#ahead = 0;
    this.#parents.clear();
    this.#recent = undefined;
  }

  /**
   * Records a read of `pgno` and returns the pages worth fetching along with
   * it (not yet filtered for cached ones), nearest first.
   */
  onRead(pgno: number, commit: number): number[] {
    if (this.#max === 0) return [];
    if (pgno === this.#lastPgno + 1) this.#seqRun++;
    else if (pgno !== this.#lastPgno) {
      this.#seqRun = 0;
      this.#ahead = 0;
    }
    this.#lastPgno = pgno;
    // B-tree order first: it also covers VACUUMed files, where it matches page order.
    const siblings = this.#siblings(pgno);
    if (siblings !== undefined) {
      for (const p of siblings) if (p === this.#ahead + 1) this.#ahead = p;
      return siblings;
    }
    const out: number[] = [];
    if (this.#seqRun >= 2) {
      const window = Math.min(this.#max, 2 ** Math.min(this.#seqRun, 20));
      // Ask again only when half the window is consumed, then for a whole
      // window: batches stay large enough to coalesce into few range GETs.
      if (this.#ahead - pgno < window / 2) {
        const from = Math.max(this.#ahead, pgno) + 1;
        const to = Math.min(commit, pgno + window);
        for (let p = from; p <= to; p++) out.push(p);
        this.#ahead = Math.max(this.#ahead, to);
      }
    }
    return out;
  }

  /** Siblings to fetch when `pgno` continues a scan of its parent's children; `undefined` when not. */
  #siblings(pgno: number): number[] | undefined {
    let parentPgno = this.#recent;
    let info = parentPgno === undefined ? undefined : this.#parents.get(parentPgno);
    let i = -1;
    if (info) {
      // A scan continuing in order: no search at all.
      i = info.last >= 0 && info.children[info.last + 1] === pgno ? info.last + 1 : -1;
      if (i < 0) i = info.children.indexOf(pgno);
    }
    if (i < 0) {
      info = undefined;
      // Only the few most recently used parents: a scan touches its parent on
      // every child, and searching them all would cost every read thousands
      // of comparisons on random access.
      let skip = this.#parents.size - SEARCHED_PARENTS;
      for (const [p, candidate] of this.#parents) {
        if (skip-- > 0 || p === this.#recent) continue;
        const at = candidate.children.indexOf(pgno);
        if (at >= 0) {
          parentPgno = p;
          info = candidate;
          i = at;
          break;
        }
      }
    }
    if (!info || parentPgno === undefined) return undefined;
    if (parentPgno !== this.#recent) {
      // Most recently used parent last: evicted last.
      this.#parents.delete(parentPgno);
      this.#parents.set(parentPgno, info);
      this.#recent = parentPgno;
    }
    if (info.last >= 0 && i === info.last + 1) info.run++;
    else {
      info.run = 0;
      info.ahead = i;
    }
    info.last = i;
    if (info.run < 1) return undefined;
    const out: number[] = [];
    const window = Math.min(this.#max, 2 ** Math.min(info.run + 2, 20));
    if (info.ahead - i < window / 2) {
      const from = Math.max(info.ahead, i) + 1;
      const to = Math.min(info.children.length - 1, i + window);
      for (let c = from; c <= to; c++) out.push(info.children[c]!);
      info.ahead = Math.max(info.ahead, to);
    }
    return out;
  }

  /**
   * Whether the children of interior page `pgno` are known already (then marks
   * it recently used): a re-read of a known parent need not be parsed again.
   */
  touchInterior(pgno: number): boolean {
    if (this.#max === 0) return true;
    const info = this.#parents.get(pgno);
    if (!info) return false;
    if (this.#recent !== pgno) {
      this.#parents.delete(pgno);
      this.#parents.set(pgno, info);
      this.#recent = pgno;
    }
    return true;
  }

  /** Records the children of an interior page that was just read. */
  onInterior(pgno: number, children: number[]): void {
    if (this.#max === 0 || children.length === 0) return;
    const existing = this.#parents.get(pgno);
    this.#parents.delete(pgno);
    this.#parents.set(pgno, existing ?? { children, last: -1, run: 0, ahead: -1 });
    this.#recent = pgno;
    if (this.#parents.size > MAX_PARENTS) {
      const oldest = this.#parents.keys().next().value;
      if (oldest !== undefined) this.#parents.delete(oldest);
    }
  }
}
