/**
 * Restore's page codec in WebAssembly (page-codec.wat): decompresses a batch
 * of LZ4-block page frames and computes each page's CRC-64 several times
 * faster than the JavaScript loops (64-bit registers, 8-byte copies without
 * per-access bounds checks), with the same results and the same errors as
 * `decodePageBatch`'s JavaScript path, which stays the fallback.
 *
 * One instance per thread; its memory grows to the largest batch seen.
 */
import { crc64SlicingTables } from "../format/crc64.js";
import type { DecodedBatch, PageBatch } from "./page-batch.js";
import { PAGE_CODEC_WASM_BASE64 } from "./page-codec-wasm.js";
import { PageSums } from "./page-sums.js";

/** Slicing-by-16 tables at the start of memory (16 tables x 256 x 8 bytes). */
const TABLE_COUNT = 16;
const TABLES_BYTES = TABLE_COUNT * 256 * 8;
const WASM_PAGE = 65536;

/** The decoder's negative results, worded as `lz4DecodeInto`'s errors. */
const LZ4_ERRORS: Record<number, string> = {
  [-1]: "lz4: block ends before its last sequence",
  [-2]: "lz4: truncated literal length",
  [-3]: "lz4: literals overflow the output",
  [-4]: "lz4: literals overrun the input",
  [-5]: "lz4: truncated match offset",
  [-6]: "lz4: invalid match offset",
  [-7]: "lz4: truncated match length",
  [-8]: "lz4: match overflows the output",
};

interface CodecExports {
  memory: WebAssembly.Memory;
  error(): number;
  lz4(sp: number, sEnd: number, dp: number, dEnd: number, windowStart: number): number;
  crc(crc: bigint, p: number, n: number): bigint;
  pages(count: number, frames: number, out: number, pageSize: number, crcs: number): number;
}

const align8 = (n: number) => (n + 7) & ~7;

export class WasmPageCodec {
  readonly #x: CodecExports;

  private constructor(x: CodecExports) {
    this.#x = x;
    new Int32Array(x.memory.buffer, 0, TABLES_BYTES / 4).set(crc64SlicingTables(TABLE_COUNT));
  }

  /** A codec for this thread, or undefined where WebAssembly cannot be compiled. */
  static create(): WasmPageCodec | undefined {
    try {
      const bytes = Uint8Array.from(atob(PAGE_CODEC_WASM_BASE64), (c) => c.charCodeAt(0));
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
      return new WasmPageCodec(instance.exports as unknown as CodecExports);
    } catch {
      return undefined;
    }
  }

  /** Memory bytes with room for `end`. */
  #reserve(end: number): ArrayBuffer {
    const memory = this.#x.memory;
    const have = memory.buffer.byteLength;
    if (end > have) memory.grow(Math.ceil((end - have) / WASM_PAGE));
    return memory.buffer;
  }

  /**
   * LZ4-decodes one block, as `lz4DecodeInto` over fresh buffers (for tests).
   * Also an error: any write past the output's end (batches decode pages back
   * to back, where it would clobber the next page).
   */
  decodeBlock(src: Uint8Array, outputSize: number): Uint8Array | string {
    const dst = align8(TABLES_BYTES + src.length);
    const buf = this.#reserve(dst + outputSize + 64);
    const mem = new Uint8Array(buf);
    mem.set(src, TABLES_BYTES);
    const guard = mem.subarray(dst + outputSize, dst + outputSize + 64);
    guard.fill(0xa5);
    const end = this.#x.lz4(TABLES_BYTES, TABLES_BYTES + src.length, dst, dst + outputSize, dst);
    if (guard.some((b) => b !== 0xa5)) return "wrote past the output's end";
    if (end < 0) return LZ4_ERRORS[end] ?? `lz4: error ${end}`;
    return new Uint8Array(buf, dst, end - dst).slice();
  }

  /** CRC-64/ISO of `data` continuing `crc` (as `crc64`; for tests). */
  crc64(data: Uint8Array, crc = 0n): bigint {
    const buf = this.#reserve(TABLES_BYTES + data.length);
    new Uint8Array(buf).set(data, TABLES_BYTES);
    return BigInt.asUintN(64, this.#x.crc(BigInt.asIntN(64, crc), TABLES_BYTES, data.length));
  }

  /**
   * Same contract as `decodePageBatch`, without writing to `writeFd`. With
   * `view`, `pages` is a view of this codec's memory instead of a copy: valid
   * until its next call, never to be transferred.
   */
  decode(batch: PageBatch, view = false): DecodedBatch {
    const { pageSize, count, frames, payload, pages } = batch;
    let payloadEnd = 0;
    for (let i = 0; i < count; i++) {
      const end = frames[i * 3 + 1]! + frames[i * 3 + 2]!;
      if (end > payloadEnd) payloadEnd = end;
    }
    if (payloadEnd > payload.length) throw new RangeError("page batch frames overrun the payload");
    const framesAt = TABLES_BYTES;
    const crcsAt = align8(framesAt + count * 12);
    const payloadAt = crcsAt + count * 8;
    const pagesAt = align8(payloadAt + payloadEnd);
    const buf = this.#reserve(pagesAt + count * pageSize);
    const mem = new Uint8Array(buf);
    mem.set(payload.subarray(0, payloadEnd), payloadAt);
    const f = new Uint32Array(buf, framesAt, count * 3);
    for (let i = 0; i < count * 3; i += 3) {
      f[i] = frames[i]!;
      f[i + 1] = frames[i + 1]! + payloadAt;
      f[i + 2] = frames[i + 2]!;
    }
    const failed = this.#x.pages(count, framesAt, pagesAt, pageSize, crcsAt);
    const done = failed < 0 ? count : failed;
    let out: Uint8Array;
    if (view) {
      out = mem.subarray(pagesAt, pagesAt + count * pageSize);
    } else {
      out = pages && pages.length >= count * pageSize ? pages : new Uint8Array(count * pageSize);
      out.set(mem.subarray(pagesAt, pagesAt + done * pageSize));
    }
    const sums = new PageSums(count, pageSize);
    const crcs = new Uint32Array(buf, crcsAt, count * 2);
    for (let i = 0; i < done; i++) sums.record(i, frames[i * 3]!, crcs[i * 2 + 1]!, crcs[i * 2]!);
    if (failed < 0) return { pages: out, sums: sums.sums };
    const r = this.#x.error();
    const message =
      r < 0
        ? (LZ4_ERRORS[r] ?? `lz4: error ${r}`)
        : `page decompressed to ${r - (pagesAt + failed * pageSize)} bytes, expected ${pageSize}`;
    return { pages: out, sums: sums.sums, error: { index: failed, code: "LTX_CORRUPT", message } };
  }
}
