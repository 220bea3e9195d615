/**
 * Deliberate, structured damage to LTX files, for reliability tests of
 * everything that reads them: a wrong page number in a frame, damaged frame
 * flags or size prefixes, a page that decompresses to the wrong length,
 * damaged page indexes, truncated files. Also a bit-flip chooser for
 * `faultyStore` that only hits bytes a reader is able to verify. Reader-safe.
 *
 * LTX v3 has no per-page checksum: a flip inside a frame's compressed bytes,
 * or one that renames a page in the index while keeping it ascending, can
 * only be caught with the whole-file checksum, which a page-by-page reader
 * never sees. Those kinds are offered separately (`payload`, `index-pgno`) so
 * tests can show the limitation rather than stumble on it.
 */

import {
  LTX_HEADER_SIZE,
  LTX_INDEX_SIZE_FIELD_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  lz4CompressBlock,
  type PageIndexEntry,
  parsePageIndex,
} from "../format/index.js";
import type { BitFlipChooser } from "./faulty-store.js";
import type { Prng } from "./prng.js";
import { TestingError } from "./testing-error.js";

/** Where the parts of an LTX file are. */
export interface LtxLayout {
  fileSize: number;
  /** Frames in file order (page header at `offset`). */
  entries: PageIndexEntry[];
  /** Offset of the page-index varints. */
  indexOffset: number;
  /** Byte length of the varints (terminator included). */
  indexSize: number;
  /** Per entry: where its page-number varint starts, and where its offset and size varints start and end. */
  indexEntryBytes: { pgnoAt: number; fieldsAt: number; end: number }[];
  /** Offsets of every byte of the entries' offset and size varints. */
  indexFieldBytes: number[];
}

/** Size of a frame's page header plus its size prefix (the bytes a reader checks). */
const FRAME_CHECKED_BYTES = LTX_PAGE_HEADER_SIZE + 4;

function fail(message: string): never {
  throw new TestingError("TESTING_INVALID_ARGUMENT", message);
}

function varintEnd(b: Uint8Array, p: number): number {
  while (p < b.length && (b[p]! & 0x80) !== 0) p++;
  return p + 1;
}

/** Parses the layout of a complete, valid LTX file. */
export function ltxLayout(bytes: Uint8Array): LtxLayout {
  const tail = LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE;
  if (bytes.length < LTX_HEADER_SIZE + tail) fail("not a complete LTX file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const indexSize = Number(view.getBigUint64(bytes.length - tail));
  const indexOffset = bytes.length - tail - indexSize;
  if (indexOffset < LTX_HEADER_SIZE) fail("not a complete LTX file");
  const entries = parsePageIndex(bytes, indexOffset, indexOffset + indexSize).toArray();
  const indexEntryBytes: LtxLayout["indexEntryBytes"] = [];
  const indexFieldBytes: number[] = [];
  let p = indexOffset;
  for (let i = 0; i < entries.length; i++) {
    const fieldsAt = varintEnd(bytes, p);
    const end = varintEnd(bytes, varintEnd(bytes, fieldsAt));
    indexEntryBytes.push({ pgnoAt: p, fieldsAt, end });
    for (let q = fieldsAt; q < end; q++) indexFieldBytes.push(q);
    p = end;
  }
  return {
    fileSize: bytes.length,
    entries,
    indexOffset,
    indexSize,
    indexEntryBytes,
    indexFieldBytes,
  };
}

/**
 * Kinds of damage:
 * - `frame-pgno`: a frame claims another page number (wrong page in a frame).
 * - `frame-flags`: a bit of a frame's flags flipped.
 * - `frame-size`: a bit of a frame's compressed-size prefix flipped.
 * - `page-length`: a frame (index rebuilt to match) decompresses to fewer bytes than a page.
 * - `index-field`: a bit of an index entry's offset or size flipped.
 * - `index-size`: the index size field damaged.
 * - `truncate`: the file cut short.
 * - `payload`: a bit of a frame's compressed bytes flipped (NOT detectable page by page).
 * - `index-pgno`: an index entry renamed to an absent page, order kept (NOT detectable page by page).
 */
export type LtxCorruption =
  | "frame-pgno"
  | "frame-flags"
  | "frame-size"
  | "page-length"
  | "index-field"
  | "index-size"
  | "truncate"
  | "payload"
  | "index-pgno";

/** Damage a page-by-page reader must detect. */
export const DETECTABLE_LTX_CORRUPTIONS: readonly LtxCorruption[] = [
  "frame-pgno",
  "frame-flags",
  "frame-size",
  "page-length",
  "index-field",
  "index-size",
  "truncate",
];

/** A damaged copy of an LTX file. */
export interface CorruptedLtx {
  bytes: Uint8Array;
  /** What was done, for failure messages. */
  what: string;
  /** The page whose frame or entry was damaged, when one was. */
  pgno?: number;
}

function flipBit(b: Uint8Array, at: number, rand: Prng, lowBitsOnly = 8): void {
  b[at] = b[at]! ^ (1 << rand.int(0, lowBitsOnly - 1));
}

function writeUvarint(out: number[], v: number): void {
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Rebuilds a file with `entry`'s frame replaced by a page `short` bytes too small. */
function shortPage(bytes: Uint8Array, layout: LtxLayout, entry: PageIndexEntry, short: number) {
  const pageSize = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8);
  const block = lz4CompressBlock(new Uint8Array(pageSize - short).fill(0x5a));
  const frame = new Uint8Array(FRAME_CHECKED_BYTES + block.length);
  frame.set(bytes.subarray(entry.offset, entry.offset + LTX_PAGE_HEADER_SIZE), 0);
  new DataView(frame.buffer).setUint32(LTX_PAGE_HEADER_SIZE, block.length);
  frame.set(block, FRAME_CHECKED_BYTES);
  const parts: Uint8Array[] = [bytes.subarray(0, LTX_HEADER_SIZE)];
  const entries: PageIndexEntry[] = [];
  let offset = LTX_HEADER_SIZE;
  for (const e of layout.entries) {
    const f = e === entry ? frame : bytes.subarray(e.offset, e.offset + e.size);
    parts.push(f);
    entries.push({ pgno: e.pgno, offset, size: f.length });
    offset += f.length;
  }
  parts.push(new Uint8Array(LTX_PAGE_HEADER_SIZE));
  const varints: number[] = [];
  for (const e of entries) {
    writeUvarint(varints, e.pgno);
    writeUvarint(varints, e.offset);
    writeUvarint(varints, e.size);
  }
  varints.push(0);
  parts.push(Uint8Array.from(varints));
  const size = new Uint8Array(8);
  new DataView(size.buffer).setBigUint64(0, BigInt(varints.length));
  parts.push(size, bytes.subarray(bytes.length - LTX_TRAILER_SIZE));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A copy of `bytes` (a valid LTX file) with one kind of damage. Returns
 * `undefined` when the file offers nothing to damage that way (e.g. no
 * frames, or no page number free for `index-pgno`).
 */
export function corruptLtx(
  bytes: Uint8Array,
  kind: LtxCorruption,
  rand: Prng,
  options: { pgno?: number } = {},
): CorruptedLtx | undefined {
  const layout = ltxLayout(bytes);
  const { entries } = layout;
  const candidates =
    options.pgno === undefined ? entries : entries.filter((e) => e.pgno === options.pgno);
  const entry = candidates.length > 0 ? rand.pick(candidates) : undefined;
  const b = bytes.slice();
  const view = new DataView(b.buffer);
  switch (kind) {
    case "frame-pgno": {
      if (!entry) return undefined;
      const other = entries.find((e) => e.pgno !== entry.pgno)?.pgno ?? entry.pgno + 1;
      view.setUint32(entry.offset, other);
      return {
        bytes: b,
        what: `frame of page ${entry.pgno} claims page ${other}`,
        pgno: entry.pgno,
      };
    }
    case "frame-flags": {
      if (!entry) return undefined;
      flipBit(b, entry.offset + 4 + rand.int(0, 1), rand);
      return { bytes: b, what: `flags of page ${entry.pgno} damaged`, pgno: entry.pgno };
    }
    case "frame-size": {
      if (!entry) return undefined;
      flipBit(b, entry.offset + LTX_PAGE_HEADER_SIZE + rand.int(0, 3), rand);
      return { bytes: b, what: `size prefix of page ${entry.pgno} damaged`, pgno: entry.pgno };
    }
    case "page-length": {
      if (!entry) return undefined;
      const short = rand.int(1, 64);
      return {
        bytes: shortPage(bytes, layout, entry, short),
        what: `page ${entry.pgno} decompresses to ${short} bytes too few`,
        pgno: entry.pgno,
      };
    }
    case "payload": {
      if (!entry || entry.size <= FRAME_CHECKED_BYTES) return undefined;
      const at = entry.offset + rand.int(FRAME_CHECKED_BYTES, entry.size - 1);
      flipBit(b, at, rand);
      return {
        bytes: b,
        what: `payload byte ${at} of page ${entry.pgno} flipped`,
        pgno: entry.pgno,
      };
    }
    case "index-field": {
      const fields =
        options.pgno === undefined ? layout.indexFieldBytes : fieldBytesOf(layout, entry);
      if (fields.length === 0) return undefined;
      const at = rand.pick(fields);
      // Low seven bits only: flipping a continuation bit re-frames the varints (also caught, but less targeted).
      flipBit(b, at, rand, 7);
      return {
        bytes: b,
        what: `index byte ${at} (offset/size) flipped`,
        ...pgnoOf(entry, options),
      };
    }
    case "index-pgno": {
      const taken = new Set(entries.map((e) => e.pgno));
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (options.pgno !== undefined && e.pgno !== options.pgno) continue;
        const prev = entries[i - 1]?.pgno ?? 0;
        const next = entries[i + 1]?.pgno ?? Number.POSITIVE_INFINITY;
        for (let bit = 0; bit < 7; bit++) {
          const renamed = e.pgno ^ (1 << bit);
          if (renamed > prev && renamed < next && !taken.has(renamed) && renamed > 0) {
            // The low byte comes first in a uvarint; bits 0-6 of the value live there.
            const at = layout.indexEntryBytes[i]!.pgnoAt;
            b[at] = b[at]! ^ (1 << bit);
            return { bytes: b, what: `index renames page ${e.pgno} to ${renamed}`, pgno: e.pgno };
          }
        }
      }
      return undefined;
    }
    case "index-size": {
      const at = b.length - LTX_TRAILER_SIZE - LTX_INDEX_SIZE_FIELD_SIZE + rand.int(0, 7);
      flipBit(b, at, rand);
      return { bytes: b, what: `index size field byte ${at} flipped` };
    }
    case "truncate": {
      const keep = rand.int(0, bytes.length - 1);
      return { bytes: bytes.slice(0, keep), what: `truncated to ${keep} of ${bytes.length} bytes` };
    }
  }
}

function pgnoOf(entry: PageIndexEntry | undefined, options: { pgno?: number }): { pgno?: number } {
  return options.pgno !== undefined && entry ? { pgno: entry.pgno } : {};
}

/** Offsets of `entry`'s offset and size varint bytes. */
function fieldBytesOf(layout: LtxLayout, entry: PageIndexEntry | undefined): number[] {
  const i = entry ? layout.entries.indexOf(entry) : -1;
  const at = layout.indexEntryBytes[i];
  if (!at) return [];
  const out: number[] = [];
  for (let q = at.fieldsAt; q < at.end; q++) out.push(q);
  return out;
}

/**
 * A `faultyStore` bit-flip chooser that hits only bytes a page-by-page reader
 * can verify: frame page headers and size prefixes, index offset/size varints
 * and the index size field of LTX files whose layout is in `layouts` (keyed by
 * store key). Returns `undefined` (no flip) for anything else, such as the
 * head object or a body holding only compressed payload.
 */
export function checkedLtxBits(layouts: ReadonlyMap<string, LtxLayout>): BitFlipChooser {
  return ({ key, offset, body, rand }) => {
    const layout = layouts.get(key);
    if (!layout) return undefined;
    const end = offset + body.length;
    const targets: number[] = [];
    for (const e of layout.entries) {
      if (e.offset >= offset && e.offset + FRAME_CHECKED_BYTES <= end) {
        for (let i = 0; i < FRAME_CHECKED_BYTES; i++) targets.push(e.offset + i);
      }
    }
    const sizeField = layout.fileSize - LTX_TRAILER_SIZE - LTX_INDEX_SIZE_FIELD_SIZE;
    const fields = layout.indexFieldBytes.filter((p) => p >= offset && p < end);
    if (sizeField >= offset && sizeField + LTX_INDEX_SIZE_FIELD_SIZE <= end) {
      for (let i = 0; i < LTX_INDEX_SIZE_FIELD_SIZE; i++) targets.push(sizeField + i);
    }
    if (targets.length === 0 && fields.length === 0) return undefined;
    // Varint fields: low seven bits only (see `index-field`).
    if (fields.length > 0 && (targets.length === 0 || rand.chance(0.5))) {
      return (rand.pick(fields) - offset) * 8 + rand.int(0, 6);
    }
    return (rand.pick(targets) - offset) * 8 + rand.int(0, 7);
  };
}
