/** The writer half (Node only): continuous replication, restore, and their building blocks. */
export type { CheckpointPolicy } from "./checkpointer.js";
export { LEASE_KEY, Lease, type LeaseOptions, type LeaseRecord } from "./lease.js";
export { lineLogger, type ReplicatorLogger, silentLogger } from "./logger.js";
export { Replicator, type ReplicatorOptions } from "./replicator.js";
export { LeaseHeldError, LeaseLostError, ReplicatorError } from "./replicator-error.js";
export {
  type IntegrityCheckMode,
  type RestoreOptions,
  type RestoreProgress,
  type RestoreResult,
  restore,
} from "./restore.js";
export type { ReplicaPosition, ReplicatorStats } from "./stats.js";
export {
  ReplicatorSupervisor,
  type SupervisedDatabase,
  type SupervisedStatus,
  type SupervisorOptions,
} from "./supervisor.js";
export {
  parseWalHeader,
  readCommittedFrames,
  readWalHeader,
  type WalCursor,
  type WalHeader,
  type WalSegment,
  walChecksum,
} from "./wal-reader.js";
