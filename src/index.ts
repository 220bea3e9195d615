/**
 * `pagecast`: the runtime-agnostic entry point (Node, Workers, browsers).
 * Reader, storage factories, LTX format. Node-only pieces (replicator,
 * restore, file storage) live in `pagecast/node`.
 */
export { PagecastError } from "./errors.js";
export * from "./format/index.js";
export * from "./layout/index.js";
export {
  METRICS_CONTENT_TYPE,
  type MetricsOptions,
  type MetricsSource,
  metricsText,
} from "./metrics/prometheus-text.js";
export * from "./router/index.js";
export {
  FetchS3Store,
  type FetchS3StoreOptions,
  type S3Credentials,
} from "./storage/fetch-s3-store.js";
export {
  dropMemoryStore,
  isMemoryStoreName,
  MemoryStore,
  type MemoryStoreOptions,
} from "./storage/memory-store.js";
export type {
  AttemptFailure,
  ByteRange,
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
export { type OpenStoreOptions, openStore } from "./storage/open-store.js";
export { type PrefixedStoreOptions, prefixedStore } from "./storage/prefixed-store.js";
export { putStream } from "./storage/put-stream.js";
export {
  type R2BucketLike,
  type R2ObjectBodyLike,
  type R2ObjectLike,
  R2Store,
  type R2StoreOptions,
  r2Store,
} from "./storage/r2-store.js";
export {
  RangedDownloadError,
  type RangedDownloadErrorCode,
  RangedDownloader,
  type RangedDownloadOptions,
  type RangedObject,
  rangedDownload,
} from "./storage/ranged-download.js";
export { RETRY_DEFAULTS, type RetryOptions } from "./storage/request-runner.js";
export {
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  S3_TIMEOUT_DEFAULTS,
  S3Store,
  type S3StoreOptions,
  s3StoreUrl,
} from "./storage/s3-store.js";
export {
  InvalidStoreArgumentError,
  InvalidStoreUrlError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
  StoreRequestError,
  StoreTimeoutError,
} from "./storage/store-errors.js";
export { compareKeys, validateKey } from "./storage/store-keys.js";
export { parseStoreUrl, type StoreLocation } from "./storage/store-url.js";
export * from "./time-travel/index.js";
export {
  type BindValue,
  type BulkFetchStats,
  type CacheApiBackendOptions,
  type CacheApiLike,
  type CachedPiece,
  cacheApiBackend,
  type ExecuteResult,
  type HydrateMode,
  type HydrationState,
  type HydrationStatus,
  openReplica,
  PersistentCache,
  type PersistentCacheBackend,
  type PersistentCacheStats,
  Replica,
  ReplicaError,
  type ReplicaHealth,
  type ReplicaOptions,
  ReplicaQueryError,
  type ReplicaReadOptions,
  type ReplicaRequestKind,
  type ReplicaStatus,
  type ReplicaStoreOptions,
  type ReplicaTransaction,
  RequestBudgetError,
  type RequestTally,
  type Row,
  type SqliteWasm,
  type SqliteWasmSource,
  type SqlParams,
  type SqlValue,
  setDefaultSqliteWasm,
  setDefaultSyncSqliteWasm,
} from "./vfs/index.js";
