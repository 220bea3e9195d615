/**
 * LZ4 *block* format codec (no framing), pure TypeScript so it runs in Workers.
 * LTX v3 page payloads are single LZ4 blocks that decompress to exactly one page.
 *
 * The compressor is a greedy single-probe hash-table matcher (like LZ4's fast
 * mode) and honours the block-format end rules (last 5 bytes are literals, no
 * match starts within the last 12 bytes) so reference decoders accept it.
 *
 * The decompressor treats its input as hostile: every length and offset is
 * checked before use and the output is never written past the expected size.
 */
import { corrupt, invalidArgument } from "./ltx-error.js";

const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MFLIMIT = 12;
const MAX_OFFSET = 65535;
const SKIP_TRIGGER = 6;
const HASH_LOG = 14;
/** Largest input LZ4 can compress into one block (LZ4_MAX_INPUT_SIZE). */
export const LZ4_MAX_INPUT_SIZE = 0x7e000000;

/** Worst-case compressed size of `n` input bytes (LZ4_COMPRESSBOUND). */
export function lz4CompressBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

// Hash table of positions, shared across calls. Entries hold `pos + base`; an
// entry below the current call's `base` belongs to an earlier call, which saves
// clearing 64 KiB per page.
const table = new Int32Array(1 << HASH_LOG);
let base = 1;

function read32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

function hash(seq: number): number {
  return Math.imul(seq, -1640531535) >>> (32 - HASH_LOG);
}

function writeLength(dst: Uint8Array, op: number, rest: number): number {
  while (rest >= 255) {
    dst[op++] = 255;
    rest -= 255;
  }
  dst[op++] = rest;
  return op;
}

function copyBytes(dst: Uint8Array, op: number, src: Uint8Array, sp: number, len: number): void {
  if (len < 32) {
    for (let i = 0; i < len; i++) dst[op + i] = src[sp + i]!;
  } else {
    dst.set(src.subarray(sp, sp + len), op);
  }
}

/**
 * Compresses `src` into `dst` (which must hold at least
 * `lz4CompressBound(src.length)` bytes) and returns the compressed length.
 */
export function lz4CompressInto(src: Uint8Array, dst: Uint8Array): number {
  const n = src.length;
  if (n > LZ4_MAX_INPUT_SIZE) throw invalidArgument("input too large for one LZ4 block");
  if (dst.length < lz4CompressBound(n)) throw invalidArgument("LZ4 output buffer too small");
  let op = 0;
  let anchor = 0;
  if (n >= MFLIMIT + 1) {
    if (base + n + 1 > 0x7fffffff) {
      table.fill(0);
      base = 1;
    }
    const b = base;
    base += n + 1;
    const mflimit = n - MFLIMIT;
    const matchlimit = n - LAST_LITERALS;
    table[hash(read32(src, 0))] = b;
    let ip = 1;
    outer: for (;;) {
      let ref = 0;
      let step = 1;
      let searches = 1 << SKIP_TRIGGER;
      for (;;) {
        if (ip > mflimit) break outer;
        const seq = read32(src, ip);
        const h = hash(seq);
        const cand = table[h]! - b;
        table[h] = ip + b;
        if (cand >= 0 && ip - cand <= MAX_OFFSET && read32(src, cand) === seq) {
          ref = cand;
          break;
        }
        ip += step;
        step = searches++ >>> SKIP_TRIGGER;
      }
      // Extend the match backwards into pending literals, then forwards.
      while (ip > anchor && ref > 0 && src[ip - 1] === src[ref - 1]) {
        ip--;
        ref--;
      }
      let len = MIN_MATCH;
      // Compare four bytes at a time while far from the limit, then finish bytewise.
      while (ip + len + 4 <= matchlimit && read32(src, ip + len) === read32(src, ref + len))
        len += 4;
      while (ip + len < matchlimit && src[ip + len] === src[ref + len]) len++;

      const litLen = ip - anchor;
      const ml = len - MIN_MATCH;
      const tokenPos = op++;
      dst[tokenPos] = (Math.min(litLen, 15) << 4) | Math.min(ml, 15);
      if (litLen >= 15) op = writeLength(dst, op, litLen - 15);
      copyBytes(dst, op, src, anchor, litLen);
      op += litLen;
      const offset = ip - ref;
      dst[op++] = offset & 0xff;
      dst[op++] = offset >>> 8;
      if (ml >= 15) op = writeLength(dst, op, ml - 15);

      ip += len;
      anchor = ip;
      if (ip > mflimit) break;
      table[hash(read32(src, ip - 2))] = ip - 2 + b;
    }
  }
  const litLen = n - anchor;
  dst[op++] = Math.min(litLen, 15) << 4;
  if (litLen >= 15) op = writeLength(dst, op, litLen - 15);
  copyBytes(dst, op, src, anchor, litLen);
  return op + litLen;
}

/** Compresses `src` into one LZ4 block. */
export function lz4CompressBlock(src: Uint8Array): Uint8Array {
  if (!(src instanceof Uint8Array)) throw invalidArgument("lz4CompressBlock expects a Uint8Array");
  const dst = new Uint8Array(lz4CompressBound(src.length));
  return dst.slice(0, lz4CompressInto(src, dst));
}

/**
 * Decodes the LZ4 block `src[sp..sEnd)` into `dst` starting at `dp`, never
 * writing at or past `dEnd`. Matches may reach back to `windowStart` (earlier
 * output, used by linked blocks of LZ4 frames). Returns the output end.
 * Throws `LTX_CORRUPT` on any malformed sequence.
 *
 * Speed: short literal runs and matches are copied 8 bytes at a time through
 * DataViews ("wild copies" as LZ4's reference decoder does), which may write
 * up to 15 bytes past the current sequence, always below `dEnd`; those bytes
 * are rewritten by the following sequences before anything reads them
 * (matches only read below the position they write, and a block whose
 * output ends early is an error). Bytes of `dst` between the returned end and
 * `dEnd` are therefore unspecified.
 */
export function lz4DecodeInto(
  src: Uint8Array,
  sp: number,
  sEnd: number,
  dst: Uint8Array,
  dp: number,
  dEnd: number,
  windowStart: number,
): number {
  const sv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  for (;;) {
    if (sp >= sEnd) throw corrupt("lz4: block ends before its last sequence");
    const token = src[sp++]!;
    let litLen = token >>> 4;
    if (litLen === 15) {
      for (;;) {
        if (sp >= sEnd) throw corrupt("lz4: truncated literal length");
        const x = src[sp++]!;
        litLen += x;
        if (litLen > dEnd - dp) throw corrupt("lz4: literals overflow the output");
        if (x !== 255) break;
      }
    }
    if (litLen > dEnd - dp) throw corrupt("lz4: literals overflow the output");
    if (litLen > sEnd - sp) throw corrupt("lz4: literals overrun the input");
    if (litLen <= 16 && sEnd - sp >= 16 && dEnd - dp >= 16) {
      dv.setInt32(dp, sv.getInt32(sp, true), true);
      dv.setInt32(dp + 4, sv.getInt32(sp + 4, true), true);
      if (litLen > 8) {
        dv.setInt32(dp + 8, sv.getInt32(sp + 8, true), true);
        dv.setInt32(dp + 12, sv.getInt32(sp + 12, true), true);
      }
    } else {
      copyBytes(dst, dp, src, sp, litLen);
    }
    sp += litLen;
    dp += litLen;
    if (sp === sEnd) return dp; // a block ends with a literals-only sequence
    if (sEnd - sp < 2) throw corrupt("lz4: truncated match offset");
    const offset = src[sp]! | (src[sp + 1]! << 8);
    sp += 2;
    if (offset === 0 || offset > dp - windowStart) throw corrupt("lz4: invalid match offset");
    let matchLen = token & 15;
    if (matchLen === 15) {
      for (;;) {
        if (sp >= sEnd) throw corrupt("lz4: truncated match length");
        const x = src[sp++]!;
        matchLen += x;
        if (matchLen + MIN_MATCH > dEnd - dp) throw corrupt("lz4: match overflows the output");
        if (x !== 255) break;
      }
    }
    matchLen += MIN_MATCH;
    if (matchLen > dEnd - dp) throw corrupt("lz4: match overflows the output");
    let m = dp - offset;
    const end = dp + matchLen;
    if (offset >= matchLen && matchLen >= 64) {
      dst.copyWithin(dp, m, m + matchLen);
    } else if (offset >= 8 && dEnd - end >= 8) {
      // Each 8-byte step reads below where it writes (offset >= 8): no overlap within a step.
      do {
        dv.setInt32(dp, dv.getInt32(m, true), true);
        dv.setInt32(dp + 4, dv.getInt32(m + 4, true), true);
        dp += 8;
        m += 8;
      } while (dp < end);
    } else if (offset >= matchLen) {
      for (let i = 0; i < matchLen; i++) dst[dp + i] = dst[m + i]!;
    } else if (matchLen < 32) {
      // Overlapping and short: byte by byte repeats the last `offset` bytes.
      while (dp < end) dst[dp++] = dst[m++]!;
    } else {
      // Overlapping match: the output repeats its last `offset` bytes. Copy one
      // period, then keep doubling the copied run (always a whole number of periods).
      dst.copyWithin(dp, m, dp);
      let copied = offset;
      while (copied < matchLen) {
        const n = Math.min(copied, matchLen - copied);
        dst.copyWithin(dp + copied, dp, dp + n);
        copied += n;
      }
    }
    dp = end;
  }
}

/** Largest `outputSize` accepted by {@link lz4DecompressBlock} (guards allocations). */
export const LZ4_MAX_OUTPUT_SIZE = 1 << 30;

/**
 * Decompresses one LZ4 block that must expand to exactly `outputSize` bytes.
 * Throws `LTX_CORRUPT` for malformed input or a different output size.
 */
export function lz4DecompressBlock(src: Uint8Array, outputSize: number): Uint8Array {
  if (!(src instanceof Uint8Array))
    throw invalidArgument("lz4DecompressBlock expects a Uint8Array");
  if (!Number.isInteger(outputSize) || outputSize < 0 || outputSize > LZ4_MAX_OUTPUT_SIZE) {
    throw invalidArgument(`invalid LZ4 output size: ${String(outputSize)}`);
  }
  const dst = new Uint8Array(outputSize);
  if (src.length === 0 && outputSize === 0) return dst;
  const end = lz4DecodeInto(src, 0, src.length, dst, 0, outputSize, 0);
  if (end !== outputSize) {
    throw corrupt(`lz4: block decompressed to ${end} bytes, expected ${outputSize}`);
  }
  return dst;
}
