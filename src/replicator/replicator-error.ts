import { PagecastError } from "../errors.js";

/**
 * Errors of the replicator and restore. Codes:
 * - `WAL_INVALID`: the WAL file is not a usable SQLite WAL (bad magic, version, page size).
 * - `WAL_CHANGED`: a WAL frame changed between scanning and reading it (retried as a continuity break).
 * - `DB_NOT_WAL`: the database could not be put into WAL mode.
 * - `DB_MISSING`: the database file does not exist (and `autoRestore` was not asked for).
 * - `DB_INVALID`: the file is not a SQLite database.
 * - `DB_BUSY`: the database could not be opened in WAL mode because another connection held it (retried).
 * - `DB_UNAVAILABLE`: `sync()` while the database cannot be reopened after it was swapped or removed (retried at every sync).
 * - `REPLICATOR_CLOSED`: the replicator was closed or has stopped after a fatal error.
 * - `REPLICA_CONFLICT`: another writer published to the same path (create-only put or head CAS failed).
 * - `STORAGE_UNAVAILABLE`: `sync()` could not make its transactions durable because storage keeps failing (cause: the store's error); they stay captured and a later sync publishes them.
 * - `RESTORE_FAILED`: a restored database failed verification.
 * - `RESTORE_OUTPUT_EXISTS`: the restore target path already exists.
 */
export class ReplicatorError extends PagecastError {}

/** Another live writer holds the lease on the replica path. */
export class LeaseHeldError extends PagecastError {
  /**
   * The holder's writer id, host and pid, as recorded in the lease, and its
   * `expiresAt` on the holder's own clock.
   */
  readonly holder: { writerId: string; hostname: string; pid: number; expiresAt: number };
  /**
   * How long until the lease lapses unless renewed, as judged on a clock shared
   * with the holder (same host, or the storage server's); undefined when unknown.
   */
  readonly expiresInMs: number | undefined;

  constructor(holder: LeaseHeldError["holder"], options: { expiresInMs?: number } = {}) {
    const left = options.expiresInMs;
    super(
      "LEASE_HELD",
      `replica is being written by another replicator (writer ${holder.writerId} on host ` +
        `${holder.hostname}, pid ${holder.pid}); ` +
        (left === undefined
          ? "it renewed its lease while this one waited"
          : `its lease lapses in ${Math.ceil(left / 1000)} s unless renewed`),
    );
    this.holder = holder;
    this.expiresInMs = left;
  }
}

/** This writer lost the lease (another writer took over); it has stopped publishing. */
export class LeaseLostError extends PagecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LEASE_LOST", message, options);
  }
}
