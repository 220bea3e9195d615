/**
 * The checksums a decoded batch reports per page (see `DecodedBatch.sums`):
 * the page's CRC-64 for the file checksum, and its page checksum, CRC-64 of
 * pgno ‖ page with bit 63 set, derived from the page's CRC (see
 * Crc64Combiner) instead of a second pass over the page.
 */
import { Crc64, Crc64Combiner } from "../format/crc64.js";

export class PageSums {
  /** Per page: CRC high, low, page checksum high, low. */
  readonly sums: Uint32Array;
  readonly #combiner: Crc64Combiner;
  readonly #pgnoCrc = new Crc64();

  constructor(count: number, pageSize: number) {
    this.sums = new Uint32Array(count * 4);
    this.#combiner = Crc64Combiner.for(pageSize);
  }

  /** Records page `i` (number `pgno`) whose CRC-64 is `hi:lo`. */
  record(i: number, pgno: number, hi: number, lo: number): void {
    const pgnoCrc = this.#pgnoCrc;
    const combiner = this.#combiner;
    pgnoCrc.reset();
    pgnoCrc.updateU32BE(pgno);
    combiner.shift(pgnoCrc.hi, pgnoCrc.lo);
    const s = this.sums;
    s[i * 4] = hi;
    s[i * 4 + 1] = lo;
    s[i * 4 + 2] = ((combiner.hi ^ hi) | 0x80000000) >>> 0;
    s[i * 4 + 3] = (combiner.lo ^ lo) >>> 0;
  }
}
