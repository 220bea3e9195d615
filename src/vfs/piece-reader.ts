/**
 * Byte ranges of a body that arrived in pieces, read in ascending order
 * without joining the pieces: a range inside one piece is a view of it; one
 * across pieces is copied into a scratch buffer that the next read may reuse.
 */
export class PieceReader {
  readonly #pieces: Uint8Array[];
  /** Index of the piece holding the last read's start, and that piece's offset. */
  #index = 0;
  #at: number;
  #scratch = new Uint8Array(0);

  /** `pieces`, in order, hold the body's bytes from body offset `offset` on. */
  constructor(pieces: Uint8Array[], offset: number) {
    this.#pieces = pieces;
    this.#at = offset;
  }

  /**
   * `length` bytes at body offset `offset`, within the pieces; offsets
   * ascend from read to read (a read may not go back into a piece an earlier
   * read moved past). Valid until the next read.
   */
  read(offset: number, length: number): Uint8Array {
    const pieces = this.#pieces;
    while (this.#index < pieces.length && offset >= this.#at + pieces[this.#index]!.length) {
      this.#at += pieces[this.#index]!.length;
      this.#index++;
    }
    const first = pieces[this.#index];
    if (first === undefined || offset < this.#at) {
      throw new RangeError(`offset ${offset} is outside the pieces or before the last read`);
    }
    const rel = offset - this.#at;
    if (rel + length <= first.length) return first.subarray(rel, rel + length);
    if (this.#scratch.length < length) this.#scratch = new Uint8Array(length);
    const out = this.#scratch.subarray(0, length);
    let done = 0;
    for (let i = this.#index, from = rel; done < length; i++, from = 0) {
      const p = pieces[i];
      if (p === undefined) throw new RangeError(`range ${offset}+${length} runs past the pieces`);
      const take = Math.min(length - done, p.length - from);
      out.set(p.subarray(from, from + take), done);
      done += take;
    }
    return out;
  }
}

/**
 * Byte ranges of a body that arrived in pieces, read in any order: a range
 * inside one piece is a view of it; one across pieces (a frame on a piece
 * boundary) is copied into a new array of its own.
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
