/**
 * A view of an `ObjectStore` under a key prefix: several databases can share
 * one bucket or directory, each seeing only its own keys.
 */
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
} from "./object-store.js";
import { putStream as streamingPut } from "./put-stream.js";
import {
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreClosedError,
} from "./store-errors.js";
import { directoryPrefix, validateKey, validatePrefix } from "./store-keys.js";
import { checkListOptions } from "./store-options.js";

/** Options of `prefixedStore`. */
export interface PrefixedStoreOptions {
  /**
   * Whether closing the view closes the underlying store (default false: the
   * underlying store may serve other views; its owner closes it).
   */
  ownsStore?: boolean;
}

function joinUrl(base: string, prefix: string): string {
  const queryAt = base.indexOf("?");
  const path = queryAt < 0 ? base : base.slice(0, queryAt);
  const query = queryAt < 0 ? "" : base.slice(queryAt);
  const encoded = prefix
    .replace(/\/$/, "")
    .split("/")
    .map((segment) => encodeURIComponent(segment))
    .join("/");
  return `${path.replace(/\/+$/, "")}/${encoded}${query}`;
}

/**
 * `store` seen under `prefix` (a directory: `db1` means keys `db1/...`). Keys,
 * list results and metadata are relative to the prefix; counters are the
 * underlying store's.
 */
export function prefixedStore(
  store: ObjectStore,
  prefix: string,
  options: PrefixedStoreOptions = {},
): ObjectStore {
  validatePrefix(prefix);
  const base = directoryPrefix(prefix);
  if (base === "") return store;
  let closed = false;
  const inner = (key: string): string => {
    if (closed) throw new StoreClosedError(url);
    validateKey(key);
    return base + key;
  };
  const outer = (meta: ObjectMeta): ObjectMeta => ({ ...meta, key: meta.key.slice(base.length) });
  // Errors that name a key name it as the caller knows it.
  const relative = (error: unknown): never => {
    if (error instanceof NotFoundError && error.key.startsWith(base)) {
      throw new NotFoundError(error.key.slice(base.length), { cause: error.cause });
    }
    if (error instanceof ObjectTooLargeError && error.key.startsWith(base)) {
      throw new ObjectTooLargeError(error.key.slice(base.length), {
        maxBytes: error.maxBytes,
        ...(error.size !== undefined ? { size: error.size } : {}),
        ...(error.meta ? { meta: outer(error.meta) } : {}),
        cause: error.cause,
      });
    }
    if (error instanceof PreconditionFailedError && error.key.startsWith(base)) {
      throw new PreconditionFailedError(error.key.slice(base.length), {
        ambiguous: error.ambiguous,
        cause: error.cause,
      });
    }
    throw error;
  };
  const url = joinUrl(store.url, base);
  return {
    url,
    async get(key: string, getOptions?: GetOptions): Promise<GetResult> {
      const result = await store.get(inner(key), getOptions).catch(relative);
      return result.notModified ? result : { ...result, meta: outer(result.meta) };
    },
    async head(key: string, headOptions?: { signal?: AbortSignal }) {
      const meta = await store.head(inner(key), headOptions);
      return meta && outer(meta);
    },
    async put(key: string, body: Uint8Array, putOptions?: PutOptions): Promise<PutResult> {
      return store.put(inner(key), body, putOptions).catch(relative);
    },
    // Offered only when the underlying store streams (callers fall back to put otherwise).
    ...(typeof store.putStream === "function"
      ? {
          async putStream(
            key: string,
            source: AsyncIterable<Uint8Array>,
            putOptions?: PutOptions,
          ): Promise<PutResult> {
            return streamingPut(store, inner(key), source, putOptions).catch(relative);
          },
        }
      : {}),
    async list(listOptions: ListOptions = {}): Promise<ListPage> {
      if (closed) throw new StoreClosedError(url);
      const { prefix: sub } = checkListOptions(listOptions);
      const page = await store.list({
        ...listOptions,
        prefix: base + sub,
        ...(listOptions.startAfter ? { startAfter: base + listOptions.startAfter } : {}),
      });
      return { ...page, objects: page.objects.map(outer) };
    },
    async deleteMany(keys: string[], deleteOptions?: { signal?: AbortSignal }): Promise<void> {
      return store.deleteMany(keys.map(inner), deleteOptions);
    },
    counters(): StoreCounters {
      return store.counters();
    },
    // Health and clock are the underlying store's (offered when it has them).
    ...(typeof store.health === "function" ? { health: () => store.health!() } : {}),
    ...(typeof store.onAttemptFailure === "function"
      ? {
          onAttemptFailure: (listener: (failure: AttemptFailure) => void) =>
            store.onAttemptFailure!(listener),
        }
      : {}),
    ...(typeof store.serverTime === "function" ? { serverTime: () => store.serverTime!() } : {}),
    async close(): Promise<void> {
      closed = true;
      if (options.ownsStore) await store.close();
    },
  };
}
