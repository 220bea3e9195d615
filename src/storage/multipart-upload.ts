/**
 * The orchestration of an S3 multipart upload, independent of the client
 * that sends the requests: parts read one at a time and in order, at most
 * `concurrency` of them in flight (so memory stays at the parts in flight),
 * the put's condition checked with a HEAD just before completing (servers
 * that ignore it on CompleteMultipartUpload still get that check; AWS also
 * enforces it atomically there), and the upload aborted when anything fails.
 * Runtime-agnostic (no `node:` imports).
 */
import { sameEtag } from "./etag.js";
import type { ObjectMeta, PutOptions } from "./object-store.js";
import type { PieceReader } from "./put-stream.js";
import { PreconditionFailedError, StoreAbortedError, StoreRequestError } from "./store-errors.js";
import { describeKey } from "./store-keys.js";

/** S3's most parts per multipart upload. */
export const MAX_PARTS = 10_000;

/** The requests of one upload, each already retried by the caller's runner. */
export interface MultipartSteps {
  /** Starts the upload; returns its id. */
  create(): Promise<string>;
  /** Uploads part `partNumber` (1-based); returns its ETag. `signal` stops the other parts once one fails. */
  upload(
    uploadId: string,
    partNumber: number,
    part: Uint8Array,
    signal: AbortSignal,
  ): Promise<string>;
  /** Completes the upload with the parts' ETags in order; returns the object's ETag when the server gives it. */
  complete(uploadId: string, etags: string[]): Promise<string | undefined>;
  /** Best-effort abort (an abandoned upload costs storage). */
  abort(uploadId: string): Promise<void>;
  /** The object's current metadata (for the condition check before completing). */
  head(): Promise<ObjectMeta | undefined>;
}

/** The parts of an in-memory body, one per call (views, not copies). */
export function bodyParts(
  body: Uint8Array,
  partSize: number,
): () => Promise<Uint8Array | undefined> {
  let offset = 0;
  return async () => {
    if (offset >= body.length) return undefined;
    const part = body.subarray(offset, offset + partSize);
    offset += part.length;
    return part;
  };
}

/**
 * Parts of exactly `partSize` (the last one shorter) from `head` (bytes read
 * ahead) and then `reader`; `release` gives a part's memory back for reuse.
 */
export function streamParts(
  reader: PieceReader,
  head: Uint8Array,
  partSize: number,
): { nextPart: () => Promise<Uint8Array | undefined>; release: (part: Uint8Array) => void } {
  let prefix = head;
  const free: Uint8Array[] = [];
  const release = (part: Uint8Array) => {
    if (part.byteOffset === 0 && part.buffer.byteLength === partSize) free.push(part);
  };
  const nextPart = async (): Promise<Uint8Array | undefined> => {
    if (prefix.length >= partSize) {
      const part = prefix.subarray(0, partSize);
      prefix = prefix.subarray(partSize);
      return part;
    }
    const more = await reader.read(
      partSize - prefix.length,
      prefix.length === 0 ? free.pop() : undefined,
    );
    let part = more;
    if (prefix.length > 0) {
      part = new Uint8Array(prefix.length + more.length);
      part.set(prefix);
      part.set(more, prefix.length);
      prefix = new Uint8Array(0);
    }
    return part.length > 0 ? part : undefined;
  };
  return { nextPart, release };
}

/**
 * Uploads the parts `nextPart` yields (`undefined` ends them) through
 * `steps`; returns the object's ETag when the server gave one.
 */
export async function uploadMultipart(
  key: string,
  where: string,
  nextPart: () => Promise<Uint8Array | undefined>,
  steps: MultipartSteps,
  options: PutOptions,
  concurrency: number,
  release?: (part: Uint8Array) => void,
): Promise<string | undefined> {
  const uploadId = await steps.create();
  // Parts stop early once one fails; the caller's signal stops them too.
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const etags: string[] = [];
    let count = 0;
    let bytes = 0;
    let ended = false;
    // Parts are read one at a time, in order, whatever the number of workers.
    let reading: Promise<unknown> = Promise.resolve();
    const take = (): Promise<{ index: number; part: Uint8Array } | undefined> => {
      const taken = reading.then(async () => {
        if (ended || stop.signal.aborted) return undefined;
        const part = await nextPart();
        if (!part) {
          ended = true;
          return undefined;
        }
        if (count >= MAX_PARTS) {
          throw new StoreRequestError(
            `S3 put ${describeKey(key)} in ${where}: body needs more than ${MAX_PARTS} parts`,
            { retryable: false },
          );
        }
        return { index: count++, part };
      });
      reading = taken.catch(() => {});
      return taken;
    };
    const worker = async () => {
      while (!stop.signal.aborted) {
        const piece = await take();
        if (!piece) break;
        etags[piece.index] = await steps.upload(uploadId, piece.index + 1, piece.part, stop.signal);
        bytes += piece.part.length;
        release?.(piece.part);
      }
    };
    await Promise.all(
      Array.from({ length: concurrency }, () =>
        worker().catch((error: unknown) => {
          stop.abort(error);
          throw error;
        }),
      ),
    );
    if (!ended) {
      // Every worker stopped without an error: only the caller's signal does that.
      throw new StoreAbortedError(undefined, { cause: options.signal?.reason });
    }
    if (options.ifNoneMatch === "*" || options.ifMatch !== undefined) {
      const current = await steps.head();
      if (
        (options.ifNoneMatch === "*" && current) ||
        (options.ifMatch !== undefined && (!current || !sameEtag(options.ifMatch, current.etag)))
      ) {
        throw new PreconditionFailedError(key);
      }
    }
    try {
      return await steps.complete(uploadId, etags);
    } catch (error) {
      // A completion retried after its first attempt succeeded (the answer
      // was lost: timeout, reset) finds the upload gone. The object is this
      // upload's when it has its size and part count (S3's multipart ETags
      // end in "-<parts>"; keys of large objects are unique per TXID).
      if (error instanceof StoreRequestError && error.serverCode === "NoSuchUpload") {
        const current = await steps.head().catch(() => undefined);
        if (current && current.size === bytes && current.etag.endsWith(`-${etags.length}`)) {
          return current.etag;
        }
      }
      throw error;
    }
  } catch (error) {
    await steps.abort(uploadId).catch(() => {});
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}
