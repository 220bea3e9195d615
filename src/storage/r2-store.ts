/**
 * `ObjectStore` over a Cloudflare Workers R2 binding (`env.BUCKET`): no
 * signing, no credentials, no egress, and no AWS SDK in the bundle. Ranged
 * and conditional gets, listing, create-only and compare-and-swap puts
 * (R2's `onlyIf`), batched deletes. Runtime-agnostic: the binding is the
 * only thing it talks to (in Node, miniflare's `getR2Bucket()` gives one).
 */
import { PagecastError } from "../errors.js";
import { isEmptyRange, resolveRange, validateRange } from "./byte-range.js";
import { unquoteEtag } from "./etag.js";
import type {
  AttemptFailure,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  StoreCounters,
  StoreHealth,
} from "./object-store.js";
import { checkSource, collectChunks } from "./put-stream.js";
import { RequestRunner, type RetryOptions } from "./request-runner.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreRequestError,
} from "./store-errors.js";
import { directoryPrefix, validateKey, validatePrefix } from "./store-keys.js";
import {
  checkBody,
  checkListOptions,
  checkMaxBytes,
  checkPutOptions,
  DELETE_BATCH_SIZE,
  listStartAfter,
} from "./store-options.js";

/** The fields of an R2 object the store reads (structural: no workers-types needed). */
export interface R2ObjectLike {
  key: string;
  size: number;
  etag: string;
  uploaded: Date;
}

/** An R2 object with its body (`get`). */
export interface R2ObjectBodyLike extends R2ObjectLike {
  arrayBuffer(): Promise<ArrayBuffer>;
  body?: { cancel?(): Promise<void> } | null;
}

type R2Range = { offset: number; length?: number } | { suffix: number };
type R2Conditional = { etagMatches?: string; etagDoesNotMatch?: string };

/** The parts of Workers' `R2Bucket` binding the store uses. */
export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(
    key: string,
    options?: { range?: R2Range; onlyIf?: R2Conditional },
  ): Promise<R2ObjectBodyLike | R2ObjectLike | null>;
  put(
    key: string,
    value: ArrayBuffer | ArrayBufferView,
    options?: { onlyIf?: R2Conditional; httpMetadata?: { contentType?: string } },
  ): Promise<R2ObjectLike | null>;
  list(options?: {
    prefix?: string;
    cursor?: string;
    limit?: number;
    startAfter?: string;
  }): Promise<{ objects: R2ObjectLike[]; truncated: boolean; cursor?: string }>;
  delete(keys: string | string[]): Promise<void>;
}

/** Options of {@link r2Store}. */
export interface R2StoreOptions {
  /** Retry settings (a binding's failures are transient more often than not). */
  retry?: RetryOptions;
  /** Name used in `url` and errors (default `bucket`): `r2://<name>/<prefix>`. */
  name?: string;
}

/**
 * An `ObjectStore` on a Workers R2 binding, under `prefix` (a directory; a
 * `/` is appended):
 *
 * ```ts
 * const replica = await openReplica({ store: r2Store(env.BUCKET, "app"), wasm });
 * ```
 */
export function r2Store(bucket: R2BucketLike, prefix = "", options: R2StoreOptions = {}): R2Store {
  return new R2Store(bucket, prefix, options);
}

function meta(object: R2ObjectLike, key: string): ObjectMeta {
  return {
    key,
    size: object.size,
    etag: unquoteEtag(object.etag),
    lastModified: new Date(object.uploaded.getTime()),
  };
}

function hasBody(object: R2ObjectLike | R2ObjectBodyLike): object is R2ObjectBodyLike {
  return typeof (object as R2ObjectBodyLike).arrayBuffer === "function";
}

/** See {@link r2Store}. */
export class R2Store implements ObjectStore {
  readonly url: string;
  readonly prefix: string;
  private readonly runner: RequestRunner;

  constructor(
    private readonly bucket: R2BucketLike,
    prefix = "",
    options: R2StoreOptions = {},
  ) {
    if (!bucket || typeof bucket.get !== "function" || typeof bucket.put !== "function") {
      throw new InvalidStoreArgumentError("r2Store needs an R2 bucket binding (env.BUCKET)");
    }
    validatePrefix(prefix);
    this.prefix = directoryPrefix(prefix);
    this.url = `r2://${options.name ?? "bucket"}/${this.prefix}`;
    this.runner = new RequestRunner(() => this.url, options.retry);
  }

  private objectKey(key: string): string {
    validateKey(key);
    return this.prefix + key;
  }

  /** A binding's failure: R2 errors carry no status, so any failure may be retried. */
  private mapError = (operation: string, key: string) => (error: unknown) => {
    if (error instanceof PagecastError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new StoreRequestError(`R2 ${operation} ${key} in ${this.url} failed: ${message}`, {
      retryable: true,
      reason: message.slice(0, 200),
      cause: error,
    });
  };

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    const objectKey = this.objectKey(key);
    if (options.range) validateRange(options.range);
    checkMaxBytes(options);
    return this.runner.run(
      "get",
      options.signal,
      async () => {
        const empty = isEmptyRange(options.range);
        const range = empty ? undefined : options.range;
        const onlyIf =
          options.ifNoneMatch !== undefined
            ? { etagDoesNotMatch: unquoteEtag(options.ifNoneMatch) }
            : undefined;
        let object: R2ObjectBodyLike | R2ObjectLike | null;
        try {
          object = await this.bucket.get(objectKey, {
            ...(range ? { range } : {}),
            ...(onlyIf ? { onlyIf } : {}),
          });
        } catch (error) {
          // A range starting past the end: answer as the other stores do (an empty body).
          if (!range || !/range/i.test(String((error as Error)?.message))) throw error;
          const head = await this.bucket.head(objectKey);
          if (!head) throw new NotFoundError(key);
          const { start } = resolveRange(range, head.size);
          return {
            notModified: false,
            body: new Uint8Array(0),
            meta: meta(head, key),
            offset: start,
          };
        }
        if (!object) throw new NotFoundError(key);
        if (!hasBody(object)) return { notModified: true };
        const { start, end } = resolveRange(options.range, object.size);
        if (options.maxBytes !== undefined && end - start > options.maxBytes) {
          await object.body?.cancel?.().catch(() => {});
          throw new ObjectTooLargeError(key, {
            size: end - start,
            maxBytes: options.maxBytes,
            meta: meta(object, key),
          });
        }
        const body = empty ? new Uint8Array(0) : new Uint8Array(await object.arrayBuffer());
        if (empty) await object.body?.cancel?.().catch(() => {});
        this.runner.counters.received(body.length);
        return { notModified: false, body, meta: meta(object, key), offset: start };
      },
      this.mapError("get", key),
    );
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectMeta | undefined> {
    const objectKey = this.objectKey(key);
    return this.runner.run(
      "head",
      options.signal,
      async () => {
        const object = await this.bucket.head(objectKey);
        return object ? meta(object, key) : undefined;
      },
      this.mapError("head", key),
    );
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    this.objectKey(key);
    checkBody(body);
    checkPutOptions(options);
    return this.store(key, body, options);
  }

  async putStream(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options: PutOptions = {},
  ): Promise<PutResult> {
    this.objectKey(key);
    checkSource(source);
    checkPutOptions(options);
    this.runner.check(options.signal);
    // The binding needs a known length for a stream; replica-side objects are small.
    return this.store(key, await collectChunks(source, options.signal), options);
  }

  private store(key: string, body: Uint8Array, options: PutOptions): Promise<PutResult> {
    const objectKey = this.objectKey(key);
    const onlyIf: R2Conditional | undefined =
      options.ifNoneMatch === "*"
        ? { etagDoesNotMatch: "*" }
        : options.ifMatch !== undefined
          ? { etagMatches: unquoteEtag(options.ifMatch) }
          : undefined;
    return this.runner.run(
      "put",
      options.signal,
      async () => {
        this.runner.counters.sent(body.length);
        const written = await this.bucket.put(objectKey, body, {
          ...(onlyIf ? { onlyIf } : {}),
          ...(options.contentType ? { httpMetadata: { contentType: options.contentType } } : {}),
        });
        // R2 answers a failed condition with null.
        if (!written) throw new PreconditionFailedError(key);
        return { etag: unquoteEtag(written.etag) };
      },
      this.mapError("put", key),
      { operation: `put ${key}`, bytes: body.length },
    );
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    const { prefix, maxKeys } = checkListOptions(options);
    const after = listStartAfter(options);
    return this.runner.run(
      "list",
      options.signal,
      async () => {
        const page = await this.bucket.list({
          prefix: this.prefix + prefix,
          limit: maxKeys,
          ...(after !== undefined ? { startAfter: this.prefix + after } : {}),
        });
        const objects = page.objects.map((o) => meta(o, o.key.slice(this.prefix.length)));
        const last = objects[objects.length - 1];
        // The token is the last key listed (as memory and file stores do): stable, resumable.
        return page.truncated && last ? { objects, continuationToken: last.key } : { objects };
      },
      this.mapError("list", prefix || "(all)"),
    );
  }

  async deleteMany(keys: string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const objectKeys = keys.map((k) => this.objectKey(k));
    for (let i = 0; i < objectKeys.length; i += DELETE_BATCH_SIZE) {
      const batch = objectKeys.slice(i, i + DELETE_BATCH_SIZE);
      await this.runner.run(
        "delete",
        options.signal,
        () => this.bucket.delete(batch),
        this.mapError("delete", keys[i] ?? ""),
      );
    }
  }

  counters(): StoreCounters {
    return this.runner.counters.snapshot();
  }

  health(): StoreHealth {
    return this.runner.health();
  }

  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    return this.runner.onAttemptFailure(listener);
  }

  async close(): Promise<void> {
    this.runner.close();
  }
}
