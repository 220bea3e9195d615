/**
 * The one storage contract pagecast's writer and reader share. Every backend
 * (S3, file system, memory) implements exactly this; wrappers (retries,
 * counters, fault injection) compose over it.
 *
 * Keys are `/`-separated relative keys; a backend maps them under its own root
 * (bucket + prefix, directory, or map).
 */

/** Which part of an object to read. */
export type ByteRange =
  /** `length` bytes starting at `offset` (clamped to the object's end). */
  | { offset: number; length: number }
  /** The last `suffix` bytes (the whole object when it is shorter). */
  | { suffix: number };

export interface GetOptions {
  range?: ByteRange;
  /** ETag from an earlier read; when it still matches, the result is `{ notModified: true }`. */
  ifNoneMatch?: string;
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
    }
  | { notModified: true; meta?: undefined; body?: undefined; offset?: undefined };

export interface PutOptions {
  /** `"*"`: create only; fails with `PreconditionFailedError` if the key exists. */
  ifNoneMatch?: "*";
  /** Compare-and-swap: the put succeeds only if the current ETag equals this. */
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
  /** Continuation token from a previous page. */
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
  requests: Record<RequestKind, number>;
  /** Bytes received (GET bodies) and sent (PUT bodies). */
  bytesIn: number;
  bytesOut: number;
  /** Requests that failed (after retries, counted once per attempt that failed). */
  errors: number;
  retries: number;
}

export interface ObjectStore {
  /** Human-readable location without credentials, e.g. `s3://bucket/prefix`. */
  readonly url: string;
  /** Reads an object or a range of it. Throws `NotFoundError` when absent. */
  get(key: string, options?: GetOptions): Promise<GetResult>;
  /** Metadata only; `undefined` when absent. */
  head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectMeta | undefined>;
  /** Writes an object. Throws `PreconditionFailedError` when a condition fails. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<PutResult>;
  /** One page of keys in lexicographic order. */
  list(options?: ListOptions): Promise<ListPage>;
  /** Deletes keys; absent keys are not an error. */
  deleteMany(keys: string[], options?: { signal?: AbortSignal }): Promise<void>;
  /** Request/byte counters since creation. */
  counters(): StoreCounters;
  /** Releases sockets/handles. */
  close(): Promise<void>;
}
