/**
 * Restore's WebAssembly page codec (src/replicator/page-codec.wat) against the
 * JavaScript reference loops: same bytes, same checksums, same errors, on
 * well-formed and on corrupted input; and the committed module is the one the
 * .wat source compiles to.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pageCodecModuleText } from "../../scripts/build-page-codec.mjs";
import { crc64 } from "../../src/format/crc64.js";
import { lz4CompressBlock, lz4DecodeInto } from "../../src/format/lz4-block.js";
import {
  decodePageBatch,
  decodePageBatchJs,
  type PageBatch,
} from "../../src/replicator/page-batch.js";
import { WasmPageCodec } from "../../src/replicator/wasm-page-codec.js";

/** xorshift32: reproducible pseudo-random bytes. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const WORDS = [
  "customer",
  "order",
  "2026-12-07",
  "status:paid",
  "refund",
  "é€",
  "\u0000\u0000",
].map((w) => new TextEncoder().encode(w));

/** A page that compresses like SQLite's: headers, repeated text, counters, zeros, noise. */
function pageLike(size: number, seed: number): Uint8Array {
  const r = rng(seed);
  const p = new Uint8Array(size);
  const words = WORDS;
  let i = 0;
  while (i < size) {
    const kind = r() % 5;
    if (kind === 0) {
      const w = words[r() % words.length]!;
      for (let k = 0; k < w.length && i < size; k++) p[i++] = w[k]!;
    } else if (kind === 1) {
      const n = r() % 300;
      for (let k = 0; k < n && i < size; k++) p[i++] = 0;
    } else if (kind === 2) {
      const n = r() % 40;
      for (let k = 0; k < n && i < size; k++) p[i++] = r() & 0xff;
    } else if (kind === 3) {
      // A short period repeated: overlapping matches (offsets 1..7).
      const period = 1 + (r() % 7);
      const n = r() % 200;
      for (let k = 0; k < n && i < size; k++) p[i++] = i >= period ? p[i - period]! : 7;
    } else {
      p[i++] = i & 0xff;
    }
  }
  return p;
}

/** JS reference: the output bytes, or the error message. */
function jsDecode(src: Uint8Array, outputSize: number): Uint8Array | string {
  const dst = new Uint8Array(outputSize);
  try {
    const end = lz4DecodeInto(src, 0, src.length, dst, 0, outputSize, 0);
    return dst.slice(0, end);
  } catch (err) {
    return (err as Error).message;
  }
}

const codec = WasmPageCodec.create();

describe("page codec (WebAssembly)", () => {
  it("is available in Node", () => {
    expect(codec).toBeDefined();
  });

  it("the committed module is the .wat source compiled", async () => {
    const committed = readFileSync(
      new URL("../../src/replicator/page-codec-wasm.ts", import.meta.url),
      "utf8",
    );
    expect(committed).toBe(await pageCodecModuleText());
  });

  it("CRC-64 equals the JavaScript CRC for every length and alignment, and continues", () => {
    const r = rng(42);
    const data = new Uint8Array(5000);
    for (let i = 0; i < data.length; i++) data[i] = r() & 0xff;
    for (let len = 0; len < 300; len++) {
      const at = len % 11;
      const d = data.subarray(at, at + len);
      expect(codec!.crc64(d)).toBe(crc64(d));
    }
    const a = data.subarray(0, 1234);
    const b = data.subarray(1234);
    expect(codec!.crc64(b, codec!.crc64(a))).toBe(crc64(data));
    expect(codec!.crc64(new TextEncoder().encode("123456789"))).toBe(0xb90956c775a41001n);
  });

  it("decodes what the writer's compressor produces, byte for byte", () => {
    for (const size of [512, 1024, 4096, 65536]) {
      for (let s = 1; s <= 20; s++) {
        const page = pageLike(size, s * 7919 + size);
        const block = lz4CompressBlock(page);
        const got = codec!.decodeBlock(block, size);
        expect(typeof got === "string" ? got : Buffer.compare(got, page)).toBe(0);
      }
    }
  });

  it("corrupted and truncated blocks: the same bytes or the same error as the JavaScript decoder", () => {
    const r = rng(7);
    let errors = 0;
    for (let s = 0; s < 400; s++) {
      const size = s % 2 ? 4096 : 1024;
      const block = lz4CompressBlock(pageLike(size, s + 1000)).slice();
      const kind = s % 4;
      let bad: Uint8Array;
      if (kind === 0) {
        bad = block.subarray(0, r() % block.length);
      } else {
        bad = block.slice();
        for (let k = 0; k <= kind; k++) bad[r() % bad.length] = r() & 0xff;
      }
      const outSize = s % 5 === 0 ? size - 1 - (r() % 64) : size;
      const want = jsDecode(bad, outSize);
      const got = codec!.decodeBlock(bad, outSize);
      if (typeof want === "string") errors++;
      expect(got).toEqual(want);
    }
    expect(errors).toBeGreaterThan(200);
  });

  it("generated blocks (every literal and match length, short and overlapping offsets, near the output's end): the same bytes or error", () => {
    const r = rng(23);
    /** A block of random sequences, and the size it decodes to. */
    const block = (): { bytes: Uint8Array; size: number } => {
      const out: number[] = [];
      const ext = (n: number) => {
        for (; n >= 255; n -= 255) out.push(255);
        out.push(n);
      };
      let produced = 0;
      const sequences = 1 + (r() % 24);
      for (let s = 0; s < sequences; s++) {
        const last = s === sequences - 1;
        let lit = r() % 4 === 0 ? r() % 40 : r() % 16;
        if (produced + lit === 0) lit = 1;
        const ml = 4 + (r() % 3 === 0 ? r() % 300 : r() % 20);
        const window = produced + lit;
        const off = 1 + (r() % Math.min(window, r() % 2 ? 8 : 65535));
        out.push((Math.min(lit, 15) << 4) | (last ? 0 : Math.min(ml - 4, 15)));
        if (lit >= 15) ext(lit - 15);
        for (let i = 0; i < lit; i++) out.push(97 + (r() % 4));
        produced += lit;
        if (last) break;
        out.push(off & 0xff, off >> 8);
        if (ml - 4 >= 15) ext(ml - 4 - 15);
        produced += ml;
      }
      return { bytes: Uint8Array.from(out), size: produced };
    };
    let errors = 0;
    for (let s = 0; s < 3000; s++) {
      const { bytes, size } = block();
      // Exact size (copies end at the output's end), larger, smaller; some corrupted.
      const outSize =
        s % 3 === 0 ? size : s % 3 === 1 ? size + (r() % 40) : Math.max(0, size - 1 - (r() % 8));
      const src = bytes.slice();
      if (s % 5 === 0) src[r() % src.length] = r() & 0xff;
      const want = jsDecode(src, outSize);
      if (typeof want === "string") errors++;
      expect(codec!.decodeBlock(src, outSize)).toEqual(want);
    }
    expect(errors).toBeGreaterThan(500);
  });

  it("a page batch: same pages, checksums and first error as the JavaScript path", () => {
    const pageSize = 4096;
    const pages = Array.from({ length: 40 }, (_, i) => pageLike(pageSize, i + 1));
    const blocks = pages.map((p) => lz4CompressBlock(p));
    const make = (corruptAt?: number): PageBatch => {
      const total = blocks.reduce((n, b) => n + b.length, 0);
      const payload = new Uint8Array(total + 100);
      const frames = new Uint32Array(blocks.length * 3);
      let at = 50;
      blocks.forEach((b, i) => {
        const bytes = i === corruptAt ? b.subarray(0, b.length - 3) : b;
        payload.set(bytes, at);
        frames[i * 3] = 1000 + i * 3;
        frames[i * 3 + 1] = at;
        frames[i * 3 + 2] = bytes.length;
        at += bytes.length;
      });
      return { pageSize, count: blocks.length, frames, payload };
    };
    const good = decodePageBatch(make());
    const ref = decodePageBatchJs(make());
    expect(good.error).toBeUndefined();
    expect(good.pages).toEqual(ref.pages);
    expect(good.sums).toEqual(ref.sums);
    const bad = decodePageBatch(make(17));
    const badRef = decodePageBatchJs(make(17));
    expect(bad.error).toEqual(badRef.error);
    expect(bad.error?.index).toBe(17);
    expect(bad.sums.subarray(0, 17 * 4)).toEqual(badRef.sums.subarray(0, 17 * 4));
    expect(bad.pages.subarray(0, 17 * pageSize)).toEqual(badRef.pages.subarray(0, 17 * pageSize));
    // A reused output buffer is written in place.
    const reuse = new Uint8Array(blocks.length * pageSize);
    const again = decodePageBatch({ ...make(), pages: reuse });
    expect(again.pages).toBe(reuse);
    expect(again.pages).toEqual(ref.pages);
  });
});
