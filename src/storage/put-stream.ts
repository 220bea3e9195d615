/**
 * Streaming puts: the helper every caller uses (falls back to buffering +
 * `put` for stores without `putStream`), and the chunk handling the backends
 * share. Runtime-agnostic (no `node:` imports).
 */
import type { ObjectStore, PutOptions, PutResult } from "./object-store.js";
import { joinPieces } from "./response-body.js";
import { InvalidStoreArgumentError, StoreAbortedError } from "./store-errors.js";

/**
 * Writes `source` to `key`: through `store.putStream` when the store has it,
 * else collected into one buffer and `put` (memory then grows with the body).
 */
export function putStream(
  store: ObjectStore,
  key: string,
  source: AsyncIterable<Uint8Array>,
  options?: PutOptions,
): Promise<PutResult> {
  if (typeof store.putStream === "function") return store.putStream(key, source, options);
  return collectChunks(source, options?.signal).then((body) => store.put(key, body, options));
}

/** Checks that `source` is an async iterable (JS callers may pass anything). */
export function checkSource(source: AsyncIterable<Uint8Array>): void {
  const it = (source as unknown as Record<symbol, unknown> | null | undefined)?.[
    Symbol.asyncIterator
  ];
  if (typeof it !== "function") {
    throw new InvalidStoreArgumentError("source must be an async iterable of Uint8Array chunks");
  }
}

function checkChunk(chunk: unknown): Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new InvalidStoreArgumentError("source yielded a chunk that is not a Uint8Array");
  }
  return chunk;
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StoreAbortedError(undefined, { cause: signal.reason });
}

/** Concatenates a source's chunks (copied: the source may reuse them). */
export async function collectChunks(
  source: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  checkSource(source);
  checkSignal(signal);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const raw of source) {
    checkSignal(signal);
    const chunk = checkChunk(raw);
    if (chunk.length === 0) continue;
    chunks.push(chunk.slice());
    size += chunk.length;
  }
  checkSignal(signal);
  if (chunks.length === 1) return chunks[0]!;
  return joinPieces(chunks, size);
}

/**
 * Cuts a chunk source into pieces of a fixed size (the last one shorter),
 * each in its own buffer, so that upload parts can be sent while the next one
 * fills. Reads are sequential; callers serialize them.
 */
export class PieceReader {
  readonly #iter: AsyncIterator<Uint8Array>;
  readonly #signal: AbortSignal | undefined;
  /** Unconsumed bytes of the current chunk. */
  #rest: Uint8Array = new Uint8Array(0);
  #done = false;
  /** Bytes handed out so far. */
  bytes = 0;

  constructor(source: AsyncIterable<Uint8Array>, signal?: AbortSignal) {
    checkSource(source);
    this.#iter = source[Symbol.asyncIterator]();
    this.#signal = signal;
  }

  /**
   * The next `size` bytes (fewer only at the end; empty once the source is
   * exhausted), in `into` when it is given and `size` bytes long, else in a
   * new buffer.
   */
  async read(size: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into !== undefined && into.length === size ? into : new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      if (this.#rest.length === 0) {
        if (!(await this.#pull())) break;
        continue;
      }
      const n = Math.min(size - filled, this.#rest.length);
      out.set(this.#rest.subarray(0, n), filled);
      this.#rest = this.#rest.subarray(n);
      filled += n;
    }
    this.bytes += filled;
    return filled === size ? out : out.subarray(0, filled);
  }

  /** Whether the source has no bytes left (pulls a chunk to find out). */
  async atEnd(): Promise<boolean> {
    while (this.#rest.length === 0) if (!(await this.#pull())) return true;
    return false;
  }

  /** Lets the source release what it holds (after a failure). */
  async cancel(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      await this.#iter.return?.();
    } catch {
      // Releasing is best effort; the failure that led here matters more.
    }
  }

  async #pull(): Promise<boolean> {
    if (this.#done) return false;
    checkSignal(this.#signal);
    const res = await this.#iter.next();
    if (res.done) {
      this.#done = true;
      return false;
    }
    // Consumed (copied into pieces) before the next pull: the source may reuse its buffer.
    this.#rest = checkChunk(res.value);
    return true;
  }
}
