/** Node-only router pieces: AsyncLocalStorage sessions, the better-sqlite3 primary, migrations. */

export {
  asyncSessionContext,
  registerNodeSessionContext,
} from "./async-session-context.js";
export {
  type BetterSqlitePrimaryOptions,
  betterSqlitePrimary,
} from "./better-sqlite-primary.js";
export { migrate } from "./migrate.js";
export {
  ReplicatorPositions,
  type ReplicatorPositionsOptions,
} from "./replicator-positions.js";
