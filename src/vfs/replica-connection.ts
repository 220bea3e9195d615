/**
 * One SQLite connection of a replica: its own wa-sqlite module instance (a
 * module must never be entered twice at once), the replica VFS registered in
 * it. Callers serialize every call into it (see `Replica`).
 */
import * as SQLite from "@journeyapps/wa-sqlite";
import type { ReplicaCore } from "./replica-core.js";
import { ReplicaError, ReplicaQueryError } from "./replica-error.js";
import { ReplicaVfs } from "./replica-vfs.js";
import { instantiateSqlite } from "./sqlite-runtime.js";

/** A value SQLite returns: INTEGER (bigint beyond 2^53), REAL, TEXT, BLOB, NULL. */
export type SqlValue = number | bigint | string | Uint8Array | null;

/** A value that can be bound to a parameter (booleans bind as 0/1). */
export type BindValue = SqlValue | boolean;

/** Positional (`?`, `?NNN`) or named (`:name`, `@name`, `$name`; key with or without the prefix) parameters. */
export type SqlParams = readonly BindValue[] | Readonly<Record<string, BindValue>>;

/** Result of one `execute`: the rows of the last statement that returns columns. */
export interface ExecuteResult {
  columns: string[];
  rows: SqlValue[][];
}

/** Name under which each connection opens the replica's database file. */
const DB_NAME = "pagecast-replica.db";

let vfsCounter = 0;

/** Prepared statements kept per connection. */
const MAX_CACHED_STATEMENTS = 64;

function isSqliteError(err: unknown): err is Error & { code: number } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number";
}

/** One SQLite connection over a replica. */
export class ReplicaConnection {
  readonly #sqlite3: SQLiteAPI;
  readonly #db: number;
  readonly #vfs: ReplicaVfs;
  #closed = false;
  /** Prepared single statements by SQL text, least recently used first. */
  readonly #statements = new Map<string, number>();

  private constructor(sqlite3: SQLiteAPI, db: number, vfs: ReplicaVfs) {
    this.#sqlite3 = sqlite3;
    this.#db = db;
    this.#vfs = vfs;
  }

  /** Instantiates a module, registers the VFS and opens the database read-only. */
  static async open(
    core: ReplicaCore,
    wasm: WebAssembly.Module,
    options: { readAheadPages: number },
  ): Promise<ReplicaConnection> {
    const { module, sqlite3 } = await instantiateSqlite(wasm);
    vfsCounter++;
    const vfs = new ReplicaVfs(`pagecast-${vfsCounter}`, module, core, DB_NAME, options);
    sqlite3.vfs_register(vfs, false);
    const db = await sqlite3.open_v2(DB_NAME, SQLite.SQLITE_OPEN_READONLY, vfs.name);
    const conn = new ReplicaConnection(sqlite3, db, vfs);
    // Sorters and temp tables must never try to create files next to the replica.
    await conn.execute("PRAGMA temp_store = memory");
    return conn;
  }

  /** True while an explicit transaction (BEGIN ...) is open on this connection. */
  get inTransaction(): boolean {
    return this.#sqlite3.get_autocommit(this.#db) === 0;
  }

  /**
   * Runs every statement of `sql` (parameters bind to each statement that has
   * any) and returns the rows of the last statement that returns columns.
   * Callers serialize through `queue`.
   */
  async execute(sql: string, params?: SqlParams): Promise<ExecuteResult> {
    if (this.#closed) throw new ReplicaError("REPLICA_CLOSED", "the connection is closed");
    this.#vfs.lastError = undefined;
    try {
      const cached = this.#statements.get(sql);
      if (cached !== undefined) {
        // Most recently used last.
        this.#statements.delete(sql);
        this.#statements.set(sql, cached);
        try {
          return await this.#runStatement(cached, params);
        } catch (err) {
          this.#statements.delete(sql);
          await this.#sqlite3.finalize(cached);
          throw err;
        }
      }
      return await this.#prepareAndRun(sql, params);
    } catch (err) {
      if (err instanceof ReplicaError) throw err;
      if (isSqliteError(err)) {
        const cause = this.#vfs.lastError;
        throw new ReplicaQueryError(err.code, err.message, cause !== undefined ? { cause } : {});
      }
      throw err;
    } finally {
      this.#vfs.lastError = undefined;
    }
  }

  /**
   * Prepares and runs each statement in turn (later statements may depend on
   * earlier ones); a lone statement is kept prepared for the next call.
   */
  async #prepareAndRun(sql: string, params: SqlParams | undefined): Promise<ExecuteResult> {
    const sqlite3 = this.#sqlite3;
    let result: ExecuteResult = { columns: [], rows: [] };
    const prepared: number[] = [];
    let ok = false;
    try {
      for await (const stmt of sqlite3.statements(this.#db, sql, { unscoped: true })) {
        prepared.push(stmt);
        const r = await this.#runStatement(stmt, params);
        if (r.columns.length > 0) result = r;
      }
      ok = true;
    } finally {
      if (ok && prepared.length === 1) this.#cacheStatement(sql, prepared[0]!);
      else for (const stmt of prepared) await sqlite3.finalize(stmt);
    }
    return result;
  }

  async #runStatement(stmt: number, params: SqlParams | undefined): Promise<ExecuteResult> {
    const sqlite3 = this.#sqlite3;
    try {
      this.#bind(stmt, params);
      const columns = sqlite3.column_names(stmt);
      const rows: SqlValue[][] = [];
      while ((await sqlite3.step(stmt)) === SQLite.SQLITE_ROW) {
        rows.push(sqlite3.row(stmt) as SqlValue[]);
      }
      return { columns, rows };
    } finally {
      // Ends the statement's read transaction; reports the step error again, already thrown.
      await sqlite3.reset(stmt).catch(() => {});
    }
  }

  #cacheStatement(sql: string, stmt: number): void {
    this.#statements.set(sql, stmt);
    if (this.#statements.size > MAX_CACHED_STATEMENTS) {
      const [oldSql, oldStmt] = this.#statements.entries().next().value as [string, number];
      this.#statements.delete(oldSql);
      void this.#sqlite3.finalize(oldStmt);
    }
  }

  /** Closes the database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stmt of this.#statements.values()) await this.#sqlite3.finalize(stmt);
    this.#statements.clear();
    await this.#sqlite3.close(this.#db);
  }

  #bind(stmt: number, params: SqlParams | undefined): void {
    const sqlite3 = this.#sqlite3;
    const count = sqlite3.bind_parameter_count(stmt);
    if (count === 0) return;
    sqlite3.clear_bindings(stmt);
    if (params === undefined) {
      throw new ReplicaError(
        "REPLICA_INVALID_ARGUMENT",
        `the statement expects ${count} parameter(s)`,
      );
    }
    for (let i = 1; i <= count; i++) {
      const name = sqlite3.bind_parameter_name(stmt, i);
      let value: BindValue | undefined;
      if (Array.isArray(params)) {
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
      bindValue(sqlite3, stmt, i, value);
    }
  }
}

function bindValue(sqlite3: SQLiteAPI, stmt: number, i: number, value: BindValue): void {
  // wa-sqlite binds any number outside int32 as a double; keep integers integers.
  if (
    typeof value === "number" &&
    Number.isSafeInteger(value) &&
    (value > 0x7fffffff || value < -0x80000000)
  ) {
    sqlite3.bind_int64(stmt, i, BigInt(value));
    return;
  }
  if (typeof value === "boolean") {
    sqlite3.bind_int(stmt, i, value ? 1 : 0);
    return;
  }
  sqlite3.bind(stmt, i, value);
}
