/**
 * XXH32 (seed 0 by default). Used only to verify the header, block and content
 * checksums of legacy LZ4-frame page payloads.
 */

const P1 = 2654435761 | 0;
const P2 = 2246822519 | 0;
const P3 = 3266489917 | 0;
const P4 = 668265263 | 0;
const P5 = 374761393 | 0;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function read32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

function round(acc: number, input: number): number {
  return Math.imul(rotl((acc + Math.imul(input, P2)) | 0, 13), P1);
}

/** XXH32 of `data[start..end)` as an unsigned 32-bit number. */
export function xxh32(data: Uint8Array, start = 0, end = data.length, seed = 0): number {
  const len = end - start;
  let p = start;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    const limit = end - 16;
    while (p <= limit) {
      v1 = round(v1, read32(data, p));
      v2 = round(v2, read32(data, p + 4));
      v3 = round(v3, read32(data, p + 8));
      v4 = round(v4, read32(data, p + 12));
      p += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + len) | 0;
  while (p + 4 <= end) {
    h = (h + Math.imul(read32(data, p), P3)) | 0;
    h = Math.imul(rotl(h, 17), P4);
    p += 4;
  }
  while (p < end) {
    h = (h + Math.imul(data[p]!, P5)) | 0;
    h = Math.imul(rotl(h, 11), P1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}
