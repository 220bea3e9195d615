/**
 * One connection slot of a replica over two wa-sqlite builds.
 *
 * The plain (synchronous) build runs SQLite about half again as fast as the
 * async (Asyncify) build, but its VFS cannot wait for a page fetch. So a
 * statement outside an explicit transaction runs on a plain-build
 * connection first: when every page it reads is cached (a warm replica) it
 * completes there. A read of a page not cached fails the statement with
 * SQLITE_IOERR after starting the fetch (with the usual coalescing and
 * read-ahead); once the fetch lands the statement runs again, from the start
 * (read-only: nothing to undo). After {@link MAX_SYNC_MISSES} rounds of misses
 * (a cold scan, which would otherwise restart over and over) the statement
 * moves to the async-build connection, which waits for pages in place.
 * Explicit transactions always run on the async build: a failed read there
 * would roll the whole transaction back. So do statements that leave state
 * on the connection (a temp table, a PRAGMA setting, an attached database):
 * the plain build refuses them before running them, so a re-run after a miss
 * never repeats one, and once the async connection holds state every later
 * statement runs there too, since it may depend on that state.
 *
 * Both connections read through the same replica core and VFS rules: page 1
 * derived from the version, one version per read transaction, the newest
 * version for a transaction that starts after a poll. Without a plain build
 * (e.g. a Worker given only the async module) every statement runs on the
 * async connection, as before.
 */

import { StatementContext } from "./bulk-fetch.js";
import {
  type ExecuteResult,
  NeedsAsyncBuild,
  ReplicaConnection,
  type ReplicaConnectionOptions,
  type SqlParams,
} from "./replica-connection.js";
import type { ReplicaCore } from "./replica-core.js";
import { ReplicaQueryError } from "./replica-error.js";
import { RequestBudgetError } from "./request-budget.js";
import type { SqliteBuildModule } from "./sqlite-runtime.js";

/** Rounds of page misses a statement may take on the plain build before it moves to the async one. */
export const MAX_SYNC_MISSES = 4;

/**
 * From this round of misses on, the async connection is opened in the
 * background (if not yet). Late: each wasm instance costs ~17 MiB of heap
 * plus its SQLite cache, and with bulk fetching most cold statements finish
 * on the plain build within a few rounds (figure 9).
 */
const OPEN_ASYNC_AT_MISS = 3;

/** From this round of misses on, the async build is compiled in the background. */
const COMPILE_ASYNC_AT_MISS = 2;

/** SQLite page cache of an async build opened beside a plain one, in KiB. */
const ASYNC_SQLITE_CACHE_KIB = 1024;

/** Both builds, compiled, with their glue. */
export interface SqliteModules {
  /** The async (Asyncify) build: required. */
  async: SqliteBuildModule;
  /** The plain build: optional (faster warm queries). */
  sync: SqliteBuildModule | undefined;
}

/** A plain-build connection for autocommit statements and an async-build one for the rest. */
export class HybridConnection {
  readonly #core: ReplicaCore;
  readonly #modules: SqliteModules;
  readonly #options: ReplicaConnectionOptions;
  readonly #sync: ReplicaConnection | undefined;
  #async: ReplicaConnection | undefined;
  #asyncOpening: Promise<ReplicaConnection> | undefined;
  /**
   * False while the async connection surely holds no open transaction (no
   * statement ran there since it was last seen in autocommit): spares the
   * warm path a call into its module per statement.
   */
  #asyncMayBeInTransaction = false;
  /** The async connection holds state later statements may need: everything runs there. */
  #asyncOnly = false;
  #safeIntegers = false;
  #maxRows = Number.POSITIVE_INFINITY;
  #closed = false;

  private constructor(
    core: ReplicaCore,
    modules: SqliteModules,
    options: ReplicaConnectionOptions,
    first: ReplicaConnection,
  ) {
    this.#core = core;
    this.#modules = modules;
    this.#options = options;
    if (first.build === "sync") this.#sync = first;
    else {
      this.#async = first;
      this.#asyncOpening = Promise.resolve(first);
      this.#asyncMayBeInTransaction = true;
    }
  }

  /** Opens the plain-build connection when there is a plain build, else the async one. */
  static async open(
    core: ReplicaCore,
    modules: SqliteModules,
    connectionOptions: ReplicaConnectionOptions,
  ): Promise<HybridConnection> {
    // One statement context for both builds: a statement keeps its fetch
    // state when it is run again or moves to the async build.
    const options = {
      ...connectionOptions,
      statement: new StatementContext(core.maxRequestsPerQuery),
    };
    const first = await ReplicaConnection.open(core, modules.sync ?? modules.async, options);
    return new HybridConnection(core, modules, options, first);
  }

  /** Return every INTEGER as a bigint: applies to the statements that follow, on both builds. */
  set safeIntegers(on: boolean) {
    this.#safeIntegers = on;
    if (this.#sync) this.#sync.safeIntegers = on;
    if (this.#async) this.#async.safeIntegers = on;
  }

  /** Rows each following statement returns at most, on both builds. */
  set maxRows(n: number) {
    this.#maxRows = n;
    if (this.#sync) this.#sync.maxRows = n;
    if (this.#async) this.#async.maxRows = n;
  }

  /** True while an explicit transaction is open (it runs on the async connection). */
  get inTransaction(): boolean {
    if (!this.#asyncMayBeInTransaction) return false;
    const open = this.#async?.inTransaction === true;
    // Only the async-only case keeps asking: there every statement may be a BEGIN.
    if (!open && this.#sync !== undefined) this.#asyncMayBeInTransaction = false;
    return open;
  }

  /** True when a connection still holds an older version than the replica's newest. */
  get holdsStaleVersion(): boolean {
    return this.#sync?.holdsStaleVersion === true || this.#async?.holdsStaleVersion === true;
  }

  /** Lets go of older versions, so the next statements see the newest. Only between transactions. */
  async releaseVersion(): Promise<void> {
    if (this.#sync?.holdsStaleVersion) await this.#sync.releaseVersion();
    const conn = this.#async;
    if (conn && !conn.inTransaction && conn.holdsStaleVersion) await conn.releaseVersion();
  }

  /**
   * Runs `sql` like {@link ReplicaConnection.execute}: synchronously (a plain
   * result) when it ran on the plain build and every page was cached.
   */
  execute(sql: string, params?: SqlParams): ExecuteResult | Promise<ExecuteResult> {
    const sync = this.#sync;
    if (!this.#asyncOnly && this.#async?.hasState) this.#asyncOnly = true;
    if (sync === undefined || this.#asyncOnly || this.inTransaction) {
      return this.#onAsync(sql, params);
    }
    let result: ExecuteResult | Promise<ExecuteResult>;
    try {
      result = sync.execute(sql, params);
    } catch (err) {
      return this.#retry(sync, sql, params, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (r) => (sync.inTransaction ? this.#moveTransaction(sync, sql, params) : r),
        (err: unknown) => this.#retry(sync, sql, params, err),
      );
    }
    // A BEGIN among the SQL: the transaction belongs on the async build.
    if (sync.inTransaction) return this.#moveTransaction(sync, sql, params);
    return result;
  }

  /** The async connection, for an explicit transaction (opened on first use). */
  transactional(): Promise<ReplicaConnection> {
    this.#asyncMayBeInTransaction = true;
    return this.#openAsync();
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const opening = this.#asyncOpening;
    await this.#sync?.close();
    if (opening) await (await opening.catch(() => undefined))?.close();
  }

  /**
   * After a plain-build failure: when it came from pages not cached, waits
   * for them and runs the statement again; after {@link MAX_SYNC_MISSES}
   * rounds, on the async build.
   */
  async #retry(
    sync: ReplicaConnection,
    sql: string,
    params: SqlParams | undefined,
    failure: unknown,
  ): Promise<ExecuteResult> {
    const statement = this.#options.statement;
    if (statement) statement.keep = true;
    try {
      return await this.#retryRounds(sync, sql, params, failure);
    } finally {
      if (statement) statement.keep = false;
    }
  }

  async #retryRounds(
    sync: ReplicaConnection,
    sql: string,
    params: SqlParams | undefined,
    failure: unknown,
  ): Promise<ExecuteResult> {
    let err = failure;
    for (let round = 1; ; round++) {
      if (err instanceof NeedsAsyncBuild) {
        // Statements before the stateful one were read-only: running them again is harmless.
        await this.#abandonTransaction(sync);
        this.#asyncOnly = true;
        return this.#onAsync(sql, params);
      }
      const misses = sync.takeMisses();
      if (!misses) {
        await this.#abandonTransaction(sync);
        throw err;
      }
      // A statement missing a second time may need the async build: it
      // compiles (off the main thread) while these pages are fetched, and
      // opens later if the statement keeps missing. Not at the first miss:
      // a cold point lookup (one round) would compete with its own answer.
      if (round === COMPILE_ASYNC_AT_MISS && !this.#asyncOpening) {
        this.#modules.async.compiled().catch(() => {});
      }
      if (round === OPEN_ASYNC_AT_MISS) this.#openAsync().catch(() => {});
      // A statement that misses: learn what it will read (bulk fetching uses
      // it from the next miss on) while its pages are on their way.
      const statement = this.#options.statement;
      if (statement && !statement.plans.has(sql) && !sync.inTransaction) {
        await sync.plan(sql);
        if (statement.state) this.#core.bulk.planArrived(statement.state);
      }
      try {
        await Promise.all(misses);
      } catch (cause) {
        await this.#abandonTransaction(sync);
        // The statement's own request budget: its typed error, not an I/O failure.
        if (cause instanceof RequestBudgetError) throw cause;
        // What the async build would have reported: the statement's I/O error, caused by the fetch.
        if (err instanceof ReplicaQueryError) {
          throw new ReplicaQueryError(err.sqliteCode, err.message, { cause });
        }
        throw cause;
      }
      if (round >= MAX_SYNC_MISSES) {
        await this.#abandonTransaction(sync);
        return this.#onAsync(sql, params);
      }
      try {
        const r = await sync.execute(sql, params);
        return sync.inTransaction ? this.#moveTransaction(sync, sql, params) : r;
      } catch (e) {
        err = e;
      }
    }
  }

  /**
   * The SQL opened a transaction on the plain build (a `BEGIN` passed to
   * `query`): undo it there and run the SQL on the async build, where the
   * transaction can wait for pages without being rolled back. The replica
   * ends it when the call returns (Replica#endLeftTransaction).
   */
  async #moveTransaction(
    sync: ReplicaConnection,
    sql: string,
    params: SqlParams | undefined,
  ): Promise<ExecuteResult> {
    await sync.execute("ROLLBACK");
    return this.#onAsync(sql, params);
  }

  /** A failed script may have left a transaction open on the plain build (`BEGIN; <error>`): end it. */
  async #abandonTransaction(sync: ReplicaConnection): Promise<void> {
    if (sync.inTransaction) await sync.execute("ROLLBACK");
  }

  #onAsync(sql: string, params: SqlParams | undefined): ExecuteResult | Promise<ExecuteResult> {
    // The SQL may open a transaction there (a BEGIN).
    this.#asyncMayBeInTransaction = true;
    const conn = this.#async;
    if (conn && (conn.inTransaction || !conn.holdsStaleVersion)) return conn.execute(sql, params);
    return this.#onAsyncLater(sql, params);
  }

  async #onAsyncLater(sql: string, params: SqlParams | undefined): Promise<ExecuteResult> {
    const conn = await this.#openAsync();
    // A statement of its own sees the newest version, like one on the plain build.
    if (!conn.inTransaction && conn.holdsStaleVersion) await conn.releaseVersion();
    return conn.execute(sql, params);
  }

  #openAsync(): Promise<ReplicaConnection> {
    if (!this.#asyncOpening) {
      // Beside a plain build, the async one runs cold statements and
      // transactions: a small SQLite cache (its pages are in the shared LRU,
      // and a heap never shrinks). Alone, it is the warm path: the full one.
      const options = this.#modules.sync
        ? {
            ...this.#options,
            sqliteCacheKiB: Math.min(this.#options.sqliteCacheKiB, ASYNC_SQLITE_CACHE_KIB),
          }
        : this.#options;
      const opening = ReplicaConnection.open(this.#core, this.#modules.async, options);
      this.#asyncOpening = opening;
      opening.then(
        (conn) => {
          if (this.#closed) void conn.close();
          else {
            conn.safeIntegers = this.#safeIntegers;
            conn.maxRows = this.#maxRows;
            this.#async = conn;
          }
        },
        () => {
          // Tried again on the next need.
          if (this.#asyncOpening === opening) this.#asyncOpening = undefined;
        },
      );
    }
    return this.#asyncOpening;
  }
}
