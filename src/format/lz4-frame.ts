/**
 * Decoder for legacy page payloads stored as an LZ4 *frame* (LTX files written
 * before PageHeaderFlagSize existed). Such payloads carry no length prefix, so
 * the frame itself is parsed to find where it ends. Every field is validated:
 * magic, version and reserved bits, the descriptor checksum, block sizes, the
 * optional block and content checksums (XXH32), and the output must be exactly
 * one page.
 */
import type { ChunkReader, Pull } from "./chunk-reader.js";
import { corrupt, LtxError } from "./ltx-error.js";
import { lz4CompressBound, lz4DecodeInto } from "./lz4-block.js";
import { xxh32 } from "./xxh32.js";

/** Magic number of an LZ4 frame (little-endian on disk). */
export const LZ4_FRAME_MAGIC = 0x184d2204;

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
