/** The replica reader: a read-only SQLite database fetched page by page from object storage. */

export type { BulkFetchStats } from "./bulk-fetch.js";
export {
  type CacheApiBackendOptions,
  type CacheApiLike,
  cacheApiBackend,
} from "./cache-api-backend.js";
export type { HydrationState, HydrationStatus } from "./hydrator.js";
export { openReplica } from "./open-replica.js";
export {
  type CachedPiece,
  PersistentCache,
  type PersistentCacheBackend,
  type PersistentCacheStats,
} from "./persistent-cache.js";
export {
  Replica,
  type ReplicaOptions,
  type ReplicaReadOptions,
  type ReplicaStoreOptions,
  type ReplicaTransaction,
  type Row,
  vfsStatus,
} from "./replica.js";
export type { BindValue, ExecuteResult, SqlParams, SqlValue } from "./replica-connection.js";
export type { HydrateMode, ReplicaHealth, ReplicaStatus } from "./replica-core.js";
export { ReplicaError, ReplicaQueryError } from "./replica-error.js";
export { DEFAULT_MAX_REQUESTS_PER_QUERY, RequestBudgetError } from "./request-budget.js";
export type { ReplicaRequestKind, RequestTally } from "./request-stats.js";
export {
  type SqliteWasm,
  type SqliteWasmSource,
  setDefaultSqliteWasm,
  setDefaultSyncSqliteWasm,
} from "./sqlite-runtime.js";
