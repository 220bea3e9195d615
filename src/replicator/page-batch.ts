/**
 * A batch of LTX page frames to decompress and checksum, and the function
 * that does it: the unit of work restore hands to its decode threads (or runs
 * inline). Every LZ4-block payload of an LTX file is independent, so batches
 * decode in any order on any thread; the caller folds the per-page CRCs into
 * the file checksum in file order.
 */
import { Crc64 } from "../format/crc64.js";
import { LtxError } from "../format/ltx-error.js";
import { lz4DecodeInto } from "../format/lz4-block.js";
import { PageSums } from "./page-sums.js";
import { WasmPageCodec } from "./wasm-page-codec.js";

/** Frames to decode: payloads back to back in `payload`, described by `frames`. */
export interface PageBatch {
  pageSize: number;
  /** Number of frames. */
  count: number;
  /** Per frame: pgno, payload offset in `payload`, payload length (LZ4 block bytes). */
  frames: Uint32Array;
  payload: Uint8Array;
  /** A buffer to decode into (reused from an earlier batch), when at least `count * pageSize` long. */
  pages?: Uint8Array;
}

/** The decoded batch, or the first frame that failed. */
export interface DecodedBatch {
  /** `count` pages back to back. */
  pages: Uint8Array;
  /**
   * Per page: CRC-64 of the page (high, low: for the file checksum), then
   * its page checksum (CRC-64 of pgno ‖ page with bit 63 set; high, low).
   */
  sums: Uint32Array;
  /** Set when frame `index` did not decode: its error. */
  error?: { index: number; code: string; message: string };
}

// This thread's WebAssembly codec: null until first used, undefined when unavailable.
let wasmCodec: WasmPageCodec | undefined | null = null;

/**
 * Decompresses and checksums every frame of `batch` into `batch.pages` (a
 * fresh buffer when absent or too short). A frame whose payload is
 * not one LZ4 block expanding to exactly one page stops the batch with its
 * error (as the streaming decoder reports it).
 *
 * Runs the WebAssembly codec (`wasm-page-codec.ts`), or the JavaScript loops
 * where WebAssembly is unavailable or `PAGECAST_PAGE_CODEC=js` (a diagnostic
 * switch, e.g. to compare the two in the restore benchmark).
 */
export function decodePageBatch(batch: PageBatch): DecodedBatch {
  if (wasmCodec === null) {
    wasmCodec = process.env.PAGECAST_PAGE_CODEC === "js" ? undefined : WasmPageCodec.create();
  }
  return wasmCodec ? wasmCodec.decode(batch) : decodePageBatchJs(batch);
}

/** {@link decodePageBatch} in JavaScript: the reference and the fallback. */
export function decodePageBatchJs(batch: PageBatch): DecodedBatch {
  const { pageSize, count, frames, payload, pages } = batch;
  const out = pages && pages.length >= count * pageSize ? pages : new Uint8Array(count * pageSize);
  const sums = new PageSums(count, pageSize);
  const crc = new Crc64();
  for (let i = 0; i < count; i++) {
    const pgno = frames[i * 3]!;
    const start = frames[i * 3 + 1]!;
    const length = frames[i * 3 + 2]!;
    const at = i * pageSize;
    try {
      const end = lz4DecodeInto(payload, start, start + length, out, at, at + pageSize, at);
      if (end !== at + pageSize) {
        throw new LtxError(
          "LTX_CORRUPT",
          `page decompressed to ${end - at} bytes, expected ${pageSize}`,
        );
      }
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      return {
        pages: out,
        sums: sums.sums,
        error: {
          index: i,
          code: typeof e.code === "string" ? e.code : "LTX_CORRUPT",
          message: typeof e.message === "string" ? e.message : String(err),
        },
      };
    }
    crc.reset();
    crc.update(out, at, at + pageSize);
    sums.record(i, pgno, crc.hi, crc.lo);
  }
  return { pages: out, sums: sums.sums };
}
