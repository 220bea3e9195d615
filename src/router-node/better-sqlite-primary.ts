/**
 * A better-sqlite3 database as the router's primary. better-sqlite3 is
 * synchronous: each call runs to completion, so a batch inside
 * `db.transaction()` is atomic. With a Replicator attached (same process),
 * writes get exact replica positions for read-your-writes. Results are
 * better-sqlite3's own (run results as it returns them; numbers or, with
 * `safeIntegers`, bigints; Buffers), and the router gives replica answers
 * the same types.
 */
import type Database from "better-sqlite3";
import type { Replicator } from "../replicator/replicator.js";
import type {
  PrimaryConnection,
  RunResult,
  Statement,
  StatementResult,
  ValueTypes,
} from "../router/connection.js";
import { RouterError } from "../router/router-error.js";
import type { WritePosition } from "../router/write-position.js";
import { ReplicatorPositions } from "./replicator-positions.js";

/** Options of {@link betterSqlitePrimary}. */
export interface BetterSqlitePrimaryOptions {
  /** The Replicator publishing this database: read-your-writes then waits for exact TXIDs. */
  replicator?: Replicator;
  /** How long to wait for the replicator's next publish before asking it to sync (ms, default 1500). */
  resolveWaitMs?: number;
  /** Prepared statements kept for reuse (default 128). */
  statementCacheSize?: number;
  /**
   * Every INTEGER as a bigint (better-sqlite3's `safeIntegers`), on the
   * primary and, through the router, on replicas. Default: the database's
   * `defaultSafeIntegers` setting when this primary is created.
   */
  safeIntegers?: boolean;
}

/** better-sqlite3 binds Buffers, not plain Uint8Arrays, and no booleans. */
function bindable(params: readonly unknown[]): unknown[] {
  return params.map((v) => {
    if (typeof v === "boolean") return v ? 1 : 0;
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) {
      return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
    return v;
  });
}

/** Whether statements of `db` return bigints (its `defaultSafeIntegers`, which it cannot report). */
function defaultSafeIntegers(db: Database.Database): boolean {
  try {
    return typeof db.prepare("SELECT 0").pluck().get() === "bigint";
  } catch {
    return false;
  }
}

/** A BLOB as better-sqlite3 returns it: a Buffer over the same bytes. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Creates the primary connection over an open better-sqlite3 database. */
export function betterSqlitePrimary(
  db: Database.Database,
  options: BetterSqlitePrimaryOptions = {},
): PrimaryConnection {
  if (!db || typeof (db as { prepare?: unknown }).prepare !== "function") {
    throw new RouterError(
      "ROUTER_INVALID_ARGUMENT",
      "betterSqlitePrimary needs a better-sqlite3 Database",
    );
  }
  const cacheSize = options.statementCacheSize ?? 128;
  // Fixed for every statement prepared here, so primary and replicas agree
  // even if the database's default changes later.
  const safeIntegers = options.safeIntegers ?? defaultSafeIntegers(db);
  const valueTypes: ValueTypes = Object.freeze({
    integers: safeIntegers ? "bigint" : "number",
    blob: toBuffer,
  });
  const cache = new Map<string, Database.Statement>();
  const positions = options.replicator
    ? new ReplicatorPositions(options.replicator, {
        ...(options.resolveWaitMs !== undefined ? { waitMs: options.resolveWaitMs } : {}),
      })
    : undefined;

  /** A prepared statement, or `undefined` for SQL holding several statements. */
  const prepare = (sql: string): Database.Statement | undefined => {
    const hit = cache.get(sql);
    if (hit) {
      // Most recently used last.
      cache.delete(sql);
      cache.set(sql, hit);
      return hit;
    }
    let stmt: Database.Statement;
    try {
      stmt = db.prepare(sql);
    } catch (err) {
      if (err instanceof RangeError && /more than one statement/.test(err.message))
        return undefined;
      throw err;
    }
    stmt.safeIntegers(safeIntegers);
    if (stmt.reader) stmt.raw(true);
    if (cacheSize > 0) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(sql, stmt);
    }
    return stmt;
  };

  /** Runs SQL with several statements (no parameters possible), e.g. a migration file. */
  const exec = (sql: string, params: readonly unknown[]): void => {
    if (params.length > 0) {
      throw new RouterError(
        "ROUTER_INVALID_ARGUMENT",
        "SQL holding several statements cannot take parameters",
      );
    }
    db.exec(sql);
  };

  const all = (sql: string, params: readonly unknown[]): unknown[][] => {
    const stmt = prepare(sql);
    if (!stmt) {
      exec(sql, params);
      return [];
    }
    if (!stmt.reader) {
      stmt.run(...bindable(params));
      return [];
    }
    return stmt.all(...bindable(params)) as unknown[][];
  };

  const get = (sql: string, params: readonly unknown[]): unknown[] | undefined => {
    const stmt = prepare(sql);
    if (!stmt) {
      exec(sql, params);
      return undefined;
    }
    if (!stmt.reader) {
      stmt.run(...bindable(params));
      return undefined;
    }
    return stmt.get(...bindable(params)) as unknown[] | undefined;
  };

  const run = (sql: string, params: readonly unknown[]): RunResult => {
    const stmt = prepare(sql);
    if (!stmt) {
      exec(sql, params);
      return {};
    }
    // better-sqlite3's own result object: `{ changes, lastInsertRowid }`.
    return stmt.run(...bindable(params));
  };

  const one = (s: Statement): StatementResult => {
    switch (s.method) {
      case "run":
        return run(s.sql, s.params);
      case "get":
        return get(s.sql, s.params);
      default:
        return all(s.sql, s.params);
    }
  };

  const primary: PrimaryConnection = {
    all: async (sql, params) => all(sql, params),
    get: async (sql, params) => get(sql, params),
    run: async (sql, params) => run(sql, params),
    // better-sqlite3 nests into a SAVEPOINT when a transaction is already open.
    batch: async (statements) => db.transaction(() => statements.map(one))(),
    inTransaction: () => db.inTransaction,
    position: (): WritePosition => (positions ? positions.mark() : { at: Date.now() }),
    valueTypes: () => valueTypes,
  };
  if (positions) primary.resolvePosition = (position) => positions.resolve(position);
  return primary;
}
