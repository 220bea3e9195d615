/**
 * The LTX page index: one (pgno, frame offset, frame size) uvarint triple per
 * page in ascending page order, a zero pgno terminator, then a big-endian u64
 * with the byte size of the varints (terminator included).
 */
import { LTX_HEADER_SIZE, LTX_PAGE_HEADER_SIZE } from "./constants.js";
import { corrupt } from "./ltx-error.js";

/** Where one page frame lives in an LTX file. */
export interface PageIndexEntry {
  /** Page number. */
  pgno: number;
  /** Absolute byte offset of the frame (page header) in the file. */
  offset: number;
  /** Encoded frame size: page header + optional size prefix + payload. */
  size: number;
}

/** Bytes a uvarint of `v` (a non-negative safe integer) takes. */
export function uvarintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes `v` as a uvarint at `dst[p]`; returns the position after it. */
export function writeUvarint(dst: Uint8Array, p: number, v: number): number {
  while (v >= 128) {
    dst[p++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  dst[p++] = v;
  return p;
}

/**
 * Reads a uvarint from `b[p..end)`. Returns the value and the position after it,
 * or `undefined` when the bytes end first. Throws `LTX_CORRUPT` for values that
 * overflow 64 bits or exceed 2^53-1. Like Go's reader, non-minimal encodings
 * are accepted.
 */
export function readUvarint(
  b: Uint8Array,
  p: number,
  end: number,
): { value: number; next: number } | undefined {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= end) return undefined;
    const x = b[p++]!;
    if (i === 9 && x > 1) throw corrupt("page index: varint overflows 64 bits");
    value += (x & 0x7f) * mul;
    if (x < 0x80) {
      if (!Number.isSafeInteger(value)) throw corrupt("page index: value exceeds 2^53-1");
      return { value, next: p };
    }
    mul *= 128;
  }
  throw corrupt("page index: varint too long");
}

/**
 * Compact, growable list of page index entries (three numbers per page in a
 * Float64Array rather than one object per page): encoders, decoders and
 * readers of large files keep memory proportional to the index only, and a
 * replica opening a 100k-page snapshot allocates no per-page objects (each
 * would survive young-generation collections and grow V8's heap).
 */
export class PageIndexEntries implements Iterable<PageIndexEntry> {
  #data = new Float64Array(3 * 64);
  #count = 0;

  /** A list holding `entries`, in order. */
  static from(entries: Iterable<PageIndexEntry>): PageIndexEntries {
    const out = new PageIndexEntries();
    for (const e of entries) out.push(e.pgno, e.offset, e.size);
    return out;
  }

  /** Number of entries. */
  get count(): number {
    return this.#count;
  }

  /** Appends an entry. */
  push(pgno: number, offset: number, size: number): void {
    if ((this.#count + 1) * 3 > this.#data.length) {
      const next = new Float64Array(this.#data.length * 2);
      next.set(this.#data);
      this.#data = next;
    }
    const i = this.#count * 3;
    this.#data[i] = pgno;
    this.#data[i + 1] = offset;
    this.#data[i + 2] = size;
    this.#count++;
  }

  /** Page number of entry `i`. */
  pgno(i: number): number {
    return this.#data[i * 3]!;
  }

  /** Frame offset of entry `i`. */
  offset(i: number): number {
    return this.#data[i * 3 + 1]!;
  }

  /** Frame size of entry `i`. */
  size(i: number): number {
    return this.#data[i * 3 + 2]!;
  }

  /** The entries as objects, one at a time (for code off the hot paths). */
  *[Symbol.iterator](): Iterator<PageIndexEntry> {
    for (let i = 0; i < this.#count; i++) {
      yield { pgno: this.pgno(i), offset: this.offset(i), size: this.size(i) };
    }
  }

  /** JSON gives the entries as objects, as an array of them would. */
  toJSON(): PageIndexEntry[] {
    return this.toArray();
  }

  /** The entries as objects. */
  toArray(): PageIndexEntry[] {
    const out: PageIndexEntry[] = new Array(this.#count);
    for (let i = 0; i < this.#count; i++) {
      out[i] = { pgno: this.pgno(i), offset: this.offset(i), size: this.size(i) };
    }
    return out;
  }

  /** Byte size of the varint section (entries + terminator), i.e. the index size field. */
  varintLength(): number {
    let n = 1;
    for (let i = 0; i < this.#count; i++) {
      n +=
        uvarintLength(this.pgno(i)) + uvarintLength(this.offset(i)) + uvarintLength(this.size(i));
    }
    return n;
  }

  /** Writes varints, terminator and size field at `dst[p]`; returns the position after. */
  encodeInto(dst: Uint8Array, p: number, varintLength = this.varintLength()): number {
    for (let i = 0; i < this.#count; i++) {
      p = writeUvarint(dst, p, this.pgno(i));
      p = writeUvarint(dst, p, this.offset(i));
      p = writeUvarint(dst, p, this.size(i));
    }
    dst[p++] = 0;
    const dv = new DataView(dst.buffer, dst.byteOffset + p, 8);
    dv.setUint32(0, Math.floor(varintLength / 0x100000000));
    dv.setUint32(4, varintLength >>> 0);
    return p + 8;
  }
}

/** Position after the last uvarint {@link readUvarintAt} read. */
let uvarintEnd = 0;

/**
 * {@link readUvarint} without a result object (the page index parser reads
 * three per page): returns the value, or -1 when the bytes end first, and
 * leaves the position after it in `uvarintEnd`. Same errors.
 */
function readUvarintAt(b: Uint8Array, p: number, end: number): number {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= end) return -1;
    const x = b[p++]!;
    if (i === 9 && x > 1) throw corrupt("page index: varint overflows 64 bits");
    value += (x & 0x7f) * mul;
    if (x < 0x80) {
      if (!Number.isSafeInteger(value)) throw corrupt("page index: value exceeds 2^53-1");
      uvarintEnd = p;
      return value;
    }
    mul *= 128;
  }
  throw corrupt("page index: varint too long");
}

/**
 * Parses the varint section `b[start..end)` (entries and terminator, which must
 * end exactly at `end`).
 */
export function parsePageIndex(b: Uint8Array, start = 0, end = b.length): PageIndexEntries {
  const out = new PageIndexEntries();
  let p = start;
  for (;;) {
    const pgno = readUvarintAt(b, p, end);
    if (pgno < 0) throw corrupt("page index: missing terminator");
    p = uvarintEnd;
    if (pgno === 0) break;
    const offset = readUvarintAt(b, p, end);
    if (offset < 0) throw corrupt("page index: truncated entry");
    const size = readUvarintAt(b, uvarintEnd, end);
    if (size < 0) throw corrupt("page index: truncated entry");
    p = uvarintEnd;
    out.push(pgno, offset, size);
  }
  if (p !== end) throw corrupt("page index: data after the terminator");
  return out;
}

/** Smallest possible encoded page frame: page header, size prefix and a one-byte block. */
export const MIN_FRAME_SIZE = LTX_PAGE_HEADER_SIZE + 4 + 1;

/**
 * Checks entries against the file layout: page numbers ascending and within
 * u32, frames contiguous from the end of the header up to the zero page
 * header that precedes the index at `indexOffset`, each frame's size between
 * {@link MIN_FRAME_SIZE} and `maxFrameSize`.
 */
export function validatePageIndexEntries(
  entries: PageIndexEntries,
  indexOffset: number,
  maxFrameSize: number,
): void {
  let expectOffset = LTX_HEADER_SIZE;
  let prevPgno = 0;
  for (let i = 0; i < entries.count; i++) {
    const pgno = entries.pgno(i);
    const size = entries.size(i);
    if (pgno <= prevPgno) throw corrupt("page index: page numbers not ascending");
    if (pgno > 0xffffffff) throw corrupt("page index: page number exceeds 32 bits");
    if (entries.offset(i) !== expectOffset)
      throw corrupt(`page index: frame of page ${pgno} is misplaced`);
    if (size < MIN_FRAME_SIZE || size > maxFrameSize) {
      throw corrupt(`page index: invalid frame size for page ${pgno}`);
    }
    expectOffset += size;
    prevPgno = pgno;
  }
  if (expectOffset + LTX_PAGE_HEADER_SIZE !== indexOffset) {
    throw corrupt("page index: frames do not end at the page block terminator");
  }
}
