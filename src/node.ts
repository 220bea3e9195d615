/**
 * `pagecast/node`: Node-only pieces — the file-system store and the URL
 * factory that understands file:// (replicator and restore join as they land).
 */

export { type EncodeResult, encodeDatabaseFile } from "./cli/ltx-encode.js";
export {
  ConfigError,
  type ConfigFile,
  type ConfiguredDatabase,
  configuredDatabases,
  parseConfig,
  readConfigFile,
} from "./config/index.js";
export {
  type FileApplyTarget,
  type FileApplyTargetOptions,
  fileApplyTarget,
} from "./replicator/file-apply-target.js";
export * from "./replicator/index.js";
export * from "./router-node/index.js";
export { FILE_STORE_RESERVED, FileStore, type FileStoreOptions } from "./storage/file-store.js";
export { type OpenNodeStoreOptions, openNodeStore } from "./storage/open-node-store.js";
export {
  DEFAULT_CACHE_DIR_BYTES,
  type DirectoryCacheOptions,
  directoryCacheBackend,
  registerNodeCacheDir,
} from "./vfs-node/directory-cache.js";
