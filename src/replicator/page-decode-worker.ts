/**
 * A restore decode thread (see `page-decode-pool.ts`): decodes the batches it
 * is sent (and writes their pages to the file when asked) and sends back the
 * pages, their checksums and the batch's buffers, all transferred (no copies).
 */
import { parentPort } from "node:worker_threads";
import { decodePageBatch, type PageBatch } from "./page-batch.js";

const port = parentPort;
if (!port) throw new Error("page-decode-worker runs as a worker thread");

port.on("message", (msg: { id: number; batch: PageBatch }) => {
  const { id, batch } = msg;
  const result = decodePageBatch(batch);
  const transfer = [
    result.sums.buffer as ArrayBuffer,
    batch.payload.buffer as ArrayBuffer,
    batch.frames.buffer as ArrayBuffer,
  ];
  // Pages written to the file come back empty: nothing to hand over.
  if (result.pages.byteLength > 0) transfer.push(result.pages.buffer as ArrayBuffer);
  port.postMessage({ id, ...result, payload: batch.payload, frames: batch.frames }, transfer);
});
