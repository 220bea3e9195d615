/** The read/write router: a Drizzle database routing each statement to a replica or the primary. */

export type {
  PrimaryConnection,
  ReadConnection,
  ReplicaHealthStatus,
  RouterReplica,
  RunResult,
  SqlConnection,
  Statement,
  StatementMethod,
  StatementResult,
  ValueTypes,
} from "./connection.js";
export {
  type DrizzleOptions,
  drizzleReplica,
  type ReadonlyDatabase,
} from "./read-only-database.js";
export {
  classifyReplicaFailure,
  type ReplicaFailure,
  type ReplicaLike,
} from "./replica-adapter.js";
export type { FallbackReason } from "./replica-selector.js";
export {
  createRouter,
  type RouterDatabase,
  type RouterOptions,
  type RouterReplicaStatus,
  type RouterStatus,
  type SessionDatabase,
  type WithSessionResult,
} from "./router.js";
export { RouterError } from "./router-error.js";
export {
  RouterSession,
  type SessionContext,
  setDefaultSessionContext,
} from "./router-session.js";
export {
  classifyStatement,
  type StatementClass,
  type StatementKind,
  type StatementReferences,
  type TransactionEffect,
} from "./statement-classifier.js";
export { vfsStatus } from "./vfs-status.js";
export type { WritePosition } from "./write-position.js";
