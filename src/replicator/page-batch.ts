/**
 * A batch of LTX page frames to decompress and checksum, and the function
 * that does it: the unit of work restore hands to its decode threads (or runs
 * inline). Every LZ4-block payload of an LTX file is independent, so batches
 * decode in any order on any thread; the caller folds the per-page CRCs into
 * the file checksum in file order.
 */
import { writeSync } from "node:fs";
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
  /**
   * Write the decoded pages to this open file, page `pgno` at
   * `(pgno - 1) * pageSize`, instead of handing them back: restore's decode
   * threads write what they decode, so its main thread neither copies nor
   * writes page images. Nothing is written when a frame fails to decode.
   */
  writeFd?: number;
}

/** The decoded batch, or the first frame that failed. */
export interface DecodedBatch {
  /** `count` pages back to back (empty when they were written to `writeFd`). */
  pages: Uint8Array;
  /**
   * Per page: CRC-64 of the page (high, low: for the file checksum), then
   * its page checksum (CRC-64 of pgno ‖ page with bit 63 set; high, low).
   */
  sums: Uint32Array;
  /** Set when frame `index` did not decode: its error. */
  error?: { index: number; code: string; message: string };
  /** Set when writing the pages to `writeFd` failed: the system error's code and message. */
  writeError?: { code: string; message: string };
}

// This thread's WebAssembly codec: null until first used, undefined when unavailable.
let wasmCodec: WasmPageCodec | undefined | null = null;

/**
 * Decompresses and checksums every frame of `batch` into `batch.pages` (a
 * fresh buffer when absent or too short). A frame whose payload is
 * not one LZ4 block expanding to exactly one page stops the batch with its
 * error (as the streaming decoder reports it). With `writeFd`, the pages are
 * written there instead (synchronously: this runs on a decode thread) and
 * `pages` comes back empty; a failed write is `writeError`.
 *
 * Runs the WebAssembly codec (`wasm-page-codec.ts`), or the JavaScript loops
 * where WebAssembly is unavailable or `PAGECAST_PAGE_CODEC=js` (a diagnostic
 * switch, e.g. to compare the two in the restore benchmark).
 */
export function decodePageBatch(batch: PageBatch): DecodedBatch {
  if (wasmCodec === null) {
    wasmCodec = process.env.PAGECAST_PAGE_CODEC === "js" ? undefined : WasmPageCodec.create();
  }
  const fd = batch.writeFd;
  if (fd === undefined) return wasmCodec ? wasmCodec.decode(batch) : decodePageBatchJs(batch);
  // Written straight from the codec's memory, no copy. (Writing on the I/O
  // threads while the next batch decodes measured no faster, with the copy.)
  const decoded = wasmCodec ? wasmCodec.decode(batch, true) : decodePageBatchJs(batch);
  const { sums } = decoded;
  if (decoded.error) return { pages: new Uint8Array(0), sums, error: decoded.error };
  try {
    writePageRuns(fd, batch, decoded.pages);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return {
      pages: new Uint8Array(0),
      sums,
      writeError: {
        code: typeof e.code === "string" ? e.code : "EIO",
        message: typeof e.message === "string" ? e.message : String(err),
      },
    };
  }
  return { pages: new Uint8Array(0), sums };
}

/**
 * Writes decoded pages (`pages`: the batch's pages back to back) to `fd`,
 * one positioned write per run of consecutive page numbers (a snapshot's
 * batch is one run).
 */
function writePageRuns(fd: number, batch: PageBatch, pages: Uint8Array): void {
  const { frames, count, pageSize } = batch;
  for (let i = 0; i < count; ) {
    let j = i + 1;
    while (j < count && frames[j * 3] === frames[(j - 1) * 3]! + 1) j++;
    const length = (j - i) * pageSize;
    const position = (frames[i * 3]! - 1) * pageSize;
    // The OS may write part of a large request.
    for (let done = 0; done < length; ) {
      done += writeSync(fd, pages, i * pageSize + done, length - done, position + done);
    }
    i = j;
  }
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
