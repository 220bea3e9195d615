/**
 * Ranged download: reads whole objects as a stream of fixed-size chunks,
 * several range GETs in flight at once, delivered in order. A single GET of a
 * large object is neither parallel nor memory-bounded (the body arrives as one
 * buffer); this keeps a bounded window of chunks ahead of the consumer instead,
 * across the objects of a sequence so that small objects after a large one are
 * prefetched while it is consumed. Reader-safe: no `node:` imports.
 */
import { PagecastError } from "../errors.js";
import type { ObjectStore } from "./object-store.js";

/** Default chunk size: the usual S3 multipart size, large enough to amortise a request. */
export const DEFAULT_CHUNK_SIZE = 8 << 20;
/** Default number of chunks requested or held at once. */
export const DEFAULT_CHUNKS_IN_FLIGHT = 8;

/** Why a ranged download could not deliver an object consistently. */
export type RangedDownloadErrorCode =
  /** A response did not cover the requested range, or the object's size differs from the expected one. */
  | "DOWNLOAD_SIZE_MISMATCH"
  /** The object changed (another ETag) between two chunks of the same download. */
  | "DOWNLOAD_OBJECT_CHANGED"
  /** The downloader was closed, or an object's chunks were read out of order. */
  | "DOWNLOAD_INVALID_STATE";

/** A ranged download failed to deliver an object consistently. */
export class RangedDownloadError extends PagecastError {
  declare readonly code: RangedDownloadErrorCode;

  constructor(code: RangedDownloadErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** One object of a download sequence. */
export interface RangedObject {
  key: string;
  /**
   * Expected size in bytes (e.g. from a listing): all its chunks can be
   * requested at once, and a different actual size fails the download. When
   * absent, the first chunk's response tells the size (one round trip before
   * the other chunks start).
   */
  size?: number;
}

/** Options of {@link RangedDownloader} and {@link rangedDownload}. */
export interface RangedDownloadOptions {
  /** Bytes per range GET (default {@link DEFAULT_CHUNK_SIZE}). */
  chunkSize?: number;
  /**
   * Chunks requested or received but not yet released by the consumer, at
   * most (default {@link DEFAULT_CHUNKS_IN_FLIGHT}). Together with `chunkSize`
   * this bounds the memory held: at most `chunkSize * chunksInFlight` bytes,
   * whatever the objects' sizes. The chunk being consumed counts until the
   * consumer asks for the next one.
   */
  chunksInFlight?: number;
  /** Aborts every request; reads then fail with the store's abort error. */
  signal?: AbortSignal;
  /**
   * Called whenever the bytes reserved for chunks (requested or received, not
   * yet released) change. For monitoring and tests; never exceeds the bound above.
   */
  onBuffered?: (bytes: number) => void;
}

interface Part {
  obj: number;
  offset: number;
  length: number;
  /** The chunk's bytes, in the pieces the store handed them over. */
  body: Promise<Uint8Array[]> | undefined;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangedDownloadError("DOWNLOAD_INVALID_STATE", `${name} must be a positive integer`);
  }
  return value;
}

/**
 * Downloads a sequence of objects with ranged GETs, in order, within a bounded
 * window: at most `chunksInFlight` chunks of at most `chunkSize` bytes are
 * requested or held at any time, taken in sequence order (so the object being
 * consumed always has priority and the window never deadlocks). Retries are
 * the store's business; each response is checked to cover exactly its range of
 * one unchanged object of the expected size.
 *
 * Read the objects in order with {@link chunks}, each to its end. Call
 * {@link close} when done or abandoning (it aborts what is still in flight).
 */
export class RangedDownloader {
  readonly #store: ObjectStore;
  readonly #objects: readonly RangedObject[];
  readonly #chunkSize: number;
  readonly #window: number;
  readonly #onBuffered: ((bytes: number) => void) | undefined;
  readonly #abort = new AbortController();
  readonly #unlink: () => void;
  /** Planned parts in sequence order; entries before #released are dropped (undefined). */
  readonly #parts: (Part | undefined)[] = [];
  readonly #sizes: (number | undefined)[] = [];
  readonly #etags: (string | undefined)[] = [];
  #started = 0;
  #released = 0;
  #nextObject = 0;
  /** The last planned object's size is unknown until its first chunk arrives. */
  #blocked = false;
  #reading = 0;
  #reserved = 0;
  #peak = 0;
  #closed = false;

  constructor(
    store: ObjectStore,
    objects: readonly RangedObject[],
    opts: RangedDownloadOptions = {},
  ) {
    this.#store = store;
    this.#objects = objects;
    this.#chunkSize = positiveInt(opts.chunkSize, DEFAULT_CHUNK_SIZE, "chunkSize");
    this.#window = positiveInt(opts.chunksInFlight, DEFAULT_CHUNKS_IN_FLIGHT, "chunksInFlight");
    this.#onBuffered = opts.onBuffered;
    for (const o of objects) {
      if (o.size !== undefined && (!Number.isSafeInteger(o.size) || o.size < 0)) {
        throw new RangedDownloadError(
          "DOWNLOAD_INVALID_STATE",
          `invalid expected size for ${o.key}: ${String(o.size)}`,
        );
      }
      this.#sizes.push(o.size);
      this.#etags.push(undefined);
    }
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => this.#abort.abort(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      this.#unlink = () => signal.removeEventListener("abort", onAbort);
    } else {
      this.#unlink = () => {};
    }
  }

  /** Most bytes ever reserved at once (requested or held), for diagnostics. */
  get peakBufferedBytes(): number {
    return this.#peak;
  }

  /**
   * The chunks of object `index`, in order. Objects must be read in sequence
   * order and each to its end; stopping early closes the downloader.
   */
  async *chunks(index: number): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#closed) {
      throw new RangedDownloadError("DOWNLOAD_INVALID_STATE", "the downloader is closed");
    }
    if (index !== this.#reading) {
      throw new RangedDownloadError(
        "DOWNLOAD_INVALID_STATE",
        `objects must be read in order: expected object ${this.#reading}, got ${index}`,
      );
    }
    let finished = false;
    try {
      for (;;) {
        this.#fill();
        const part = this.#parts[this.#released];
        if (part === undefined || part.obj !== index) break;
        const pieces = await (part.body as Promise<Uint8Array[]>);
        part.body = undefined;
        for (const piece of pieces) if (piece.length > 0) yield piece;
        // The consumer asked for more: it is done with this chunk.
        this.#parts[this.#released] = undefined;
        this.#released++;
        this.#reserve(-part.length);
      }
      this.#reading = index + 1;
      finished = true;
    } finally {
      if (!finished) this.close();
    }
  }

  /** Aborts requests still in flight and drops buffered chunks (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlink();
    this.#abort.abort(new RangedDownloadError("DOWNLOAD_INVALID_STATE", "download closed"));
    this.#parts.length = 0;
  }

  #reserve(delta: number): void {
    this.#reserved += delta;
    if (this.#reserved > this.#peak) this.#peak = this.#reserved;
    this.#onBuffered?.(this.#reserved);
  }

  /** Starts parts while the window has room. */
  #fill(): void {
    while (!this.#closed && this.#started - this.#released < this.#window) {
      if (this.#started === this.#parts.length && !this.#plan()) return;
      const part = this.#parts[this.#started++] as Part;
      this.#reserve(part.length);
      const body = this.#fetch(part);
      // Failures surface when the consumer reaches the part; never unhandled.
      body.catch(() => {});
      part.body = body;
    }
  }

  /** Appends the parts of the next object; false when nothing can be planned now. */
  #plan(): boolean {
    if (this.#blocked || this.#nextObject >= this.#objects.length) return false;
    const obj = this.#nextObject++;
    const size = this.#sizes[obj];
    if (size === undefined) {
      this.#parts.push({ obj, offset: 0, length: this.#chunkSize, body: undefined });
      this.#blocked = true;
    } else {
      this.#planRest(obj, 0, size);
    }
    return true;
  }

  #planRest(obj: number, from: number, size: number): void {
    if (size === 0 && from === 0) {
      // An empty object still has to exist: one zero-length read checks that.
      this.#parts.push({ obj, offset: 0, length: 0, body: undefined });
      return;
    }
    for (let offset = from; offset < size; offset += this.#chunkSize) {
      this.#parts.push({
        obj,
        offset,
        length: Math.min(this.#chunkSize, size - offset),
        body: undefined,
      });
    }
  }

  async #fetch(part: Part): Promise<Uint8Array[]> {
    const { key } = this.#objects[part.obj] as RangedObject;
    const res = await this.#store.get(key, {
      range: { offset: part.offset, length: part.length },
      signal: this.#abort.signal,
      pieces: true,
    });
    if (res.notModified) {
      throw new RangedDownloadError(
        "DOWNLOAD_OBJECT_CHANGED",
        `unexpected not-modified for ${key}`,
      );
    }
    const known = this.#sizes[part.obj];
    const size = known ?? res.meta.size;
    if (res.meta.size !== size) {
      throw new RangedDownloadError(
        "DOWNLOAD_SIZE_MISMATCH",
        `${key} has ${res.meta.size} bytes, expected ${size}`,
      );
    }
    const expected = Math.max(0, Math.min(part.length, size - part.offset));
    const pieces = res.pieces ?? [res.body];
    const received = res.pieces ? res.pieces.reduce((n, p) => n + p.length, 0) : res.body.length;
    if (res.offset !== part.offset || received !== expected) {
      throw new RangedDownloadError(
        "DOWNLOAD_SIZE_MISMATCH",
        `${key}: asked for ${expected} bytes at ${part.offset}, got ${received} at ${res.offset}`,
      );
    }
    const etag = this.#etags[part.obj];
    if (etag === undefined) this.#etags[part.obj] = res.meta.etag;
    else if (etag !== res.meta.etag) {
      throw new RangedDownloadError(
        "DOWNLOAD_OBJECT_CHANGED",
        `${key} changed while it was being downloaded`,
      );
    }
    if (known === undefined && !this.#closed) {
      // The first chunk told the size: plan the rest, then the following objects.
      this.#sizes[part.obj] = size;
      // Release the over-reservation of a short object.
      this.#reserve(expected - part.length);
      part.length = expected;
      this.#planRest(part.obj, this.#chunkSize, size);
      this.#blocked = false;
      this.#fill();
    }
    return pieces;
  }
}

/**
 * One object as a stream of chunks fetched with parallel range GETs (see
 * {@link RangedDownloader}); memory held is at most `chunkSize * chunksInFlight`.
 */
export async function* rangedDownload(
  store: ObjectStore,
  key: string,
  opts: RangedDownloadOptions & { size?: number } = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const downloader = new RangedDownloader(
    store,
    [opts.size === undefined ? { key } : { key, size: opts.size }],
    opts,
  );
  try {
    yield* downloader.chunks(0);
  } finally {
    downloader.close();
  }
}
