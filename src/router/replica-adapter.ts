/**
 * Adapts `Replica` objects (from `openReplica`) to the router's small
 * {@link RouterReplica} interface, and tells connection failures (worth
 * retrying on the primary) from SQL errors (not retried anywhere).
 */
import { PagecastError } from "../errors.js";
import type { Replica } from "../vfs/replica.js";
import type { SqlParams } from "../vfs/replica-connection.js";
import { ReplicaQueryError } from "../vfs/replica-error.js";
import type { ReadConnection, RouterReplica } from "./connection.js";
import { RouterError } from "./router-error.js";

function params(values: readonly unknown[]): SqlParams {
  // Drizzle hands over driver values (numbers, strings, bigints, bytes, null).
  return values as SqlParams;
}

/** What the router uses of a `Replica` (structural, so another copy of the package works too). */
export type ReplicaLike = Pick<Replica, "url" | "status" | "values" | "poll" | "transaction">;

function isReplicaLike(v: unknown): v is ReplicaLike {
  const r = v as Partial<Record<keyof ReplicaLike, unknown>> | null;
  return (
    !!r &&
    typeof r === "object" &&
    typeof r.url === "string" &&
    typeof r.status === "function" &&
    typeof r.values === "function" &&
    typeof r.poll === "function" &&
    typeof r.transaction === "function"
  );
}

/** A `Replica` as a {@link RouterReplica}. */
export function replicaAdapter(replica: ReplicaLike): RouterReplica {
  return {
    name: replica.url,
    status: () => replica.status(),
    all: (sql, values, options) => replica.values(sql, params(values), options),
    // One row, as better-sqlite3's get(): the replica stops there, fetching nothing more.
    get: async (sql, values, options) =>
      (await replica.values(sql, params(values), { ...options, maxRows: 1 }))[0],
    poll: () => replica.poll(),
    snapshot: <T>(fn: (conn: ReadConnection) => Promise<T>) =>
      replica.transaction((tx) =>
        fn({
          all: (sql, values, options) => tx.values(sql, params(values), options),
          get: async (sql, values, options) =>
            (await tx.values(sql, params(values), { ...options, maxRows: 1 }))[0],
        }),
      ),
  };
}

/** `Replica` objects are adapted; other values must implement {@link RouterReplica}. */
export function toRouterReplica(value: ReplicaLike | RouterReplica, what: string): RouterReplica {
  if (isReplicaLike(value)) return replicaAdapter(value);
  const v = value as Partial<RouterReplica> | null;
  if (
    v &&
    typeof v === "object" &&
    typeof v.name === "string" &&
    typeof v.status === "function" &&
    typeof v.all === "function" &&
    typeof v.get === "function"
  ) {
    return value as RouterReplica;
  }
  throw new RouterError(
    "ROUTER_INVALID_ARGUMENT",
    `${what} must be a Replica (openReplica) or implement { name, status, all, get }`,
  );
}

/** SQLite result codes that mean the replica could not read, not that the SQL was wrong. */
const CONNECTION_CODES = new Set([
  "SQLITE_IOERR",
  "SQLITE_CORRUPT",
  "SQLITE_NOTADB",
  "SQLITE_CANTOPEN",
  "SQLITE_NOMEM",
  "SQLITE_BUSY",
  "SQLITE_PROTOCOL",
]);

/** SQLite's messages for a name it cannot resolve. */
const MISSING = /^(no such (table|view|column|function|collation|module)|unknown database)\b/;

/** How a failed replica read is handled. */
export type ReplicaFailure =
  /** The replica could not read (storage, closed, corrupt page): try the primary. */
  | "connection"
  /** The replica refused a write: the statement belongs on the primary. */
  | "read-only"
  /**
   * The replica lacks a table, column, function or database the statement
   * names: it may exist only on the primary connection (a temp table, an
   * attached database, a function registered there) or not be replicated
   * yet. The primary answers (with its own error if it lacks it too).
   */
  | "missing"
  /** The SQL itself failed: report it, do not retry elsewhere. */
  | "sql";

/**
 * Classifies an error thrown by a replica read. Pagecast's own reader and
 * storage errors are connection failures, except SQL errors reported by the
 * replica's SQLite and bad arguments; errors of foreign replica
 * implementations count as SQL errors unless they carry
 * `connectionError: true`. A name the replica cannot resolve ("no such
 * table: x") is `missing`, whoever reports it.
 */
export function classifyReplicaFailure(err: unknown): ReplicaFailure {
  if (err instanceof ReplicaQueryError) {
    if (err.code === "SQLITE_READONLY") return "read-only";
    if (err.code === "SQLITE_ERROR" && MISSING.test(err.message)) return "missing";
    return CONNECTION_CODES.has(err.code) ? "connection" : "sql";
  }
  if (err instanceof PagecastError) {
    return err.code.endsWith("_INVALID_ARGUMENT") ? "sql" : "connection";
  }
  if ((err as { connectionError?: unknown } | null)?.connectionError === true) return "connection";
  // Other SQLite bindings (e.g. better-sqlite3) report the same messages.
  if (err instanceof Error && MISSING.test(err.message)) return "missing";
  return "sql";
}
