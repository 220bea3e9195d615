/**
 * An LTX reader that behaves like superfly/ltx v0.5.1 (what Litestream
 * 0.5.0-0.5.15 links), written for the tests from the specifications only:
 * the LTX README of superfly/ltx (header, page block, page index, trailer,
 * file checksum), the LZ4 frame and block format descriptions, the XXH32
 * algorithm and CRC-64/ISO. It deliberately imports nothing from `src/format`,
 * so it checks pagecast's encoder instead of agreeing with it by construction.
 *
 * v0.5.1's page frames are a 6-byte page header whose flags must be zero
 * (its decoder answers "no flags allowed, reserved for future use" to
 * anything else), followed by an LZ4 frame that yields exactly one page and
 * then ends. The file checksum covers the stored header bytes, each page
 * header, each page *uncompressed*, the zero page header, the page index
 * and its size, and the post-apply checksum.
 */

export class V051Error extends Error {}

function fail(message: string): never {
  throw new V051Error(message);
}

// --- CRC-64/ISO (reflected polynomial 0xD800000000000000, init and xorout all
// ones), table-driven on 32-bit halves.
const CRC_HI = new Uint32Array(256);
const CRC_LO = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = BigInt(i);
  for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ 0xd800000000000000n : c >> 1n;
  CRC_HI[i] = Number(c >> 32n);
  CRC_LO[i] = Number(c & 0xffffffffn);
}

class Crc64Iso {
  #hi = 0xffffffff;
  #lo = 0xffffffff;
  update(bytes: Uint8Array): void {
    let hi = this.#hi;
    let lo = this.#lo;
    for (let i = 0; i < bytes.length; i++) {
      const t = (lo ^ bytes[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ CRC_LO[t]!;
      hi = (hi >>> 8) ^ CRC_HI[t]!;
    }
    this.#hi = hi >>> 0;
    this.#lo = lo >>> 0;
  }
  get value(): bigint {
    return (BigInt(~this.#hi >>> 0) << 32n) | BigInt(~this.#lo >>> 0);
  }
}

function crc64(bytes: Uint8Array): bigint {
  const c = new Crc64Iso();
  c.update(bytes);
  return c.value;
}

// --- XXH32, seed 0 (from the xxHash specification).
const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

function rotl32(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}
function mul32(a: number, b: number): number {
  return Math.imul(a, b) >>> 0;
}
function le32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

export function specXxh32(input: Uint8Array): number {
  const len = input.length;
  let p = 0;
  let acc: number;
  if (len >= 16) {
    const lanes = [
      (PRIME1 + PRIME2) >>> 0,
      PRIME2,
      0,
      (0x100000000 - PRIME1) >>> 0, // seed - PRIME1, mod 2^32
    ];
    while (p + 16 <= len) {
      for (let i = 0; i < 4; i++) {
        const lane = (lanes[i]! + mul32(le32(input, p + i * 4), PRIME2)) >>> 0;
        lanes[i] = mul32(rotl32(lane, 13), PRIME1);
      }
      p += 16;
    }
    acc =
      (rotl32(lanes[0]!, 1) +
        rotl32(lanes[1]!, 7) +
        rotl32(lanes[2]!, 12) +
        rotl32(lanes[3]!, 18)) >>>
      0;
  } else {
    acc = PRIME5;
  }
  acc = (acc + len) >>> 0;
  while (p + 4 <= len) {
    acc = mul32(rotl32((acc + mul32(le32(input, p), PRIME3)) >>> 0, 17), PRIME4);
    p += 4;
  }
  while (p < len) {
    acc = mul32(rotl32((acc + mul32(input[p]!, PRIME5)) >>> 0, 11), PRIME1);
    p++;
  }
  acc = mul32(acc ^ (acc >>> 15), PRIME2);
  acc = mul32(acc ^ (acc >>> 13), PRIME3);
  return (acc ^ (acc >>> 16)) >>> 0;
}

// --- LZ4 block format: sequences of token, literals, offset, match length.
function lz4BlockDecode(
  src: Uint8Array,
  out: Uint8Array,
  start: number,
  outMax: number,
  windowStart: number,
): number {
  let ip = 0;
  let op = start;
  for (;;) {
    if (ip >= src.length) fail("lz4 block: truncated");
    const token = src[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (ip >= src.length) fail("lz4 block: truncated length");
        const b = src[ip++]!;
        literals += b;
        if (b !== 255) break;
      }
    }
    if (ip + literals > src.length) fail("lz4 block: literals past the input");
    if (op + literals > outMax) fail("lz4 block: output larger than expected");
    for (let i = 0; i < literals; i++) out[op++] = src[ip++]!;
    if (ip === src.length) return op; // the last sequence has literals only
    if (ip + 2 > src.length) fail("lz4 block: truncated offset");
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op - windowStart) fail("lz4 block: invalid offset");
    let match = (token & 15) + 4;
    if ((token & 15) === 15) {
      for (;;) {
        if (ip >= src.length) fail("lz4 block: truncated match length");
        const b = src[ip++]!;
        match += b;
        if (b !== 255) break;
      }
    }
    if (op + match > outMax) fail("lz4 block: output larger than expected");
    for (let i = 0; i < match; i++, op++) out[op] = out[op - offset]!;
  }
}

/** Reads one LZ4 frame at `b[p..]` that must hold exactly `size` bytes; returns them and the end. */
export function readLz4Frame(
  b: Uint8Array,
  p: number,
  size: number,
): { data: Uint8Array; end: number } {
  const need = (n: number) => {
    if (p + n > b.length) fail("lz4 frame: truncated");
  };
  need(7);
  if (le32(b, p) !== 0x184d2204) fail("lz4 frame: bad magic");
  const flg = b[p + 4]!;
  const bd = b[p + 5]!;
  if (flg >>> 6 !== 1) fail("lz4 frame: version must be 01");
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) fail("lz4 frame: reserved bits set");
  const blockChecksum = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  if ((flg & 0x01) !== 0) fail("lz4 frame: dictionaries are not supported");
  const maxCode = (bd >>> 4) & 7;
  if (maxCode < 4) fail("lz4 frame: invalid block maximum");
  const blockMax = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20][maxCode]!;
  const descLen = 2 + (hasContentSize ? 8 : 0);
  need(4 + descLen + 1);
  const desc = b.subarray(p + 4, p + 4 + descLen);
  if (((specXxh32(desc) >>> 8) & 0xff) !== b[p + 4 + descLen]) fail("lz4 frame: header checksum");
  if (hasContentSize && (le32(b, p + 6) !== size || le32(b, p + 10) !== 0)) {
    fail("lz4 frame: content size is not one page");
  }
  p += 4 + descLen + 1;
  const out = new Uint8Array(size);
  let filled = 0;
  const independent = (flg & 0x20) !== 0;
  for (;;) {
    need(4);
    const word = le32(b, p);
    p += 4;
    if (word === 0) break;
    const stored = (word & 0x80000000) !== 0;
    const len = word & 0x7fffffff;
    if (len > blockMax) fail("lz4 frame: block larger than its maximum");
    need(len + (blockChecksum ? 4 : 0));
    const block = b.subarray(p, p + len);
    p += len;
    if (blockChecksum) {
      if (specXxh32(block) !== le32(b, p)) fail("lz4 frame: block checksum");
      p += 4;
    }
    if (stored) {
      if (filled + len > size) fail("lz4 frame: more than one page");
      out.set(block, filled);
      filled += len;
    } else {
      // Linked blocks may refer back into earlier output; independent ones may not.
      filled = lz4BlockDecode(block, out, filled, size, independent ? filled : 0);
    }
  }
  if (filled !== size) fail(`lz4 frame: ${filled} bytes, expected one page of ${size}`);
  if (contentChecksum) {
    need(4);
    if (specXxh32(out) !== le32(b, p)) fail("lz4 frame: content checksum");
    p += 4;
  }
  return { data: out, end: p };
}

function be32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}
function be64(b: Uint8Array, p: number): bigint {
  return (BigInt(be32(b, p)) << 32n) | BigInt(be32(b, p + 4));
}
function uvarint(b: Uint8Array, p: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (p + i >= b.length) fail("page index: truncated varint");
    const byte = b[p + i]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return { value, next: p + i + 1 };
    scale *= 128;
  }
  return fail("page index: varint too long");
}

const CHECKSUM_FLAG = 1n << 63n;
const NO_CHECKSUM = 0x2;

export interface V051Header {
  flags: number;
  pageSize: number;
  commit: number;
  minTXID: number;
  maxTXID: number;
  timestamp: number;
  preApplyChecksum: bigint;
}

export interface V051File {
  header: V051Header;
  pages: Map<number, Uint8Array>;
  /** Page number, offset and size of each frame, as the page index lists them. */
  index: { pgno: number; offset: number; size: number }[];
  postApplyChecksum: bigint;
  fileChecksum: bigint;
}

/** Decodes and verifies a whole file the way ltx v0.5.1 does (plus an exact page-index check). */
export function decodeV051(b: Uint8Array): V051File {
  if (b.length < 100 + 6 + 16) fail("file too short");
  if (new TextDecoder().decode(b.subarray(0, 4)) !== "LTX1") fail("invalid LTX file");
  const header: V051Header = {
    flags: be32(b, 4),
    pageSize: be32(b, 8),
    commit: be32(b, 12),
    minTXID: Number(be64(b, 16)),
    maxTXID: Number(be64(b, 24)),
    timestamp: Number(be64(b, 32)),
    preApplyChecksum: be64(b, 40),
  };
  if ((header.flags & ~NO_CHECKSUM) !== 0) fail(`invalid flags: 0x${header.flags.toString(16)}`);
  const ps = header.pageSize;
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)) !== 0) fail(`invalid page size: ${ps}`);
  if (header.minTXID === 0 || header.maxTXID === 0 || header.minTXID > header.maxTXID) {
    fail("invalid transaction ids");
  }
  const snapshot = header.minTXID === 1;
  const noChecksum = (header.flags & NO_CHECKSUM) !== 0;
  if ((snapshot || noChecksum) && header.preApplyChecksum !== 0n) {
    fail("pre-apply checksum must be zero");
  }
  const crc = new Crc64Iso();
  crc.update(b.subarray(0, 100));
  const lockPgno = Math.floor(0x40000000 / ps) + 1;
  const pages = new Map<number, Uint8Array>();
  const frames: { pgno: number; offset: number; size: number }[] = [];
  let dbChecksum = CHECKSUM_FLAG;
  let p = 100;
  for (let i = 0; ; i++) {
    if (p + 6 > b.length) fail("truncated page header");
    const pgno = be32(b, p);
    const pageFlags = (b[p + 4]! << 8) | b[p + 5]!;
    crc.update(b.subarray(p, p + 6));
    if (pgno === 0 && pageFlags === 0) {
      p += 6;
      break;
    }
    if (pgno === 0) fail(`decode page ${i}: page number required`);
    if (pageFlags !== 0) fail(`decode page ${i}: no flags allowed, reserved for future use`);
    if (pgno > header.commit) fail(`decode page ${i}: page ${pgno} beyond commit`);
    const { data, end } = readLz4Frame(b, p + 6, ps);
    crc.update(data);
    frames.push({ pgno, offset: p, size: end - p });
    pages.set(pgno, data);
    if (snapshot && !noChecksum && pgno !== lockPgno) {
      const input = new Uint8Array(4 + ps);
      new DataView(input.buffer).setUint32(0, pgno);
      input.set(data, 4);
      dbChecksum = CHECKSUM_FLAG | (dbChecksum ^ (crc64(input) | CHECKSUM_FLAG));
    }
    p = end;
  }
  // Page index: (pgno, offset, size) varints, a zero, then its byte size as a u64.
  const indexStart = p;
  const index: { pgno: number; offset: number; size: number }[] = [];
  for (;;) {
    const pg = uvarint(b, p);
    p = pg.next;
    if (pg.value === 0) break;
    const off = uvarint(b, p);
    const size = uvarint(b, off.next);
    p = size.next;
    index.push({ pgno: pg.value, offset: off.value, size: size.value });
  }
  if (p + 8 + 16 !== b.length) fail("unexpected bytes after the page index");
  if (be64(b, p) !== BigInt(p - indexStart)) fail("page index size mismatch");
  if (JSON.stringify(index) !== JSON.stringify(frames)) fail("page index does not match frames");
  crc.update(b.subarray(indexStart, p + 8 + 8));
  const postApplyChecksum = be64(b, p + 8);
  const fileChecksum = be64(b, p + 16);
  if ((crc.value | CHECKSUM_FLAG) !== fileChecksum) fail("file checksum mismatch");
  if (snapshot && !noChecksum && postApplyChecksum !== dbChecksum) {
    fail("post-apply checksum does not match the pages");
  }
  if (noChecksum && postApplyChecksum !== 0n) fail("post-apply checksum not allowed");
  if (!noChecksum && (postApplyChecksum & CHECKSUM_FLAG) === 0n) {
    fail("invalid post-apply checksum format");
  }
  return { header, pages, index, postApplyChecksum, fileChecksum };
}
