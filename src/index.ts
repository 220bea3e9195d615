/**
 * `pagecast`: the runtime-agnostic entry point (Node, Workers, browsers).
 * Reader, storage factories, LTX format. Node-only pieces (replicator,
 * restore, file storage) live in `pagecast/node`.
 */
export { PagecastError } from "./errors.js";
export * from "./format/index.js";
export { MemoryStore, type MemoryStoreOptions } from "./storage/memory-store.js";
export type {
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
} from "./storage/object-store.js";
export { type OpenStoreOptions, openStore } from "./storage/open-store.js";
export { type PrefixedStoreOptions, prefixedStore } from "./storage/prefixed-store.js";
export type { RetryOptions } from "./storage/request-runner.js";
export { S3Store, type S3StoreOptions } from "./storage/s3-store.js";
export {
  InvalidStoreArgumentError,
  InvalidStoreUrlError,
  NotFoundError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
  StoreRequestError,
} from "./storage/store-errors.js";
export { parseStoreUrl, type StoreLocation } from "./storage/store-url.js";
