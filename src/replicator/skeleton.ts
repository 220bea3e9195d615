/**
 * Builds the B-tree skeleton of a snapshot: an LTX file holding page 1, every
 * interior b-tree page (types 0x02/0x05) and the pages of the schema table, so
 * a cold reader that fetches it in the same round trip as the page indexes can
 * answer a point lookup by reading just the leaves.
 *
 * The pages stream by in ascending page-number order (as the snapshot is
 * built); only the kept ones are copied. The key names the snapshot (TXIDs
 * 1-T); the header carries minTXID = maxTXID = T + 1 ({@link skeletonHeaderTXID}):
 * any TXID but 1 would do, since a header starting at TXID 1 claims a complete
 * snapshot, and a skeleton is never applied. A page that merely looks like an interior
 * page (freelist or overflow bytes) costs a few bytes, never correctness: a
 * reader only uses a skeleton page where the snapshot's image of that page is
 * the newest one.
 */
import { type LtxCompat, lockPgno } from "../format/index.js";
import { SKELETON_MAX_BYTES, skeletonHeaderTXID, skeletonKey } from "../layout/index.js";
import { interiorChildren, isInteriorPage } from "../vfs/btree-page.js";
import { type EncodedLtx, LtxBuilder } from "./ltx-builder.js";

/** Identity of the snapshot a skeleton is built from. */
export interface SkeletonInput {
  pageSize: number;
  /** Database size in pages at `txid`. */
  commit: number;
  /** maxTXID of the snapshot. */
  txid: number;
  /** Commit time of `txid` (ms). */
  timestamp: number;
  /**
   * Most bytes of pages kept (default: {@link SKELETON_MAX_BYTES}). Past it
   * the skeleton is abandoned: readers then read interior pages on demand.
   */
  maxPageBytes?: number;
  /**
   * Page encoding: the snapshot's (default `"0.5.2"`). Readers use a
   * skeleton page only where its frame size equals the snapshot's frame of
   * that page, so both must be encoded alike.
   */
  compat?: LtxCompat;
}

/** A finished skeleton, ready for upload. */
export interface BuiltSkeleton {
  key: string;
  enc: EncodedLtx;
  /** maxTXID of the snapshot it belongs to. */
  txid: number;
}

/** Collects skeleton pages from a snapshot's pages, fed in ascending page order. */
export class SkeletonCollector {
  readonly #input: SkeletonInput;
  readonly #maxBytes: number;
  readonly #pages: { pgno: number; data: Uint8Array }[] = [];
  /** Pages of the schema table named by its interior pages (read later in page order). */
  readonly #schema = new Set<number>();
  #bytes = 0;
  #prev = 0;
  #abandoned = false;

  constructor(input: SkeletonInput) {
    this.#input = input;
    this.#maxBytes = Math.min(input.maxPageBytes ?? SKELETON_MAX_BYTES, SKELETON_MAX_BYTES);
  }

  /** Offers the next page of the snapshot (copied when kept). */
  add(pgno: number, page: Uint8Array): void {
    if (this.#abandoned) return;
    if (pgno <= this.#prev || page.length !== this.#input.pageSize) {
      // Out of order or malformed: a partial skeleton is safe, a wrong one never is.
      this.#abandon();
      return;
    }
    this.#prev = pgno;
    const interior = isInteriorPage(page, pgno);
    const schema = pgno === 1 || this.#schema.has(pgno);
    if (!interior && !schema) return;
    if (schema && interior) {
      // The schema table spills out of page 1: its pages are needed to open.
      for (const c of interiorChildren(page, pgno, this.#input.commit) ?? []) {
        if (c > pgno) this.#schema.add(c);
      }
    }
    this.#schema.delete(pgno);
    this.#bytes += page.length;
    if (this.#bytes > this.#maxBytes) {
      this.#abandon();
      return;
    }
    this.#pages.push({ pgno, data: page.slice() });
  }

  /**
   * The skeleton file, or `undefined` when it was abandoned, holds nothing or
   * cannot be encoded: a skeleton is an optimization, never worth failing the
   * snapshot it belongs to.
   */
  finish(): BuiltSkeleton | undefined {
    if (this.#abandoned || this.#pages.length === 0) return undefined;
    const { pageSize, commit, txid, timestamp } = this.#input;
    const pages = this.#pages.splice(0);
    try {
      const headerTXID = skeletonHeaderTXID(txid);
      const builder = new LtxBuilder(
        {
          pageSize,
          commit,
          minTXID: headerTXID,
          maxTXID: headerTXID,
          timestamp,
        },
        this.#input.compat !== undefined ? { compat: this.#input.compat } : {},
      );
      const lock = lockPgno(pageSize);
      for (const p of pages) if (p.pgno <= commit && p.pgno !== lock) builder.page(p.pgno, p.data);
      const enc = builder.finish();
      if (enc.bytes.length > SKELETON_MAX_BYTES) return undefined;
      return { key: skeletonKey(txid), enc, txid };
    } catch {
      return undefined;
    }
  }

  #abandon(): void {
    this.#abandoned = true;
    this.#pages.length = 0;
    this.#schema.clear();
  }
}

/** Builds the skeleton of a snapshot from its pages (ascending page numbers). */
export function buildSkeleton(
  input: SkeletonInput,
  pages: Iterable<{ pgno: number; data: Uint8Array }>,
): BuiltSkeleton | undefined {
  const collector = new SkeletonCollector(input);
  for (const p of pages) collector.add(p.pgno, p.data);
  return collector.finish();
}
