/**
 * Decode threads for restore: worker threads that decompress and checksum
 * batches of page frames (see `page-batch.ts`), so restore decodes on every
 * core while its main thread downloads, splits frames and writes. Without
 * threads (0 asked for, or the worker script is not next to this module, as
 * when running from TypeScript sources) batches decode inline, same code.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { LtxError } from "../format/ltx-error.js";
import { type DecodedBatch, decodePageBatch, type PageBatch } from "./page-batch.js";

/** What a worker sends back: the decoded batch and the batch's buffers for reuse. */
export interface PoolResult extends DecodedBatch {
  /** The batch's payload buffer, free for the next batch. */
  payload: Uint8Array;
  frames: Uint32Array;
}

interface Job {
  resolve(result: PoolResult): void;
  reject(err: unknown): void;
}

interface Thread {
  worker: Worker;
  jobs: Map<number, Job>;
}

const WORKER_URL = new URL("./page-decode-worker.js", import.meta.url);

/**
 * Decode threads used when not told: one per core beyond the first (which
 * the main thread keeps busy with the network, frames and writes), 1 to 4.
 */
export function defaultDecodeThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/** A pool of decode threads (or the inline decoder). Close it when done. */
export class PageDecodePool {
  readonly #threads: Thread[] = [];
  #next = 1;
  #failed: unknown;
  #closed = false;

  /** `threads` worker threads (0: decode inline on the calling thread). */
  constructor(threads: number) {
    if (threads > 0 && existsSync(fileURLToPath(WORKER_URL))) {
      for (let i = 0; i < threads; i++) this.#spawn();
    }
  }

  /** Worker threads running (0: inline). */
  get threads(): number {
    return this.#threads.length;
  }

  /** Batches submitted and not settled. */
  get pending(): number {
    let n = 0;
    for (const t of this.#threads) n += t.jobs.size;
    return n;
  }

  #spawn(): void {
    const worker = new Worker(WORKER_URL);
    const thread: Thread = { worker, jobs: new Map() };
    worker.on("message", (msg: { id: number } & PoolResult) => {
      const job = thread.jobs.get(msg.id);
      if (!job) return;
      thread.jobs.delete(msg.id);
      job.resolve(msg);
    });
    const fail = (err: unknown) => {
      this.#failed ??= err;
      for (const job of thread.jobs.values()) job.reject(err);
      thread.jobs.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (!this.#closed) {
        fail(new LtxError("LTX_INVALID_STATE", `a restore decode thread exited (code ${code})`));
      }
    });
    this.#threads.push(thread);
  }

  /**
   * Decodes `batch` on the least busy thread (inline without threads). Its
   * buffers are transferred to the thread: do not touch them until the
   * result gives them back.
   */
  decode(batch: PageBatch): Promise<PoolResult> {
    if (this.#closed) {
      return Promise.reject(new LtxError("LTX_INVALID_STATE", "the decode pool is closed"));
    }
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#threads.length === 0) {
      return Promise.resolve({
        ...decodePageBatch(batch),
        payload: batch.payload,
        frames: batch.frames,
      });
    }
    let thread = this.#threads[0]!;
    for (const t of this.#threads) if (t.jobs.size < thread.jobs.size) thread = t;
    const id = this.#next++;
    return new Promise<PoolResult>((resolve, reject) => {
      thread.jobs.set(id, { resolve, reject });
      const transfer = [batch.payload.buffer as ArrayBuffer, batch.frames.buffer as ArrayBuffer];
      if (batch.pages) transfer.push(batch.pages.buffer as ArrayBuffer);
      thread.worker.postMessage({ id, batch }, transfer);
    });
  }

  /** Stops the threads (idempotent); pending batches fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new LtxError("LTX_INVALID_STATE", "the decode pool is closed");
    await Promise.all(
      this.#threads.map(async (t) => {
        for (const job of t.jobs.values()) job.reject(closed);
        t.jobs.clear();
        await t.worker.terminate();
      }),
    );
  }
}
