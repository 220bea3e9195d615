/**
 * Byte ranges of a body that arrived in pieces, read in any order without
 * joining the pieces: a range inside one piece is a view of it; one across
 * pieces (a frame on a piece boundary) is copied into a new array of its own.
 */
export class PieceRanges {
  readonly #pieces: Uint8Array[];
  /** Body offset of each piece's first byte. */
  readonly #starts: number[];
  readonly #end: number;

  /** `pieces`, in order, hold the body's bytes from body offset `offset` on. */
  constructor(pieces: Uint8Array[], offset: number) {
    this.#pieces = pieces;
    this.#starts = [];
    let at = offset;
    for (const p of pieces) {
      this.#starts.push(at);
      at += p.length;
    }
    this.#end = at;
  }

  /** `length` bytes at body offset `offset`, within the pieces. */
  read(offset: number, length: number): Uint8Array {
    const starts = this.#starts;
    if (offset < (starts[0] ?? this.#end) || offset + length > this.#end) {
      throw new RangeError(`range ${offset}+${length} is outside the pieces`);
    }
    if (length === 0) return new Uint8Array(0);
    // The last piece starting at or before `offset`.
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    const first = this.#pieces[lo]!;
    const rel = offset - starts[lo]!;
    if (rel + length <= first.length) return first.subarray(rel, rel + length);
    const out = new Uint8Array(length);
    let done = 0;
    for (let i = lo, from = rel; done < length; i++, from = 0) {
      const p = this.#pieces[i]!;
      const take = Math.min(length - done, p.length - from);
      out.set(p.subarray(from, from + take), done);
      done += take;
    }
    return out;
  }
}
