/**
 * `pagecast/reader`: the replica reader alone, for Cloudflare Workers and
 * other runtimes where bundle size counts. It opens replicas over a store
 * you give (`r2Store(env.BUCKET, prefix)` or any `ObjectStore`) and runs
 * every statement on wa-sqlite's async build. Left out, against `pagecast`:
 * opening by URL (the URL parser, `FetchS3Store` and its SigV4 signer), the
 * plain build's glue (the hybrid connection's fast path for warm
 * statements), the router, time travel, Drizzle and the LTX tools.
 * Imports nothing from `node:`.
 */
import type { Replica, ReplicaOpeners, ReplicaStoreOptions } from "./vfs/replica.js";
import { openReplicaWith } from "./vfs/replica.js";

/** Nothing beyond the store and the async build: see {@link openReplica}. */
const READER: ReplicaOpeners = {};

/**
 * Opens a replica over `target.store` (e.g. `r2Store(env.BUCKET, "app")`),
 * with `target`'s other fields as its options ({@link ReplicaOptions}).
 * Reads the head object (or lists, for a Litestream layout) and every
 * planned file's page index; pages are fetched on demand.
 *
 * Unlike `openReplica` from `pagecast`:
 * - a URL is refused with a `ReplicaError` (`REPLICA_INVALID_ARGUMENT`): pass
 *   `store`, or import from `pagecast` to open URLs (`storeOptions` is unused);
 * - every statement runs on the async build (`wasm`); `syncWasm` is unused,
 *   so a Worker should not import `wa-sqlite.wasm`. Warm statements lose
 *   the plain build's speed (about half again as fast over cached pages);
 *   each connection is one wasm instance instead of up to two, with the
 *   whole `sqliteCacheBytes`. Every other option behaves as with `pagecast`.
 */
export function openReplica(target: ReplicaStoreOptions): Promise<Replica> {
  return openReplicaWith(READER, target);
}

export { PagecastError } from "./errors.js";
export {
  METRICS_CONTENT_TYPE,
  type MetricsOptions,
  type MetricsSource,
  metricsText,
} from "./metrics/prometheus-text.js";
export { MemoryStore, type MemoryStoreOptions } from "./storage/memory-store.js";
export type {
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  RequestKind,
  StoreCounters,
  StoreHealth,
} from "./storage/object-store.js";
export { type PrefixedStoreOptions, prefixedStore } from "./storage/prefixed-store.js";
export {
  type R2BucketLike,
  type R2ObjectBodyLike,
  type R2ObjectLike,
  R2Store,
  type R2StoreOptions,
  r2Store,
} from "./storage/r2-store.js";
export type { RetryOptions } from "./storage/request-runner.js";
export {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
  StoreRequestError,
  StoreTimeoutError,
} from "./storage/store-errors.js";
export type { BulkFetchStats } from "./vfs/bulk-fetch.js";
export {
  type CacheApiBackendOptions,
  type CacheApiLike,
  cacheApiBackend,
} from "./vfs/cache-api-backend.js";
export type { HydrationState, HydrationStatus } from "./vfs/hydrator.js";
export {
  type CachedPiece,
  PersistentCache,
  type PersistentCacheBackend,
  type PersistentCacheStats,
} from "./vfs/persistent-cache.js";
export {
  Replica,
  type ReplicaOptions,
  type ReplicaReadOptions,
  type ReplicaStoreOptions,
  type ReplicaTransaction,
  type Row,
  vfsStatus,
} from "./vfs/replica.js";
export type { BindValue, ExecuteResult, SqlParams, SqlValue } from "./vfs/replica-connection.js";
export type { HydrateMode, ReplicaHealth, ReplicaStatus } from "./vfs/replica-core.js";
export { ReplicaError, ReplicaQueryError } from "./vfs/replica-error.js";
export { DEFAULT_MAX_REQUESTS_PER_QUERY, RequestBudgetError } from "./vfs/request-budget.js";
export type { ReplicaRequestKind, RequestTally } from "./vfs/request-stats.js";
export {
  type SqliteWasm,
  type SqliteWasmSource,
  setDefaultSqliteWasm,
} from "./vfs/sqlite-runtime.js";
