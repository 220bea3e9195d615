/**
 * One SQLite connection of a replica: its own wa-sqlite module instance (a
 * module must never be entered twice at once), the replica VFS registered in
 * it. Callers serialize every call into it (see `Replica`).
 *
 * Over the async build, reads of pages not cached suspend SQLite until they
 * arrive. Over the plain build, such a read fails the statement with
 * SQLITE_IOERR and records a miss ({@link ReplicaConnection.takeMisses}): the
 * caller waits for it and runs the statement again (`HybridConnection`).
 */
import * as SQLite from "@journeyapps/wa-sqlite";
import type { StatementContext } from "./bulk-fetch.js";
import type { ReplicaCore } from "./replica-core.js";
import { ReplicaError, ReplicaQueryError } from "./replica-error.js";
import { ReplicaVfs } from "./replica-vfs.js";
import { RequestBudgetError } from "./request-budget.js";
import { instantiateSqlite, type SqliteBuild, type SqliteBuildModule } from "./sqlite-runtime.js";
import { analyzeBytecode, type BytecodeOp, type StatementPlan } from "./statement-plan.js";
import {
  changesConnectionState,
  columnNames,
  errorMessage,
  parameterNames,
  readRow,
  reprepareCount,
  resetStatement,
  resetStatementSync,
  type SqlValue,
  stepStatement,
  stepStatementSync,
  TextBinder,
  type WasmSqliteModule,
} from "./wasm-statement.js";

export type { SqlValue };

/** A value that can be bound to a parameter (booleans bind as 0/1). */
export type BindValue = SqlValue | boolean;

/** Positional (`?`, `?NNN`) or named (`:name`, `@name`, `$name`; key with or without the prefix) parameters. */
export type SqlParams = readonly BindValue[] | Readonly<Record<string, BindValue>>;

/** Result of one `execute`: the rows of the last statement that returns columns. */
export interface ExecuteResult {
  /** Shared with the connection's statement cache: copy before handing it out. */
  columns: readonly string[];
  rows: SqlValue[][];
}

/** Name under which each connection opens the replica's database file. */
const DB_NAME = "pagecast-replica.db";

let vfsCounter = 0;

/** Prepared statements kept per connection. */
const MAX_CACHED_STATEMENTS = 64;

const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_IOERR_READ = 266;
const NO_COLUMNS: readonly string[] = Object.freeze([]);
/** Attempts at opening a plain-build connection whose first reads miss the page cache. */
const MAX_OPEN_ATTEMPTS = 8;

function isSqliteError(err: unknown): err is Error & { code: number } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number";
}

/** A prepared statement and what is worth remembering about it between runs. */
interface Prepared {
  stmt: number;
  /** Parameter names by position (index 0 is parameter 1). */
  params: (string | null)[];
  /** Column names, valid while the statement's re-prepare count is `reprepares`. */
  columns: readonly string[];
  reprepares: number;
  /** Leaves state on the connection (temp tables, settings): see {@link ReplicaConnection.hasState}. */
  stateful: boolean;
}

/** Options of {@link ReplicaConnection.open}. */
export interface ReplicaConnectionOptions {
  readAheadPages: number;
  /** SQLite's own page cache per connection, in KiB (`PRAGMA cache_size = -N`). */
  sqliteCacheKiB: number;
  /**
   * The statement being run, shared with the connection's other build (see
   * `HybridConnection`); bulk fetching reads it. Default: one of its own.
   */
  statement?: StatementContext;
}

/** One SQLite connection over a replica. */
/**
 * Thrown by a plain-build connection before it runs a statement that would
 * leave state on the connection (temp tables, settings, attached databases):
 * the caller runs the SQL on the async build instead.
 */
export class NeedsAsyncBuild extends Error {
  constructor() {
    super("the statement changes connection state: it runs on the async build");
    this.name = "NeedsAsyncBuild";
  }
}

export class ReplicaConnection {
  readonly #sqlite3: SQLiteAPI;
  readonly #module: WasmSqliteModule;
  readonly #db: number;
  readonly #vfs: ReplicaVfs;
  readonly #core: ReplicaCore;
  readonly #text: TextBinder;
  readonly #statement: StatementContext | undefined;
  /** Which wa-sqlite build the connection runs on. */
  readonly build: SqliteBuild;
  /** `sqlite3_step` / `sqlite3_reset` as fits the build (raw exports on the plain build). */
  readonly #step: (module: WasmSqliteModule, stmt: number) => number | Promise<number>;
  readonly #reset: (module: WasmSqliteModule, stmt: number) => number | Promise<number>;
  #closed = false;
  /** Prepared single statements by SQL text, least recently used first. */
  readonly #statements = new Map<string, Prepared>();
  /** SQL of the statement used last (already last in `#statements`). */
  #lastSql: string | undefined;
  /** Statements to run before the first caller's. */
  #setup: string[] | undefined;
  /** Set while running the connection's own statements (setup, version release). */
  #internal = false;
  /**
   * True once a caller's statement that may leave state on the connection
   * (a temp table, a PRAGMA setting, an ATTACH) succeeded: later statements
   * may depend on it, so they must run on this connection.
   */
  hasState = false;
  /** Return every INTEGER as a bigint (set by the caller before each statement). */
  safeIntegers = false;
  /** Rows a statement returns at most: stepping stops there (the rest is never read). */
  maxRows = Number.POSITIVE_INFINITY;

  private constructor(
    sqlite3: SQLiteAPI,
    module: WasmSqliteModule,
    db: number,
    vfs: ReplicaVfs,
    core: ReplicaCore,
    build: SqliteBuild,
    statement: StatementContext | undefined,
  ) {
    this.build = build;
    this.#statement = statement;
    this.#step = build === "sync" ? stepStatementSync : stepStatement;
    this.#reset = build === "sync" ? resetStatementSync : resetStatement;
    this.#sqlite3 = sqlite3;
    this.#module = module;
    this.#db = db;
    this.#vfs = vfs;
    this.#core = core;
    this.#text = new TextBinder(module);
  }

  /**
   * Instantiates a module of `source` (its build, wasm and glue), registers
   * the VFS and opens the database read-only.
   */
  static async open(
    core: ReplicaCore,
    source: SqliteBuildModule,
    options: ReplicaConnectionOptions,
  ): Promise<ReplicaConnection> {
    const { build } = source;
    const { module, sqlite3 } = await instantiateSqlite(source);
    vfsCounter++;
    const vfs = new ReplicaVfs(`pagecast-${vfsCounter}`, module, core, DB_NAME, {
      readAheadPages: options.readAheadPages,
      suspend: build === "async",
      ...(options.statement ? { statement: options.statement } : {}),
    });
    sqlite3.vfs_register(vfs, false);
    let db: number;
    for (let attempt = 1; ; attempt++) {
      try {
        db = await sqlite3.open_v2(DB_NAME, SQLite.SQLITE_OPEN_READONLY, vfs.name);
        break;
      } catch (err) {
        // Plain build: opening read a page not cached yet; it is on its way.
        const misses = vfs.takeMisses();
        if (!misses || attempt >= MAX_OPEN_ATTEMPTS) {
          // As a statement's failure: typed, with the storage error as its cause (a
          // deleted file then gets the statement re-planned and run again).
          const cause = vfs.lastError;
          vfs.lastError = undefined;
          if (cause instanceof RequestBudgetError) throw cause;
          if (isSqliteError(err)) {
            throw new ReplicaQueryError(
              err.code,
              err.message,
              cause !== undefined ? { cause } : {},
            );
          }
          throw err;
        }
        await Promise.all(misses);
      }
    }
    const conn = new ReplicaConnection(
      sqlite3,
      module as WasmSqliteModule,
      db,
      vfs,
      core,
      build,
      options.statement,
    );
    // Sorters and temp tables must never try to create files next to the replica.
    conn.#internal = true;
    try {
      await conn.execute("PRAGMA temp_store = memory");
    } finally {
      conn.#internal = false;
    }
    // Keep the read lock (and with it the pinned version and SQLite's page
    // cache) between transactions: no lock, unlock, journal probe, file size
    // and change-counter read per statement. `releaseVersion` lets go of it
    // when the replica has moved on. These read the database (schema, page 1):
    // deferred to the first statement, which reads it anyway, so that opening
    // fetches no page.
    conn.#setup = [
      `PRAGMA cache_size = -${Math.floor(options.sqliteCacheKiB)}`,
      "PRAGMA locking_mode = EXCLUSIVE",
    ];
    return conn;
  }

  /** True while an explicit transaction (BEGIN ...) is open on this connection. */
  get inTransaction(): boolean {
    return this.#module._sqlite3_get_autocommit(this.#db) === 0;
  }

  /**
   * True when SQLite still holds a version older than the replica's newest
   * (the read lock is kept between transactions): call {@link releaseVersion}
   * before the next transaction so it sees the newest.
   */
  get holdsStaleVersion(): boolean {
    const held = this.#vfs.heldVersion;
    return held !== undefined && held !== this.#core.current;
  }

  /**
   * Plain build: the fetches of the pages whose reads failed the last
   * statement (it failed with SQLITE_IOERR because of them), or `undefined`.
   * Once they have settled, running the statement again gets further.
   */
  takeMisses(): Promise<unknown>[] | undefined {
    return this.#vfs.takeMisses();
  }

  /**
   * Drops the read lock SQLite keeps in exclusive locking mode, so the next
   * transaction pins the newest version (SQLite then sees a new file change
   * counter and drops its page cache). Only between transactions.
   */
  async releaseVersion(): Promise<void> {
    const internal = this.#internal;
    this.#internal = true;
    try {
      await this.execute("PRAGMA locking_mode = NORMAL");
      try {
        // Any statement that reads the file ends by unlocking it in normal mode.
        await this.execute("PRAGMA schema_version");
      } catch {
        // Even a failed read (the old version's files may be gone) ends the
        // read transaction, and with it the lock.
      }
      await this.execute("PRAGMA locking_mode = EXCLUSIVE");
    } finally {
      this.#internal = internal;
    }
  }

  /**
   * Runs every statement of `sql` (parameters bind to each statement that has
   * any) and returns the rows of the last statement that returns columns.
   * Synchronous (a plain result) when every page it reads is cached. Callers
   * serialize every call (see `Replica`).
   */
  execute(sql: string, params?: SqlParams): ExecuteResult | Promise<ExecuteResult> {
    if (this.#closed) throw new ReplicaError("REPLICA_CLOSED", "the connection is closed");
    if (this.#setup !== undefined) return this.#setupThen(sql, params);
    const statement = this.#statement;
    if (statement && !this.#internal) {
      statement.enter(sql);
      // The async build cannot plan mid-statement: plan first (once per SQL text).
      if (this.build === "async" && !statement.plans.has(sql)) return this.#planThen(sql, params);
    }
    this.#vfs.lastError = undefined;
    // Misses of an earlier statement nobody ran again.
    if (this.#vfs.missed) this.#vfs.takeMisses();
    const cached = this.#statements.get(sql);
    if (cached === undefined) {
      return this.#prepareAndRun(sql, params).then(
        (result) => this.#succeeded(result),
        (err: unknown) => this.#failed(err),
      );
    }
    // Most recently used last.
    if (this.#lastSql !== sql) {
      this.#statements.delete(sql);
      this.#statements.set(sql, cached);
      this.#lastSql = sql;
    }
    let result: ExecuteResult | Promise<ExecuteResult>;
    try {
      result = this.#runPrepared(cached, params);
    } catch (err) {
      return this.#failedCached(sql, cached, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (r) => this.#succeeded(r),
        (err: unknown) => this.#failedCached(sql, cached, err),
      );
    }
    return this.#succeeded(result);
  }

  async #planThen(sql: string, params: SqlParams | undefined): Promise<ExecuteResult> {
    const plan = await this.plan(sql);
    // Even without a plan, do not try again for this SQL text.
    if (!this.#statement?.plans.has(sql)) this.#statement?.setPlan(sql, plan ?? null);
    return this.execute(sql, params);
  }

  /**
   * What `sql`'s first statement will read, from its bytecode (`EXPLAIN`,
   * which prepares but runs nothing). Recorded in the statement context.
   * `undefined` when it could not be planned now (a page of the schema is on
   * its way), `null` when it cannot be planned at all.
   */
  async plan(sql: string): Promise<StatementPlan | null | undefined> {
    const internal = this.#internal;
    this.#internal = true;
    const module = this.#module;
    try {
      const ops: BytecodeOp[] = [];
      for await (const stmt of this.#sqlite3.statements(this.#db, `EXPLAIN ${sql}`)) {
        for (;;) {
          const step = this.#step(module, stmt);
          const rc = typeof step === "number" ? step : await step;
          if (rc !== SQLITE_ROW) break;
          const row = readRow(module, stmt);
          ops.push({
            addr: Number(row[0]),
            opcode: String(row[1]),
            p1: Number(row[2]),
            p2: Number(row[3]),
            p3: Number(row[4]),
          });
        }
        break;
      }
      const plan = analyzeBytecode(ops);
      this.#statement?.setPlan(sql, plan);
      return plan;
    } catch {
      // A miss on the plain build: the schema page is on its way; plan another time.
      if (this.#vfs.missed) {
        this.#vfs.takeMisses();
        return undefined;
      }
      this.#statement?.setPlan(sql, null);
      return null;
    } finally {
      this.#internal = internal;
      this.#vfs.lastError = undefined;
    }
  }

  async #setupThen(sql: string, params: SqlParams | undefined): Promise<ExecuteResult> {
    const setup = this.#setup ?? [];
    this.#setup = undefined;
    const internal = this.#internal;
    this.#internal = true;
    try {
      for (const stmt of setup) await this.execute(stmt);
    } catch (err) {
      // Tried again before the next statement (e.g. after a storage error).
      this.#setup = setup;
      throw err;
    } finally {
      this.#internal = internal;
    }
    return this.execute(sql, params);
  }

  #succeeded(result: ExecuteResult): ExecuteResult {
    this.#vfs.lastError = undefined;
    return result;
  }

  async #failedCached(sql: string, cached: Prepared, err: unknown): Promise<never> {
    // A page miss (plain build) says nothing about the statement: keep it for the next run.
    if (this.#vfs.missed) return this.#failed(err);
    // A statement that failed otherwise is prepared afresh next time.
    if (this.#statements.get(sql) === cached) this.#statements.delete(sql);
    if (this.#lastSql === sql) this.#lastSql = undefined;
    await this.#sqlite3.finalize(cached.stmt).catch(() => {});
    return this.#failed(err);
  }

  /** Rethrows `err`, SQLite's errors as `ReplicaQueryError` with the VFS's cause. */
  #failed(err: unknown): never {
    const cause = this.#vfs.lastError;
    this.#vfs.lastError = undefined;
    if (err instanceof ReplicaError || err instanceof ReplicaQueryError) throw err;
    // Over its request budget: the budget's typed error, not SQLite's I/O error.
    if (cause instanceof RequestBudgetError) throw cause;
    if (isSqliteError(err)) {
      throw new ReplicaQueryError(err.code, err.message, cause !== undefined ? { cause } : {});
    }
    throw err;
  }

  /**
   * Prepares and runs each statement in turn (later statements may depend on
   * earlier ones); a lone statement is kept prepared for the next call.
   */
  async #prepareAndRun(sql: string, params: SqlParams | undefined): Promise<ExecuteResult> {
    const sqlite3 = this.#sqlite3;
    const module = this.#module;
    let result: ExecuteResult = { columns: NO_COLUMNS, rows: [] };
    const prepared: Prepared[] = [];
    let ok = false;
    try {
      for await (const stmt of sqlite3.statements(this.#db, sql, { unscoped: true })) {
        const p: Prepared = {
          stmt,
          params: parameterNames(module, stmt),
          columns: NO_COLUMNS,
          reprepares: -1,
          stateful: !this.#internal && changesConnectionState(module, stmt),
        };
        prepared.push(p);
        // State belongs on the async build: a statement that leaves some is
        // never run here, so a re-run after a page miss cannot repeat it.
        if (p.stateful && this.build === "sync") throw new NeedsAsyncBuild();
        const r = await this.#runPrepared(p, params);
        if (r.columns.length > 0) result = r;
      }
      ok = true;
    } finally {
      if (ok && prepared.length === 1) this.#cacheStatement(sql, prepared[0]!);
      else for (const p of prepared) await sqlite3.finalize(p.stmt);
    }
    return result;
  }

  #runPrepared(p: Prepared, params: SqlParams | undefined): ExecuteResult | Promise<ExecuteResult> {
    this.#bind(p, params);
    const module = this.#module;
    const rows: SqlValue[][] = [];
    for (;;) {
      const rc = this.#step(module, p.stmt);
      if (typeof rc !== "number") return this.#stepAsync(p, rows, rc);
      if (rc !== SQLITE_ROW) return this.#finish(p, rows, rc);
      rows.push(readRow(module, p.stmt, this.safeIntegers));
      if (rows.length >= this.maxRows) return this.#finish(p, rows, SQLITE_DONE);
    }
  }

  /** The rest of a statement after a step suspended for a page fetch. */
  async #stepAsync(
    p: Prepared,
    rows: SqlValue[][],
    pending: Promise<number>,
  ): Promise<ExecuteResult> {
    const module = this.#module;
    let rc = await pending;
    while (rc === SQLITE_ROW) {
      rows.push(readRow(module, p.stmt, this.safeIntegers));
      if (rows.length >= this.maxRows) return this.#finish(p, rows, SQLITE_DONE);
      const next = this.#step(module, p.stmt);
      rc = typeof next === "number" ? next : await next;
    }
    return this.#finish(p, rows, rc);
  }

  /** Resets the statement (ending its read transaction) and builds the result or the error. */
  #finish(p: Prepared, rows: SqlValue[][], rc: number): ExecuteResult | Promise<ExecuteResult> {
    const module = this.#module;
    const error =
      rc === SQLITE_DONE ? undefined : new SQLite.SQLiteError(errorMessage(module, this.#db), rc);
    const reset = this.#reset(module, p.stmt);
    if (typeof reset !== "number") return reset.then(() => this.#result(p, rows, error));
    return this.#result(p, rows, error);
  }

  #result(p: Prepared, rows: SqlValue[][], error: Error | undefined): ExecuteResult {
    if (error) throw error;
    // Some statements (integrity_check, quick_check) report a failed page
    // read as a row and complete: a read that failed, or missed the cache on
    // the plain build, fails the statement instead, so the caller waits for
    // the misses and runs it again or reports the cause.
    if (this.#vfs.missed || this.#vfs.lastError !== undefined) {
      throw new SQLite.SQLiteError(
        "a page read failed while running the statement",
        SQLITE_IOERR_READ,
      );
    }
    if (p.stateful) this.hasState = true;
    // A schema change re-prepares the statement; its columns may have changed.
    const reprepares = reprepareCount(this.#module, p.stmt);
    if (reprepares !== p.reprepares) {
      p.columns = columnNames(this.#module, p.stmt);
      p.reprepares = reprepares;
    }
    return { columns: p.columns, rows };
  }

  #cacheStatement(sql: string, p: Prepared): void {
    this.#statements.set(sql, p);
    this.#lastSql = sql;
    if (this.#statements.size > MAX_CACHED_STATEMENTS) {
      const [oldSql, old] = this.#statements.entries().next().value as [string, Prepared];
      this.#statements.delete(oldSql);
      void this.#sqlite3.finalize(old.stmt);
    }
  }

  /** Closes the database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#statements.values()) await this.#sqlite3.finalize(p.stmt);
    this.#statements.clear();
    await this.#sqlite3.close(this.#db);
    this.#text.free();
  }

  #bind(p: Prepared, params: SqlParams | undefined): void {
    const names = p.params;
    const count = names.length;
    if (count === 0) return;
    if (params === undefined) {
      throw new ReplicaError(
        "REPLICA_INVALID_ARGUMENT",
        `the statement expects ${count} parameter(s)`,
      );
    }
    const positional = Array.isArray(params);
    for (let i = 1; i <= count; i++) {
      const name = names[i - 1] ?? null;
      let value: BindValue | undefined;
      if (positional) {
        // `?NNN` names its own position; plain `?` takes the next one.
        value = name?.startsWith("?") ? params[Number(name.slice(1)) - 1] : params[i - 1];
      } else {
        const obj = params as Readonly<Record<string, BindValue>>;
        if (name && Object.hasOwn(obj, name)) value = obj[name];
        else if (name && Object.hasOwn(obj, name.slice(1))) value = obj[name.slice(1)];
      }
      if (value === undefined) {
        throw new ReplicaError(
          "REPLICA_INVALID_ARGUMENT",
          `missing value for parameter ${name ?? `#${i}`}`,
        );
      }
      const rc =
        typeof value === "string"
          ? this.#text.bind(p.stmt, i, value)
          : bindValue(this.#sqlite3, this.#module, p.stmt, i, value);
      if (rc !== SQLite.SQLITE_OK) {
        throw new SQLite.SQLiteError(errorMessage(this.#module, this.#db), rc);
      }
    }
  }
}

/** Binds one value; the common types straight through the raw exports. Returns SQLite's code. */
function bindValue(
  sqlite3: SQLiteAPI,
  module: WasmSqliteModule,
  stmt: number,
  i: number,
  value: BindValue,
): number {
  switch (typeof value) {
    case "number":
      if ((value | 0) === value) return module._sqlite3_bind_int(stmt, i, value);
      // wa-sqlite binds any number outside int32 as a double; keep integers integers.
      if (Number.isSafeInteger(value)) return sqlite3.bind_int64(stmt, i, BigInt(value));
      return module._sqlite3_bind_double(stmt, i, value);
    case "boolean":
      return module._sqlite3_bind_int(stmt, i, value ? 1 : 0);
    default:
      if (value === null) return module._sqlite3_bind_null(stmt, i);
      return sqlite3.bind(stmt, i, value);
  }
}
