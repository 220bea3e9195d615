/** Test helpers for the format tests (deterministic data, LZ4 frame builder, chunking). */
import {
  CHECKSUM_FLAG,
  Crc64,
  encodeLtxHeader,
  type LtxHeader,
  lz4CompressBlock,
} from "../../src/format/index.js";
import { xxh32 } from "../../src/format/xxh32.js";

/** Deterministic page-like content: random runs mixed with repeated text (as in lz4-cli-frames.ts). */
export function fixtureContent(size: number, seed: number | "random"): Uint8Array {
  const out = new Uint8Array(size);
  if (seed === "random") {
    let x = 9;
    for (let i = 0; i < size; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  }
  let x = seed >>> 0;
  const text = "pagecast";
  for (let i = 0; i < size; i++) {
    if ((i >> 6) % 3 === 0) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[i] = x >>> 24;
    } else {
      out[i] = text.charCodeAt(i % 8);
    }
  }
  return out;
}

/** Small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random bytes from a seeded PRNG. */
export function randomBytes(n: number, rand: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Options of {@link makeLz4Frame}. */
export interface FrameOptions {
  blockChecksum?: boolean;
  contentChecksum?: boolean;
  contentSize?: boolean;
  /** Split the content into blocks of this size (independent blocks). */
  blockSize?: number;
  /** Store blocks uncompressed. */
  stored?: boolean;
}

function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** Builds an LZ4 frame (independent blocks, 64 KiB max block) around `content`. */
export function makeLz4Frame(content: Uint8Array, opts: FrameOptions = {}): Uint8Array {
  const flg =
    0x40 |
    0x20 |
    (opts.blockChecksum ? 0x10 : 0) |
    (opts.contentSize ? 0x08 : 0) |
    (opts.contentChecksum ? 0x04 : 0);
  const desc = [flg, 0x40];
  if (opts.contentSize) desc.push(...u32le(content.length), 0, 0, 0, 0);
  const bytes: number[] = [
    ...u32le(0x184d2204),
    ...desc,
    (xxh32(Uint8Array.from(desc)) >>> 8) & 0xff,
  ];
  const bs = opts.blockSize ?? 65536;
  for (let off = 0; off < content.length; off += bs) {
    const raw = content.subarray(off, Math.min(off + bs, content.length));
    const packed = lz4CompressBlock(raw);
    // Like real encoders, store a block raw when compression does not help.
    const stored = opts.stored === true || packed.length >= raw.length;
    const data = stored ? raw : packed;
    bytes.push(...u32le((data.length | (stored ? 0x80000000 : 0)) >>> 0));
    for (const b of data) bytes.push(b);
    if (opts.blockChecksum) bytes.push(...u32le(xxh32(data)));
  }
  bytes.push(0, 0, 0, 0);
  if (opts.contentChecksum) bytes.push(...u32le(xxh32(content)));
  return Uint8Array.from(bytes);
}

/** Splits bytes into chunks at random boundaries (some empty). */
export function randomChunks(bytes: Uint8Array, rand: () => number, maxChunk = 300): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    const n = Math.floor(rand() * (maxChunk + 1));
    out.push(bytes.subarray(off, Math.min(off + n, bytes.length)));
    off += n;
  }
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Index of the first difference of two byte arrays, or -1 when equal (fast; avoids deep-equal costs). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Converts base64 to bytes. */
export function fromBase64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** In-memory RangeReader with the ObjectStore range semantics; counts reads. */
export function memRangeReader(bytes: Uint8Array): {
  reads: ({ offset: number; length: number } | { suffix: number })[];
  read(
    range: { offset: number; length: number } | { suffix: number },
  ): Promise<{ bytes: Uint8Array; offset: number; totalSize: number }>;
} {
  const reads: ({ offset: number; length: number } | { suffix: number })[] = [];
  return {
    reads,
    async read(range) {
      reads.push(range);
      if ("suffix" in range) {
        const n = Math.min(range.suffix, bytes.length);
        return {
          bytes: bytes.slice(bytes.length - n),
          offset: bytes.length - n,
          totalSize: bytes.length,
        };
      }
      const start = Math.min(range.offset, bytes.length);
      const end = Math.min(range.offset + range.length, bytes.length);
      return { bytes: bytes.slice(start, end), offset: start, totalSize: bytes.length };
    },
  };
}

/** A growable in-memory database image usable as an ApplyTarget. */
export class BufferTarget {
  buf = new Uint8Array(0);
  size = 0;

  write(offset: number, bytes: Uint8Array): void {
    this.#reserve(offset + bytes.length);
    this.buf.set(bytes, offset);
    this.size = Math.max(this.size, offset + bytes.length);
  }

  truncate(size: number): void {
    this.#reserve(size);
    if (size < this.size) this.buf.fill(0, size, this.size);
    this.size = size;
  }

  read(offset: number, length: number): Uint8Array {
    return this.buf.slice(Math.min(offset, this.size), Math.min(offset + length, this.size));
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.size);
  }

  #reserve(n: number): void {
    if (n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(n, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.size));
    this.buf = next;
  }
}

function uvarint(v: number): number[] {
  const out: number[] = [];
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/**
 * Builds an LTX file whose frames use the legacy encoding (flags 0, LZ4 frame
 * payload, no size prefix), as superfly/ltx wrote before PageHeaderFlagSize.
 * Written independently of LtxEncoder on purpose.
 */
export function encodeLegacyLtx(
  header: LtxHeader,
  pages: { pgno: number; data: Uint8Array }[],
  postApplyChecksum: bigint,
  frameOpts: FrameOptions = { contentChecksum: true },
): Uint8Array {
  const crc = new Crc64();
  const parts: Uint8Array[] = [];
  const hb = encodeLtxHeader(header);
  parts.push(hb);
  crc.update(hb);
  let off = hb.length;
  const index: number[] = [];
  for (const p of pages) {
    const ph = new Uint8Array(6);
    new DataView(ph.buffer).setUint32(0, p.pgno);
    const payload = makeLz4Frame(p.data, frameOpts);
    parts.push(ph, payload);
    crc.update(ph).update(p.data);
    index.push(...uvarint(p.pgno), ...uvarint(off), ...uvarint(6 + payload.length));
    off += 6 + payload.length;
  }
  index.push(0);
  const tail = new Uint8Array(6 + index.length + 8 + 16);
  tail.set(index, 6);
  const dv = new DataView(tail.buffer);
  dv.setBigUint64(6 + index.length, BigInt(index.length));
  dv.setBigUint64(6 + index.length + 8, postApplyChecksum);
  crc.update(tail, 0, tail.length - 8);
  dv.setBigUint64(tail.length - 8, crc.value | CHECKSUM_FLAG);
  parts.push(tail);
  return concat(parts);
}
