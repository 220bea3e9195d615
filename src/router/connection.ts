/**
 * The router's own small connection interfaces. Drizzle's sqlite-proxy
 * callback (and a Drizzle 1.0 adapter later) sits on top of these, so a
 * primary or replica never depends on an ORM version: rows are arrays, `get`
 * returns one row or `undefined`.
 */
import type { ReplicaReadOptions } from "../vfs/replica.js";
import type { WritePosition } from "./write-position.js";

/** How Drizzle wants a statement's result. `values` and `all` both return rows as arrays. */
export type StatementMethod = "run" | "all" | "values" | "get";

/** One statement of a batch. */
export interface Statement {
  sql: string;
  params: readonly unknown[];
  method: StatementMethod;
}

/**
 * What `run` reports: the driver's own result object, returned to Drizzle
 * as is (better-sqlite3: `{ changes, lastInsertRowid }`).
 */
export interface RunResult {
  changes?: number;
  lastInsertRowid?: number | bigint;
}

/**
 * The JS types a primary's driver gives SQLite values. The router converts
 * replica answers to them, so a result does not depend on which side
 * answered.
 */
export interface ValueTypes {
  /**
   * INTEGER values: `"number"` (precision lost past 2^53, better-sqlite3's
   * default) or `"bigint"` (every one, better-sqlite3's `safeIntegers`).
   */
  integers: "number" | "bigint";
  /** Wraps a BLOB's bytes in the driver's type (e.g. a Node Buffer); default: the Uint8Array. */
  blob?: (bytes: Uint8Array) => unknown;
}

/** How a replica should return values (see {@link ValueTypes}); `Replica` methods take the same. */
export type ReadOptions = ReplicaReadOptions;

/** The result of one batch statement: rows for `all`/`values`, a row for `get`, a RunResult for `run`. */
export type StatementResult = unknown[][] | unknown[] | undefined | RunResult;

/**
 * A connection that can read: rows as arrays. `options` matter for replicas
 * (primaries answer with their driver's types).
 */
export interface ReadConnection {
  /** Every row of the statement, each as an array of column values. */
  all(sql: string, params: readonly unknown[], options?: ReadOptions): Promise<unknown[][]>;
  /** The first row, or `undefined`. */
  get(
    sql: string,
    params: readonly unknown[],
    options?: ReadOptions,
  ): Promise<unknown[] | undefined>;
}

/** A connection that can also write. */
export interface SqlConnection extends ReadConnection {
  /** Executes a statement for its effect. */
  run(sql: string, params: readonly unknown[]): Promise<RunResult>;
}

/**
 * The primary: any async connection to the writable database. `batch` must be
 * atomic (all statements or none). The optional members make the router
 * sharper: `inTransaction` tells when an explicit transaction ends (otherwise
 * tracked from the statements), `position` and `resolvePosition` give
 * read-your-writes exact replica positions (otherwise time-based).
 */
export interface PrimaryConnection extends SqlConnection {
  /** Runs every statement atomically; one result per statement, in order. */
  batch(statements: readonly Statement[]): Promise<StatementResult[]>;
  /** Whether an explicit transaction is open on the connection. */
  inTransaction?(): boolean;
  /**
   * Called right after a write committed: where that write will appear in the
   * replicas. See {@link WritePosition}.
   */
  position?(): WritePosition;
  /**
   * The exact TXID containing every write committed up to `position` (which
   * `position()` returned or a bookmark carried), once known; `undefined` when
   * it cannot be determined. May wait for the writer to publish.
   */
  resolvePosition?(position: WritePosition): Promise<number | undefined>;
  /**
   * The JS types the driver returns (asked at each replica read, so it may
   * change). Without it, replica values are returned as the replica gives
   * them (numbers, bigint past 2^53, Uint8Array).
   */
  valueTypes?(): ValueTypes;
}

/** The parts of a replica's status the router uses (a `Replica`'s `status()` has them all). */
export interface ReplicaHealthStatus {
  /** Newest applied TXID, `null` before the first. */
  txid: number | null;
  /** Upper bound on staleness in seconds, `null` when unknown. */
  lagSeconds: number | null;
  /** True for pinned (time-travel) replicas, which never advance. */
  pinned?: boolean;
}

/**
 * A replica as the router sees it. `Replica` objects from `openReplica` are
 * adapted automatically; anything else implementing this interface works too
 * (honouring `ReadOptions.safeIntegers` when the primary returns bigints).
 */
export interface RouterReplica extends ReadConnection {
  /** Name for status and counters (a `Replica`'s URL). */
  readonly name: string;
  /** Cached status: must be cheap (never a query or a request). */
  status(): ReplicaHealthStatus;
  /** Asks the replica to look for news now (used to wake a replica that lags). */
  poll?(): Promise<void>;
  /** Runs reads on one consistent version (used for read-only batches). */
  snapshot?<T>(fn: (conn: ReadConnection) => Promise<T>): Promise<T>;
}
