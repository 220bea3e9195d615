/**
 * A restore decode thread (see `page-decode-pool.ts`): decodes the batches it
 * is sent and sends back the pages, their checksums and the batch's buffers,
 * all transferred (no copies).
 */
import { parentPort } from "node:worker_threads";
import { decodePageBatch, type PageBatch } from "./page-batch.js";

const port = parentPort;
if (!port) throw new Error("page-decode-worker runs as a worker thread");

port.on("message", (msg: { id: number; batch: PageBatch }) => {
  const { id, batch } = msg;
  const result = decodePageBatch(batch);
  port.postMessage({ id, ...result, payload: batch.payload, frames: batch.frames }, [
    result.pages.buffer as ArrayBuffer,
    result.sums.buffer as ArrayBuffer,
    batch.payload.buffer as ArrayBuffer,
    batch.frames.buffer as ArrayBuffer,
  ]);
});
