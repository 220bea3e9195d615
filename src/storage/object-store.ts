/**
 * The one storage contract pagecast's writer and reader share. Every backend
 * (S3, file system, memory) implements exactly this; wrappers (retries,
 * counters, fault injection) compose over it.
 *
 * Keys are `/`-separated relative keys; a backend maps them under its own root
 * (bucket + prefix, directory, or map). Every backend accepts the same keys
 * (`store-keys.ts`: no empty, `.` or `..` segments, no leading `/`, backslash
 * or control character, at most 1024 UTF-8 bytes) and refuses others with
 * `InvalidStoreArgumentError`.
 */
import type { PagecastError } from "../errors.js";

/** Which part of an object to read. */
export type ByteRange =
  /**
   * `length` bytes starting at `offset` (clamped to the object's end). A range
   * starting at or past the end yields an empty body at `offset: size`.
   */
  | { offset: number; length: number }
  /** The last `suffix` bytes (the whole object when it is shorter). */
  | { suffix: number };

export interface GetOptions {
  range?: ByteRange;
  /**
   * ETag from an earlier read (quoted or not); when it still matches, the
   * result is `{ notModified: true }`.
   */
  ifNoneMatch?: string;
  /**
   * Most bytes the result's body may hold. A body that would be longer (the
   * object's size, for a whole-object read) fails with `ObjectTooLargeError`
   * before it is downloaded, so reading an untrusted object never buffers
   * more than this. Non-negative integer; default: no limit.
   */
  maxBytes?: number;
  /**
   * Also give the body as the pieces it arrived in (`GetResult.pieces`):
   * consumers that stream the bytes on (restore) skip joining them, a copy
   * and a large allocation per request. `body` still works (joined on first
   * use). Stores that cannot do better ignore it.
   */
  pieces?: boolean;
  signal?: AbortSignal;
}

export interface ObjectMeta {
  key: string;
  /** Total size of the object in bytes (not of the returned range). */
  size: number;
  /** Opaque version tag, unquoted. Usable with `ifMatch` / `ifNoneMatch`. */
  etag: string;
  lastModified: Date;
}

export type GetResult =
  | {
      notModified: false;
      /** The requested bytes (the range only, when a range was asked for). */
      body: Uint8Array;
      meta: ObjectMeta;
      /** Offset of `body[0]` within the object. */
      offset: number;
      /** With `pieces: true`, where the store supports it: `body` in the pieces it arrived in. */
      pieces?: Uint8Array[];
    }
  | {
      notModified: true;
      meta?: undefined;
      body?: undefined;
      offset?: undefined;
      pieces?: undefined;
    };

export interface PutOptions {
  /** `"*"`: create only; fails with `PreconditionFailedError` if the key exists. */
  ifNoneMatch?: "*";
  /**
   * Compare-and-swap: the put succeeds only if the current ETag equals this
   * (quoted or not); a missing key fails too.
   */
  ifMatch?: string;
  contentType?: string;
  signal?: AbortSignal;
}

export interface PutResult {
  etag: string;
}

export interface ListOptions {
  prefix?: string;
  /** Return only keys lexicographically after this key. */
  startAfter?: string;
  /** Page size hint; backends may return fewer. */
  maxKeys?: number;
  /** Continuation token from a previous page (opaque; combine with the same prefix). */
  continuationToken?: string;
  signal?: AbortSignal;
}

export interface ListPage {
  objects: ObjectMeta[];
  /** Present when more keys remain. */
  continuationToken?: string;
}

/** Request kinds counted by every store (the reader's and writer's cost figures come from these). */
export type RequestKind = "get" | "head" | "put" | "list" | "delete";

export interface StoreCounters {
  /**
   * Requests sent, one per attempt (a retried request counts each time; a
   * multipart upload counts create, each part and complete as puts; a
   * `deleteMany` counts one per batch of up to 1000 keys).
   */
  requests: Record<RequestKind, number>;
  /** Bytes received (GET bodies) and sent (PUT bodies). */
  bytesIn: number;
  bytesOut: number;
  /**
   * Attempts that failed (network, timeout, server or access errors), once per
   * failed attempt. Definite answers (not found, precondition failed,
   * not modified) are not errors.
   */
  errors: number;
  /** Attempts repeated after a retryable failure. */
  retries: number;
}

/** One failed attempt of a request, reported as it happens (see `ObjectStore.onAttemptFailure`). */
export interface AttemptFailure {
  /** The store's location (credential-free). */
  url: string;
  kind: RequestKind;
  /** What was asked, for messages, e.g. `S3 get pagecast-head.json`. */
  operation: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Attempts the store allows this request (retries after clock-skew corrections come on top). */
  maxAttempts: number;
  /** What the attempt failed with (typed). */
  error: PagecastError;
  /** Short cause: `timeout: no data for 10 s`, `HTTP 503 SlowDown`, `network error ECONNREFUSED`. */
  reason: string;
  /** Whether another attempt follows, after `delayMs`. */
  willRetry: boolean;
  delayMs: number;
  /** Milliseconds since the request's first attempt started. */
  elapsedMs: number;
}

/**
 * Live health of a store's requests: a failure shows from its first failed
 * attempt, long before the request's retries are used up.
 */
export interface StoreHealth {
  /**
   * When the current run of failed attempts began (the first failure after
   * the last success); `null` while the last finished attempt succeeded.
   * Definite answers (not found, precondition failed, too large) and
   * attempts abandoned by the caller are neither failures nor successes.
   */
  failingSince: Date | null;
  /** Failed attempts since the last success. */
  consecutiveFailures: number;
  /** The most recent failed attempt (kept after a recovery). */
  lastError: { message: string; code: string; reason: string; at: Date } | null;
  /** When an attempt last succeeded. */
  lastSuccessAt: Date | null;
  /** Attempts in flight now. */
  inFlight: number;
  /** Start of the oldest attempt in flight (a hang shows here before any timeout). */
  oldestInFlightSince: Date | null;
}

export interface ObjectStore {
  /** Human-readable location without credentials, e.g. `s3://bucket/prefix`. */
  readonly url: string;
  /**
   * Reads an object or a range of it. Throws `NotFoundError` when absent.
   * Failures are typed (`store-errors.ts`): `StoreRequestError` (with
   * `retryable`) after retries are used up, `StoreAbortedError` when
   * `signal` fires, `InvalidStoreArgumentError` for a malformed key or range,
   * `ObjectTooLargeError` when the body would exceed `maxBytes`.
   */
  get(key: string, options?: GetOptions): Promise<GetResult>;
  /** Metadata only; `undefined` when absent. */
  head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectMeta | undefined>;
  /**
   * Writes an object atomically (readers see the old or the new body). Throws
   * `PreconditionFailedError` when a condition fails (its `ambiguous` flag says
   * an earlier, retried attempt may have written this very body).
   */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<PutResult>;
  /**
   * Optional: writes an object whose body arrives as chunks, without holding
   * it all in memory (S3: a multipart upload; files: a temp file). Same
   * atomicity, conditions and errors as `put`; an error thrown by `source`
   * propagates unchanged and writes nothing. The source is iterated once; it
   * may reuse a chunk's memory once the next chunk is asked for. Callers go
   * through `putStream()` (`put-stream.ts`), which buffers and calls `put`
   * for stores without this method.
   */
  putStream?(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options?: PutOptions,
  ): Promise<PutResult>;
  /** One page of keys in lexicographic order of their UTF-8 bytes (S3's order). */
  list(options?: ListOptions): Promise<ListPage>;
  /** Deletes keys; absent keys are not an error. */
  deleteMany(keys: string[], options?: { signal?: AbortSignal }): Promise<void>;
  /** Request/byte counters since creation. */
  counters(): StoreCounters;
  /**
   * Optional: live health of this store's requests (every built-in backend
   * and `prefixedStore` have it).
   */
  health?(): StoreHealth;
  /**
   * Optional: calls `listener` synchronously after every failed attempt, as it
   * happens (before the backoff of the retry, if any); returns a function
   * that removes the listener. A listener that throws is ignored.
   */
  onAttemptFailure?(listener: (failure: AttemptFailure) => void): () => void;
  /**
   * Optional: the storage server's current time (ms since epoch) as this store
   * estimates it from the server's answers, or `undefined` before it has
   * seen one. With it, `lastModified` ages are judged on one clock (the
   * server's) rather than by comparing two hosts' clocks. S3 and memory
   * stores have it; file stores do not (file times come from the writing host).
   */
  serverTime?(): number | undefined;
  /**
   * Releases sockets/handles; requests in flight fail with `StoreClosedError`
   * and later calls fail with it too.
   */
  close(): Promise<void>;
}
