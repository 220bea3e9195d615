/** Litestream-compatible configuration files (Node only). */

export { ConfigError } from "./config-error.js";
export {
  type ConfigFile,
  type ConfigReadOptions,
  type DatabaseEntry,
  type DatabaseSettings,
  parseConfig,
  readConfigFile,
} from "./config-file.js";
export {
  type ConfiguredDatabase,
  configuredDatabase,
  configuredDatabases,
  dirDatabase,
} from "./configured-databases.js";
export { findDatabases, isSqliteDatabase } from "./database-discovery.js";
export { DURATION_EXAMPLES, formatGoDuration, parseGoDuration } from "./duration.js";
export { formatLocation, type ReplicaTarget } from "./replica-target.js";
