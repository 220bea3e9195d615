/**
 * Legacy page payloads stored as an LZ4 *frame* (LTX files written before
 * PageHeaderFlagSize existed, i.e. by ltx <= v0.5.1 / Litestream 0.5.0-0.5.15).
 *
 * Decoding: such payloads carry no length prefix, so the frame itself is
 * parsed to find where it ends. Every field is validated: magic, version and
 * reserved bits, the descriptor checksum, block sizes, the optional block and
 * content checksums (XXH32), and the output must be exactly one page.
 *
 * Encoding (the `ltxCompat: "0.5.1"` writers): one frame per page with the
 * descriptor ltx v0.5.1 itself writes (through its LZ4 library's defaults):
 * independent blocks, 64 KiB maximum block size, a content checksum, no block
 * checksums, no content size, no dictionary. A page (at most 64 KiB) is one
 * block, stored uncompressed when compression does not shrink it.
 */
import type { ChunkReader, Pull } from "./chunk-reader.js";
import { corrupt, invalidArgument, LtxError } from "./ltx-error.js";
import { lz4CompressBound, lz4CompressInto, lz4DecodeInto } from "./lz4-block.js";
import { xxh32 } from "./xxh32.js";

/** Magic number of an LZ4 frame (little-endian on disk). */
export const LZ4_FRAME_MAGIC = 0x184d2204;

/** FLG of the frames we write: version 01, independent blocks, content checksum. */
const WRITE_FLG = 0x40 | 0x20 | 0x04;
/** BD of the frames we write: 64 KiB maximum block size. */
const WRITE_BD = 0x40;
/** Largest block (and so page) a written frame holds: the 64 KiB of {@link WRITE_BD}. */
const WRITE_BLOCK_MAX = 65536;
/** The descriptor checksum of FLG/BD: the second byte of their XXH32. */
const WRITE_HC = (xxh32(Uint8Array.of(WRITE_FLG, WRITE_BD)) >>> 8) & 0xff;
/** Magic (4), FLG, BD, HC, then the block size (4): what precedes the block data. */
const WRITE_PREFIX = 11;
/** End mark (4) and content checksum (4): what follows the block data. */
const WRITE_SUFFIX = 8;

/** Largest LZ4 frame {@link lz4FrameEncodeInto} writes for `n` input bytes. */
export function lz4FrameBound(n: number): number {
  return WRITE_PREFIX + lz4CompressBound(n) + WRITE_SUFFIX;
}

function putU32le(b: Uint8Array, p: number, v: number): void {
  b[p] = v & 0xff;
  b[p + 1] = (v >>> 8) & 0xff;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 24) & 0xff;
}

/**
 * Writes `src` (at most 64 KiB: one page) as one LZ4 frame into `dst`, which
 * must hold {@link lz4FrameBound}`(src.length)` bytes from `offset`; returns
 * the frame's length.
 */
export function lz4FrameEncodeInto(src: Uint8Array, dst: Uint8Array, offset = 0): number {
  const n = src.length;
  if (n > WRITE_BLOCK_MAX) throw invalidArgument("an LZ4 frame page holds at most 64 KiB");
  if (dst.length - offset < lz4FrameBound(n)) throw invalidArgument("LZ4 output buffer too small");
  putU32le(dst, offset, LZ4_FRAME_MAGIC);
  dst[offset + 4] = WRITE_FLG;
  dst[offset + 5] = WRITE_BD;
  dst[offset + 6] = WRITE_HC;
  let p = offset + WRITE_PREFIX;
  if (n > 0) {
    const packed = lz4CompressInto(src, dst.subarray(p));
    if (packed < n) {
      putU32le(dst, p - 4, packed);
      p += packed;
    } else {
      // Compression did not help: a stored block (high bit of the size set).
      dst.set(src, p);
      putU32le(dst, p - 4, (n | 0x80000000) >>> 0);
      p += n;
    }
  } else {
    p -= 4; // no block at all: the end mark follows the descriptor
  }
  putU32le(dst, p, 0);
  putU32le(dst, p + 4, xxh32(src));
  return p + WRITE_SUFFIX - offset;
}

/**
 * Upper bound of the encoded size of a legacy LZ4-frame payload for one page:
 * a worst-case block plus generous room for the frame header, block headers,
 * checksums and end mark.
 */
export function maxLegacyFramePayload(pageSize: number): number {
  return lz4CompressBound(pageSize) + 256;
}

function u32le(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/**
 * Reads one LZ4 frame from `r` that must decompress to exactly `pageSize`
 * bytes and returns the page. The encoded frame may not exceed
 * {@link maxLegacyFramePayload}.
 */
export function* readLegacyLz4Frame(r: ChunkReader, pageSize: number): Pull<Uint8Array> {
  const start = r.offset;
  const limit = maxLegacyFramePayload(pageSize);
  const head = yield* r.read(6);
  if (u32le(head, 0) !== LZ4_FRAME_MAGIC) throw corrupt("lz4 frame: bad magic");
  const flg = head[4]!;
  const bd = head[5]!;
  if (flg >>> 6 !== 1) throw corrupt("lz4 frame: unsupported version");
  if (flg & 0x02) throw corrupt("lz4 frame: reserved FLG bit set");
  if (bd & 0x8f) throw corrupt("lz4 frame: reserved BD bits set");
  const blockIndependent = (flg & 0x20) !== 0;
  const blockChecksum = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const hasDictId = (flg & 0x01) !== 0;
  const sizeCode = (bd >>> 4) & 0x7;
  if (sizeCode < 4) throw corrupt("lz4 frame: invalid block maximum size");
  const blockMax = 1 << (8 + 2 * sizeCode);

  const extra = (hasContentSize ? 8 : 0) + (hasDictId ? 4 : 0);
  const rest = yield* r.read(extra + 1);
  // The header checksum covers FLG, BD and the optional fields.
  const desc = new Uint8Array(2 + extra);
  desc[0] = flg;
  desc[1] = bd;
  desc.set(rest.subarray(0, extra), 2);
  if (((xxh32(desc) >>> 8) & 0xff) !== rest[extra])
    throw corrupt("lz4 frame: header checksum mismatch");
  if (hasContentSize) {
    const lo = u32le(rest, 0);
    const hi = u32le(rest, 4);
    if (hi !== 0 || lo !== pageSize) throw corrupt("lz4 frame: content size is not the page size");
  }
  if (hasDictId) throw new LtxError("LTX_UNSUPPORTED", "lz4 frame: dictionaries are not supported");

  const out = new Uint8Array(pageSize);
  let dp = 0;
  for (;;) {
    const bs = u32le(yield* r.read(4), 0);
    if (bs === 0) break; // end mark
    const stored = (bs & 0x80000000) !== 0;
    const len = bs & 0x7fffffff;
    if (len === 0 || len > blockMax) throw corrupt("lz4 frame: invalid block size");
    if (r.offset - start + len > limit)
      throw corrupt("lz4 frame: payload larger than a page allows");
    if (dp >= pageSize) throw corrupt("lz4 frame: more data than one page");
    const data = yield* r.read(len);
    if (blockChecksum) {
      const sum = u32le(yield* r.read(4), 0);
      if (xxh32(data) !== sum) throw corrupt("lz4 frame: block checksum mismatch");
    }
    if (stored) {
      if (len > pageSize - dp) throw corrupt("lz4 frame: more data than one page");
      out.set(data, dp);
      dp += len;
    } else {
      const end = lz4DecodeInto(
        data,
        0,
        len,
        out,
        dp,
        Math.min(pageSize, dp + blockMax),
        blockIndependent ? dp : 0,
      );
      if (end === dp) throw corrupt("lz4 frame: empty block");
      dp = end;
    }
  }
  if (dp !== pageSize)
    throw corrupt(`lz4 frame: decompressed to ${dp} bytes, expected ${pageSize}`);
  if (contentChecksum) {
    const sum = u32le(yield* r.read(4), 0);
    if (xxh32(out) !== sum) throw corrupt("lz4 frame: content checksum mismatch");
  }
  if (r.offset - start > limit) throw corrupt("lz4 frame: payload larger than a page allows");
  return out;
}
