/**
 * Per-page checksums of the replicated database (8 bytes per page) and their
 * running XOR, so the database checksum after each sync is known without
 * re-reading the database: a changed page's old contribution is XORed out and
 * its new one in.
 */
import { lockPgno, pageChecksumInto } from "../format/checksum.js";

const FLAG = 0x80000000;

/** Database checksum tracker. Page numbers start at 1; 0 is unused. */
export class PageChecksums {
  #hi = new Uint32Array(0);
  #lo = new Uint32Array(0);
  #xhi = 0;
  #xlo = 0;
  #lock = 0;
  readonly #pair = new Uint32Array(2);

  /** Starts over for a database of this page size (empty). */
  reset(pageSize: number): void {
    this.#hi = new Uint32Array(0);
    this.#lo = new Uint32Array(0);
    this.#xhi = 0;
    this.#xlo = 0;
    this.#lock = lockPgno(pageSize);
  }

  #ensure(pgno: number): void {
    if (pgno < this.#hi.length) return;
    let n = Math.max(1024, this.#hi.length);
    while (n <= pgno) n *= 2;
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    hi.set(this.#hi);
    lo.set(this.#lo);
    this.#hi = hi;
    this.#lo = lo;
  }

  /** Records page `pgno`'s new content (the lock page is ignored, as Litestream does). */
  set(pgno: number, page: Uint8Array): void {
    if (pgno === this.#lock) return;
    pageChecksumInto(pgno, page, this.#pair);
    this.setChecksum(pgno, this.#pair[0]!, this.#pair[1]!);
  }

  /**
   * Records page `pgno`'s new checksum, already computed (e.g. by the LTX
   * encoder, in the pass that checksums the file) as uint32 halves.
   */
  setChecksum(pgno: number, h: number, l: number): void {
    if (pgno === this.#lock) return;
    this.#ensure(pgno);
    this.#xhi = (this.#xhi ^ this.#hi[pgno]! ^ h) >>> 0;
    this.#xlo = (this.#xlo ^ this.#lo[pgno]! ^ l) >>> 0;
    this.#hi[pgno] = h;
    this.#lo[pgno] = l;
  }

  /** Whether page `pgno` has been recorded. */
  has(pgno: number): boolean {
    return pgno < this.#hi.length && this.#hi[pgno] !== 0;
  }

  /** Whether page `pgno`'s recorded checksum is `(h, l)` (an unrecorded page matches nothing). */
  matches(pgno: number, h: number, l: number): boolean {
    if (pgno === this.#lock) return true;
    if (pgno >= this.#hi.length) return false;
    return this.#hi[pgno] === h >>> 0 && this.#lo[pgno] === l >>> 0 && this.#hi[pgno] !== 0;
  }

  /** Drops pages above `commit` (the database shrank). */
  truncate(commit: number): void {
    for (let p = commit + 1; p < this.#hi.length; p++) {
      if (this.#hi[p] === 0) continue;
      this.#xhi = (this.#xhi ^ this.#hi[p]!) >>> 0;
      this.#xlo = (this.#xlo ^ this.#lo[p]!) >>> 0;
      this.#hi[p] = 0;
      this.#lo[p] = 0;
    }
  }

  /** The database checksum (CHECKSUM_FLAG | XOR of page checksums). */
  get value(): bigint {
    return (BigInt((this.#xhi | FLAG) >>> 0) << 32n) | BigInt(this.#xlo >>> 0);
  }
}
