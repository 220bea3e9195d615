/**
 * `openReplica`: a read-only SQLite database that lives in object storage,
 * fetched page by page on demand. Runs in Node and in Cloudflare Workers.
 */
import type { RestoreTarget } from "../layout/index.js";
import {
  type MetricLabels,
  type MetricsOptions,
  type MetricsText,
  metricsText,
  WRITE_METRICS,
} from "../metrics/prometheus-text.js";
import { writeReplicaMetrics } from "../metrics/replica-metrics.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { OpenStoreOptions } from "../storage/open-store.js";
import { openCacheDir } from "./cache-dir.js";
import { HybridConnection, type SqliteModules } from "./hybrid-connection.js";
import type { HydrationStatus } from "./hydrator.js";
import { PersistentCache, type PersistentCacheBackend } from "./persistent-cache.js";
import type {
  ExecuteResult,
  ReplicaConnectionOptions,
  SqlParams,
  SqlValue,
} from "./replica-connection.js";
import {
  DEFAULT_POLL_ABANDON_MS,
  DEFAULT_POLL_WAIT_MS,
  type HydrateMode,
  ReplicaCore,
  type ReplicaCoreOptions,
  type ReplicaStatus,
} from "./replica-core.js";
import { ReplicaError, ReplicaQueryError } from "./replica-error.js";
import { defaultMaxRequestsPerQuery } from "./request-budget.js";
import { SerialQueue } from "./serial-queue.js";
import {
  lazySqliteWasm,
  loadAsyncGlue,
  requireSqliteWasm,
  resolveSyncSqliteWasm,
  type SqliteBuildModule,
  type SqliteGlueLoader,
  type SqliteWasmSource,
} from "./sqlite-runtime.js";
import { readTimeString } from "./time-string.js";

/** Options of {@link openReplica}. */
export interface ReplicaOptions {
  /** Page cache size in bytes, shared by all connections (default 64 MiB). */
  cacheBytes?: number;
  /**
   * Minimum time between polls (default 1000 ms). Polls happen lazily when a
   * read transaction starts and this much time has passed.
   */
  pollIntervalMs?: number;
  /**
   * Longest a query waits for a due poll, in ms (default 1000): past it the
   * query runs on the version the replica has (at most one poll behind)
   * while the poll goes on in the background, so a hung or slow storage
   * endpoint never holds up queries over cached pages. `Infinity`: always
   * wait for the poll (bounded only by the store's timeouts).
   */
  pollWaitMs?: number;
  /**
   * A poll in flight longer than this, in ms (default 30 000), is given up
   * and the next query starts a new one; what it would have applied is
   * dropped if it ever finishes. Workers cancel a request's outstanding I/O
   * once it has answered, so a poll that outlived its request (a slow
   * storage answer past `pollWaitMs`) never settles: without this bound the
   * replica would stay on its version for the isolate's life.
   */
  pollAbandonMs?: number;
  /**
   * Also poll on a timer every this many ms (long-lived processes; default
   * off). The timer never keeps a Node process alive.
   */
  backgroundPollMs?: number;
  /** Most storage requests in flight (default 16). */
  concurrency?: number;
  /** SQLite connections (each its own wa-sqlite instance) queries spread over (default 1). */
  connections?: number;
  /**
   * A fixed past state: a time (the newest state committed at or before it)
   * or `{ txid }`. The replica never polls. A string is an ISO 8601 time WITH
   * a zone ("2025-01-31T12:00:00Z") or "N minutes|hours|days|weeks ago";
   * anything else (no zone, loose forms) is refused with
   * `REPLICA_INVALID_ARGUMENT`, so the state never depends on the local zone.
   */
  at?: Date | string | { txid: number };
  /** `lagSeconds` above which health is `lagging` (default 60). */
  laggingSeconds?: number;
  /** `lagSeconds` above which health is `stale` (default 300). */
  staleSeconds?: number;
  /**
   * SQLite's own page cache per connection, in bytes (default: a quarter of
   * `cacheBytes`, at most 16 MiB), on top of `cacheBytes`. Queries served from
   * it never reach the VFS while the version is unchanged; pages it evicts (or
   * drops when a new version arrives) still come from the shared cache. An
   * async build opened beside the plain one (cold statements, transactions)
   * gets at most 1 MiB: it lives in a wasm heap that never shrinks, and would
   * only duplicate pages the shared cache holds.
   */
  sqliteCacheBytes?: number;
  /** Largest read-ahead window in pages (default 64; 0 disables read-ahead). */
  readAheadPages?: number;
  /** Eagerly fetch the children of a b-tree root page naming at most this many (default 64; 0 disables). */
  rootPrefetchFanout?: number;
  /** The wa-sqlite-async WebAssembly module or bytes (Workers: the imported `.wasm` module). */
  wasm?: SqliteWasmSource;
  /**
   * wa-sqlite's plain build (`@journeyapps/wa-sqlite/dist/wa-sqlite.wasm`,
   * same release as `wasm`), module or bytes: statements whose pages are
   * cached run on it, about half again as fast as on the async build. Default:
   * the one paired with `wasm` or registered (`pagecast/node` registers the
   * package's); `false`: async build only (half the memory per connection).
   */
  syncWasm?: SqliteWasmSource | false;
  /** Options for `openStore` when opening by URL. */
  storeOptions?: OpenStoreOptions;
  /** Close the store on `close()` (default: true when opened by URL, false for a given store). */
  closeStore?: boolean;
  /** Milliseconds clock used for polling intervals and lag (default `Date.now`; for simulations and tests). */
  clock?: () => number;
  /**
   * Hydration: download the whole database in the background with large
   * parallel range GETs, into memory (about the database's size), while
   * queries go on using pages as they land; afterwards each new version
   * costs only its changed pages. `true`: from the open on. `"auto"`
   * (default): when a query would read most of a database at most
   * `hydrateMaxBytes` large (or any query that bulk fetches in a database
   * under 2 MiB). `false`: never. Progress in `status().hydration`.
   */
  hydrate?: HydrateMode;
  /** Largest database (bytes of its LTX frames) `hydrate: "auto"` hydrates (default: `cacheBytes`). */
  hydrateMaxBytes?: number;
  /**
   * The fetch budget of B-tree-aware bulk fetching: most bytes one statement
   * may fetch in bulk (a B-tree's remaining leaves in one wave of coalesced
   * range GETs, when it scans a tree or keeps missing in it; on a file whose
   * trees interleave those ranges also read the pages between the leaves).
   * Default: the database's size (its LTX frames) up to 256 MiB, at least
   * half of `cacheBytes`; 0 disables bulk fetching (every miss is then
   * fetched on its own, with read-ahead). Pages kept are bounded by the page
   * cache either way.
   */
  bulkFetchBytes?: number;
  /**
   * Most storage requests (range GETs) one statement may cause: its misses,
   * their read-ahead and bulk fetches, and hydration it starts. As it nears
   * the budget a statement fetches the rest of the B-trees it reads in fewer,
   * bigger range GETs; a statement that still needs more fails with a
   * `RequestBudgetError` (code `REPLICA_REQUEST_BUDGET`, naming the
   * statement, the requests made and the budget) instead of sending them.
   * Polls and page-index reads at a transaction's start are not counted.
   * Default 40 (Cloudflare Workers allow 50 subrequests per invocation on
   * the free plan: room for a poll and the app's own); `Infinity` for no limit.
   */
  maxRequestsPerQuery?: number;
  /**
   * Node: a directory for the persistent page cache (Lambda's /tmp, a
   * server's disk): pages fetched once are read from it by later runs and
   * other processes sharing the directory. Bounded by `cacheDirMaxBytes`.
   */
  cacheDir?: string;
  /** Most bytes kept in `cacheDir` (default 512 MiB); least recently used entries go first. */
  cacheDirMaxBytes?: number;
  /**
   * A persistent page cache (any runtime): e.g. in Workers
   * `cacheApiBackend(caches.default)`, or a `PersistentCache` shared by
   * several replicas. Keyed by immutable object + byte range: never stale.
   */
  persistentCache?: PersistentCache | PersistentCacheBackend;
}

/** `openReplica({ store, ...options })`. */
export interface ReplicaStoreOptions extends ReplicaOptions {
  store: ObjectStore;
}

/**
 * The store of a replica and of the pinned replicas derived from it: closed
 * (when the replica opened it) once the last of them closes.
 */
interface SharedStore {
  readonly store: ObjectStore;
  readonly close: boolean;
  users: number;
}

interface Slot {
  queue: SerialQueue;
  conn: Promise<HybridConnection>;
  /** The connection once open (no await needed on the warm path). */
  ready: HybridConnection | undefined;
}

/** Rows returned by {@link Replica.query}. */
export type Row = Record<string, SqlValue>;

/** How a query returns its values. */
export interface ReplicaReadOptions {
  /**
   * Every INTEGER as a bigint, like better-sqlite3's `safeIntegers` (REAL
   * values stay numbers). Default: numbers, bigint only past 2^53.
   */
  safeIntegers?: boolean;
  /**
   * Return at most this many rows (a positive integer): SQLite stops there,
   * so the pages the rest would need are never fetched (a query for one row
   * without a LIMIT). Default: every row.
   */
  maxRows?: number;
}

/** `options.maxRows` checked (a typed error for anything but a positive integer), or no limit. */
function readMaxRows(options: ReplicaReadOptions | undefined): number {
  const n = options?.maxRows;
  if (n === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ReplicaError(
      "REPLICA_INVALID_ARGUMENT",
      `maxRows must be a positive integer, not ${String(n)}`,
    );
  }
  return n;
}

/** What a {@link Replica.transaction} callback gets: queries on one connection, one version. */
export interface ReplicaTransaction {
  query<T extends Row = Row>(
    sql: string,
    params?: SqlParams,
    options?: ReplicaReadOptions,
  ): Promise<T[]>;
  values(sql: string, params?: SqlParams, options?: ReplicaReadOptions): Promise<SqlValue[][]>;
}

function toRestoreTarget(at: ReplicaOptions["at"]): RestoreTarget | undefined {
  if (at === undefined) return undefined;
  if (at instanceof Date) {
    if (Number.isNaN(at.getTime()))
      throw new ReplicaError("REPLICA_INVALID_ARGUMENT", "`at` is an invalid Date");
    return { timestamp: at };
  }
  if (typeof at === "string") {
    // Strict, zone-independent reading (never Date.parse): the same rules as time travel.
    const t = readTimeString(at, Date.now());
    if (typeof t !== "number") {
      throw new ReplicaError("REPLICA_INVALID_ARGUMENT", `\`at\`: ${t.message}`);
    }
    return { timestamp: t };
  }
  if (typeof at === "object" && at !== null && Number.isSafeInteger(at.txid) && at.txid >= 1) {
    return { txid: at.txid };
  }
  throw new ReplicaError(
    "REPLICA_INVALID_ARGUMENT",
    "`at` must be a Date, an ISO time string or { txid }",
  );
}

/** Largest default SQLite page cache per connection (warm lookups, figure 3). */
const DEFAULT_SQLITE_CACHE_BYTES = 16 * 1024 * 1024;

function positive(value: number | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) {
    throw new ReplicaError("REPLICA_INVALID_ARGUMENT", `${name} must be a number >= ${min}`);
  }
  return value;
}

function rowsToObjects<T extends Row>(result: ExecuteResult): T[] {
  const { columns, rows } = result;
  return rows.map((values) => {
    const row: Row = {};
    for (let i = 0; i < columns.length; i++) row[columns[i]!] = values[i] ?? null;
    return row as T;
  });
}

/**
 * A read-only replica. Queries run on a small pool of SQLite connections that
 * share one page cache; each query (or transaction) sees one version.
 */
export class Replica {
  readonly #core: ReplicaCore;
  readonly #modules: SqliteModules;
  readonly #settings: ReplicaSettings;
  readonly #connectionOptions: ReplicaConnectionOptions;
  /** Connections with their queues; a slot's queue exists before its connection finished opening. */
  readonly #slots: Slot[] = [];
  readonly #store: SharedStore;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** @internal Use {@link openReplica}. */
  constructor(init: {
    core: ReplicaCore;
    modules: SqliteModules;
    first: HybridConnection;
    settings: ReplicaSettings;
    store: SharedStore;
  }) {
    this.#core = init.core;
    this.#modules = init.modules;
    this.#slots.push({
      queue: new SerialQueue(),
      conn: Promise.resolve(init.first),
      ready: init.first,
    });
    this.#settings = init.settings;
    this.#connectionOptions = connectionOptions(init.settings);
    this.#store = init.store;
    const pollMs = init.settings.backgroundPollMs;
    if (pollMs !== undefined && !init.core.pinned) {
      this.#timer = setInterval(() => {
        this.#core.poll().catch(() => {
          // Recorded in status.
        });
      }, pollMs);
      // Never keep a Node process alive for polling (no-op elsewhere).
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /** Store location (never credentials). */
  get url(): string {
    return this.#core.url;
  }

  /**
   * Runs `sql` and returns the rows of its last row-returning statement as
   * objects. A transaction the SQL opens (BEGIN, SAVEPOINT) ends with the
   * call (rolled back); use {@link Replica.transaction} for several queries
   * on one version.
   */
  async query<T extends Row = Row>(
    sql: string,
    params?: SqlParams,
    options?: ReplicaReadOptions,
  ): Promise<T[]> {
    const result = this.#run(sql, params, options);
    return rowsToObjects<T>(result instanceof Promise ? await result : result);
  }

  /**
   * Runs `sql` and returns the rows of its last row-returning statement as
   * arrays. A transaction the SQL opens ends with the call, as in {@link Replica.query}.
   */
  async values(
    sql: string,
    params?: SqlParams,
    options?: ReplicaReadOptions,
  ): Promise<SqlValue[][]> {
    const result = this.#run(sql, params, options);
    return (result instanceof Promise ? await result : result).rows;
  }

  /**
   * Runs `sql` and returns the column names and rows (arrays) of its last
   * row-returning statement. A transaction the SQL opens ends with the call,
   * as in {@link Replica.query}.
   */
  async execute(
    sql: string,
    params?: SqlParams,
    options?: ReplicaReadOptions,
  ): Promise<ExecuteResult> {
    const { columns, rows } = await this.#run(sql, params, options);
    return { columns: [...columns], rows };
  }

  /**
   * Runs `fn` inside one read transaction on one connection: every query in
   * it sees the same version, however long it runs and whatever the writer
   * publishes meanwhile.
   */
  async transaction<T>(fn: (tx: ReplicaTransaction) => Promise<T>): Promise<T> {
    this.#assertOpen();
    const slot = this.#pick();
    return slot.queue.run(async () => {
      // Transactions run on the async build: they wait for pages in place.
      const conn = await (await slot.conn).transactional();
      await this.#core.pollIfDue();
      if (conn.holdsStaleVersion) await conn.releaseVersion();
      await conn.execute("BEGIN");
      const run = (sql: string, params?: SqlParams, options?: ReplicaReadOptions) => {
        conn.safeIntegers = options?.safeIntegers === true;
        conn.maxRows = readMaxRows(options);
        return conn.execute(sql, params);
      };
      const tx: ReplicaTransaction = {
        query: async <R extends Row = Row>(
          sql: string,
          params?: SqlParams,
          options?: ReplicaReadOptions,
        ) => rowsToObjects<R>(await run(sql, params, options)),
        values: async (sql: string, params?: SqlParams, options?: ReplicaReadOptions) =>
          (await run(sql, params, options)).rows,
      };
      try {
        const result = await fn(tx);
        await conn.execute("COMMIT");
        return result;
      } catch (err) {
        if (conn.inTransaction) {
          await Promise.resolve()
            .then(() => conn.execute("ROLLBACK"))
            .catch(() => {});
        }
        throw err;
      }
    });
  }

  /**
   * Hydrates the database now (see the `hydrate` option) and resolves when
   * the current version is entirely in memory, with the hydration status.
   */
  async hydrate(): Promise<HydrationStatus> {
    this.#assertOpen();
    this.#core.hydrate();
    await this.#core.hydrated();
    return this.#core.status().hydration;
  }

  /**
   * Polls storage now (regardless of the interval) and applies what is new:
   * everything published before the call. A poll already in flight may have
   * read storage earlier, so the call then waits for it and polls once more
   * (one follow-up poll serves every call arriving meanwhile).
   */
  async poll(): Promise<void> {
    this.#assertOpen();
    await this.#core.poll(false, true);
  }

  /** Position, freshness, cache and request figures. */
  status(): ReplicaStatus {
    return this.#core.status();
  }

  /**
   * The replica's figures as Prometheus text, named like the writer's
   * (`pagecast_txid`, `pagecast_lag_seconds`, `pagecast_health{state}`,
   * requests and bytes by purpose, cache), labelled with its `url`: for a
   * serverless app to export. `metricsText([...])` combines several sources.
   */
  metrics(options: MetricsOptions = {}): string {
    return metricsText(this, options);
  }

  /** @internal Adds this replica's samples (see {@link metricsText}). */
  [WRITE_METRICS](out: MetricsText, labels: MetricLabels): void {
    writeReplicaMetrics(out, this.status(), { ...labels, url: this.url });
  }

  /** Closes every connection (and the store when the replica opened it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await Promise.all(
      this.#slots.map((s) => s.queue.run(async () => (await s.conn).close()).catch(() => {})),
    );
    this.#core.close();
    // What this replica fetched stays for the next run.
    await this.#core.persistentCache?.flush().catch(() => {});
    await this.#releaseStore();
  }

  async #releaseStore(): Promise<void> {
    const shared = this.#store;
    shared.users--;
    if (shared.users === 0 && shared.close) await shared.store.close();
  }

  /**
   * A replica pinned at `at` (a time, an ISO string with a zone,
   * "N hours ago" or `{ txid }`; see {@link ReplicaOptions.at}) derived from
   * this one: the same store (nothing opened by URL), the same page cache
   * (keyed by immutable LTX object and byte range, so pages either one
   * fetched serve both, within one `cacheBytes` budget), the same persistent
   * cache and wasm, and pages this replica hydrated. Its `status()` counts
   * its own requests. `options` tune the pinned replica (`connections`,
   * `concurrency`, `hydrate`...; default: this replica's, but no hydration
   * of its own when this replica has `hydrate: true`); `cacheBytes`,
   * `cacheDir`, `persistentCache`, `wasm` and the store options are this
   * replica's. Closing it leaves this replica untouched; the store closes
   * when the last replica sharing it does.
   */
  async pinned(
    at: ReplicaOptions["at"],
    options: Omit<ReplicaOptions, "at"> = {},
  ): Promise<Replica> {
    this.#assertOpen();
    const target = toRestoreTarget(at);
    if (!target) {
      throw new ReplicaError("REPLICA_INVALID_ARGUMENT", "`at` is required for a pinned replica");
    }
    // Pages this replica hydrates serve the pinned one: by default it does not hydrate a copy.
    const hydrate = options.hydrate ?? (this.#settings.hydrate === true ? false : undefined);
    const settings = readSettings(
      hydrate === undefined ? options : { ...options, hydrate },
      this.#settings,
    );
    const persistentCache = this.#core.persistentCache;
    const core = new ReplicaCore({
      ...coreOptions(settings),
      store: this.#store.store,
      at: target,
      pageCache: this.#core.cache,
      live: this.#core,
      ...(persistentCache ? { persistentCache } : {}),
    });
    // The store stays open while any replica sharing it is (this one may close meanwhile).
    this.#store.users++;
    try {
      await core.open();
      const first = await openFirstConnection(core, this.#modules, connectionOptions(settings));
      return new Replica({ core, modules: this.#modules, first, settings, store: this.#store });
    } catch (err) {
      core.close();
      await this.#releaseStore().catch(() => {});
      throw err;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new ReplicaError("REPLICA_CLOSED", `replica ${this.url} is closed`);
  }

  /** Runs on a connection; the result itself when it completed synchronously (warm). */
  #run(
    sql: string,
    params: SqlParams | undefined,
    options: ReplicaReadOptions | undefined,
  ): ExecuteResult | Promise<ExecuteResult> {
    this.#assertOpen();
    const slot = this.#pick();
    const safeIntegers = options?.safeIntegers === true;
    const maxRows = readMaxRows(options);
    return slot.queue.runNow(() => this.#runOn(slot, sql, params, safeIntegers, maxRows));
  }

  /**
   * One statement (or script) on `slot`'s connection. The warm path (open
   * connection, no poll due, every page cached) runs synchronously: the
   * queue, the poll check and SQLite add no promise hops.
   */
  #runOn(
    slot: Slot,
    sql: string,
    params: SqlParams | undefined,
    safeIntegers: boolean,
    maxRows: number,
  ): ExecuteResult | Promise<ExecuteResult> {
    const conn = slot.ready;
    if (!conn) {
      return slot.conn.then((c) => {
        c.safeIntegers = safeIntegers;
        c.maxRows = maxRows;
        return this.#runAsync(c, sql, params, undefined);
      });
    }
    conn.safeIntegers = safeIntegers;
    conn.maxRows = maxRows;
    // A statement outside an explicit transaction starts one: poll first when
    // due, and let go of an older version SQLite still holds.
    if (!conn.inTransaction) {
      const polling = this.#core.pollIfDue();
      if (polling || conn.holdsStaleVersion) return this.#runAsync(conn, sql, params, polling);
    }
    let result: ExecuteResult | Promise<ExecuteResult>;
    try {
      result = conn.execute(sql, params);
    } catch (err) {
      return this.#afterFailure(conn, sql, params, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (r) => this.#afterSuccess(conn, r),
        (err: unknown) => this.#afterFailure(conn, sql, params, err),
      );
    }
    // Cheap on the warm path: a flag check unless the SQL ran on the async build.
    return conn.inTransaction ? this.#afterSuccess(conn, result) : result;
  }

  /**
   * A transaction the SQL opened (a BEGIN or SAVEPOINT passed to query) ends
   * with the call: left open, it would pin its connection to an old version
   * (stale answers) and make transaction() fail on it. Rolled back, since a
   * replica has nothing to commit.
   */
  async #endLeftTransaction(conn: HybridConnection): Promise<void> {
    if (conn.inTransaction) await conn.execute("ROLLBACK");
  }

  async #afterSuccess(conn: HybridConnection, result: ExecuteResult): Promise<ExecuteResult> {
    await this.#endLeftTransaction(conn);
    return result;
  }

  async #afterFailure(
    conn: HybridConnection,
    sql: string,
    params: SqlParams | undefined,
    err: unknown,
  ): Promise<ExecuteResult> {
    // The statement's own error is the one to report.
    await this.#endLeftTransaction(conn).catch(() => {});
    return this.#retryAfterReplan(conn, sql, params, err);
  }

  async #runAsync(
    conn: HybridConnection,
    sql: string,
    params: SqlParams | undefined,
    polling: Promise<void> | undefined,
  ): Promise<ExecuteResult> {
    if (!conn.inTransaction) {
      if (polling) await polling;
      else await this.#core.pollIfDue();
      if (conn.holdsStaleVersion) await conn.releaseVersion();
    }
    let result: ExecuteResult;
    try {
      result = await conn.execute(sql, params);
    } catch (err) {
      return this.#afterFailure(conn, sql, params, err);
    }
    return this.#afterSuccess(conn, result);
  }

  /**
   * A file of the plan was deleted by retention: re-plan and try once more
   * (only outside explicit transactions, which must keep their version).
   */
  async #retryAfterReplan(
    conn: HybridConnection,
    sql: string,
    params: SqlParams | undefined,
    err: unknown,
  ): Promise<ExecuteResult> {
    if (
      err instanceof ReplicaQueryError &&
      err.isIoError &&
      this.#core.needsReplan &&
      !conn.inTransaction
    ) {
      let replanFailure: unknown;
      await this.#core.poll(true, true).catch((e: unknown) => {
        replanFailure = e;
      });
      // A pinned replica whose TXID is gone for good: say so, not "disk I/O error".
      if (
        replanFailure instanceof ReplicaError &&
        replanFailure.code === "REPLICA_TARGET_EXPIRED"
      ) {
        throw replanFailure;
      }
      if (conn.holdsStaleVersion) await conn.releaseVersion();
      let result: ExecuteResult;
      try {
        result = await conn.execute(sql, params);
      } catch (again) {
        await this.#endLeftTransaction(conn).catch(() => {});
        throw again;
      }
      return this.#afterSuccess(conn, result);
    }
    throw err;
  }

  /**
   * An idle connection, a new one (up to the limit), or the least busy.
   * Synchronous, so that the caller queues on it before anyone else looks.
   */
  #pick(): Slot {
    const idle = this.#slots.find((s) => s.queue.pending === 0);
    if (idle) return idle;
    if (this.#slots.length < this.#settings.maxConnections) {
      const slot: Slot = {
        queue: new SerialQueue(),
        conn: HybridConnection.open(this.#core, this.#modules, this.#connectionOptions),
        ready: undefined,
      };
      slot.conn.then(
        (c) => {
          slot.ready = c;
        },
        () => {},
      );
      // A connection that failed to open leaves the pool (its queued work fails with the cause).
      slot.conn.catch(() => {
        const i = this.#slots.indexOf(slot);
        if (i >= 0) this.#slots.splice(i, 1);
      });
      this.#slots.push(slot);
      return slot;
    }
    let best = this.#slots[0]!;
    for (const s of this.#slots) if (s.queue.pending < best.queue.pending) best = s;
    return best;
  }
}

/**
 * @internal What opening a replica takes beyond a store and the async build,
 * supplied by each entry point rather than imported here, so that an entry
 * leaving them out (`pagecast/reader`) leaves them out of bundles too:
 * `pagecast` and `pagecast/node` give both (open-replica.ts).
 */
export interface ReplicaOpeners {
  /** Opens the store of a URL target. Without it a URL is refused (`REPLICA_INVALID_ARGUMENT`). */
  openUrl?: (url: string, options: OpenStoreOptions | undefined) => Promise<ObjectStore>;
  /**
   * The plain build's glue. Without it every connection runs on the async
   * build alone (`syncWasm` and a registered default plain build unused).
   */
  syncGlue?: SqliteGlueLoader;
}

/** Why a target is refused, or undefined when it can be opened with `openers`. */
function targetProblem(target: unknown, openers: ReplicaOpeners): string | undefined {
  if (typeof target === "string") {
    if (openers.openUrl) return undefined;
    return (
      "this openReplica (pagecast/reader) opens replicas over a given store, not by URL: " +
      'pass { store } (e.g. r2Store(env.BUCKET, prefix), or any ObjectStore), or import openReplica from "pagecast" to open URLs'
    );
  }
  const store = (target as { store?: { get?: unknown } } | null | undefined)?.store;
  if (typeof target !== "object" || target === null || typeof store?.get !== "function") {
    return openers.openUrl
      ? "openReplica takes a store URL or { store, ...options } with an ObjectStore"
      : "openReplica takes { store, ...options } with an ObjectStore (e.g. r2Store(env.BUCKET, prefix))";
  }
  return undefined;
}

/**
 * @internal The one implementation of `openReplica`, with what the entry
 * point supplies (`openers`); see open-replica.ts and reader.ts.
 */
export async function openReplicaWith(
  openers: ReplicaOpeners,
  target: string | ReplicaStoreOptions,
  options: ReplicaOptions = {},
): Promise<Replica> {
  const problem = targetProblem(target, openers);
  if (problem !== undefined) throw new ReplicaError("REPLICA_INVALID_ARGUMENT", problem);
  const opts: ReplicaOptions = typeof target === "string" ? options : target;
  const at = toRestoreTarget(opts.at);
  const settings = readSettings(opts, undefined);
  const persistentCache = resolvePersistentCache(opts);

  // The first connection's build compiles, and its glue loads, during the
  // first storage round trips. Beside a plain build the async one compiles
  // on first need (a statement that misses pages, a transaction).
  const { syncGlue } = openers;
  const asyncSource = requireSqliteWasm(opts.wasm);
  const syncSource = syncGlue ? resolveSyncSqliteWasm(opts.wasm, opts.syncWasm) : undefined;
  const asyncBuild: SqliteBuildModule = {
    build: "async",
    compiled: lazySqliteWasm(asyncSource),
    glue: loadAsyncGlue,
  };
  const syncBuild: SqliteBuildModule | undefined =
    syncSource !== undefined && syncGlue
      ? { build: "sync", compiled: lazySqliteWasm(syncSource), glue: syncGlue }
      : undefined;
  const firstBuild = syncBuild ?? asyncBuild;
  const firstReady = Promise.all([firstBuild.compiled(), firstBuild.glue()]);
  firstReady.catch(() => {});
  const store =
    typeof target === "string"
      ? // targetProblem made sure there is an opener.
        await openers.openUrl!(target, opts.storeOptions)
      : target.store;
  const closeStore = opts.closeStore ?? typeof target === "string";
  try {
    const core = new ReplicaCore({
      ...coreOptions(settings),
      store,
      ...(persistentCache ? { persistentCache } : {}),
      ...(at ? { at } : {}),
    });
    await Promise.all([firstReady, core.open()]);
    const modules: SqliteModules = { async: asyncBuild, sync: syncBuild };
    const first = await openFirstConnection(core, modules, connectionOptions(settings));
    return new Replica({
      core,
      modules,
      first,
      settings,
      store: { store, close: closeStore, users: 1 },
    });
  } catch (err) {
    if (closeStore) await store.close().catch(() => {});
    throw err;
  }
}

/**
 * The first connection of a replica just planned. Opening reads pages (page
 * 1, the schema): a file of the plan deleted meanwhile (retention) makes the
 * replica plan again, and the open is tried once more.
 */
async function openFirstConnection(
  core: ReplicaCore,
  modules: SqliteModules,
  options: ReplicaConnectionOptions,
): Promise<HybridConnection> {
  try {
    return await HybridConnection.open(core, modules, options);
  } catch (err) {
    if (!core.needsReplan) throw err;
    await core.poll(true, true);
    return HybridConnection.open(core, modules, options);
  }
}

/** Every option of a replica but its store, cache and wasm, resolved (defaults applied). */
interface ReplicaSettings {
  cacheBytes: number;
  pollIntervalMs: number;
  pollWaitMs: number;
  pollAbandonMs: number;
  concurrency: number;
  maxConnections: number;
  readAheadPages: number;
  sqliteCacheBytes: number;
  rootPrefetchFanout: number;
  laggingSeconds: number;
  staleSeconds: number;
  backgroundPollMs: number | undefined;
  hydrate: HydrateMode;
  hydrateMaxBytes: number;
  bulkFetchBytes: number | undefined;
  maxRequestsPerQuery: number;
  clock: (() => number) | undefined;
}

/**
 * Validates `opts` and applies defaults: the library's, or those of `base`
 * (a replica a pinned one derives from: its page cache, hence `cacheBytes`).
 */
function readSettings(opts: ReplicaOptions, base: ReplicaSettings | undefined): ReplicaSettings {
  const cacheBytes =
    base?.cacheBytes ?? positive(opts.cacheBytes, 64 * 1024 * 1024, "cacheBytes", 65536);
  const hydrate = opts.hydrate ?? base?.hydrate ?? "auto";
  if (hydrate !== "auto" && hydrate !== true && hydrate !== false) {
    throw new ReplicaError("REPLICA_INVALID_ARGUMENT", 'hydrate must be "auto", true or false');
  }
  const backgroundPoll = opts.backgroundPollMs ?? base?.backgroundPollMs;
  const bulkFetch = opts.bulkFetchBytes ?? base?.bulkFetchBytes;
  return {
    cacheBytes,
    pollIntervalMs: positive(
      opts.pollIntervalMs,
      base?.pollIntervalMs ?? 1000,
      "pollIntervalMs",
      0,
    ),
    pollWaitMs:
      opts.pollWaitMs === Number.POSITIVE_INFINITY
        ? opts.pollWaitMs
        : positive(opts.pollWaitMs, base?.pollWaitMs ?? DEFAULT_POLL_WAIT_MS, "pollWaitMs", 0),
    pollAbandonMs: positive(
      opts.pollAbandonMs,
      base?.pollAbandonMs ?? DEFAULT_POLL_ABANDON_MS,
      "pollAbandonMs",
      1,
    ),
    concurrency: Math.floor(positive(opts.concurrency, base?.concurrency ?? 16, "concurrency")),
    maxConnections: Math.floor(
      positive(opts.connections, base?.maxConnections ?? 1, "connections"),
    ),
    readAheadPages: Math.floor(
      positive(opts.readAheadPages, base?.readAheadPages ?? 64, "readAheadPages", 0),
    ),
    sqliteCacheBytes: positive(
      opts.sqliteCacheBytes,
      base?.sqliteCacheBytes ??
        Math.max(65536, Math.min(DEFAULT_SQLITE_CACHE_BYTES, cacheBytes / 4)),
      "sqliteCacheBytes",
      65536,
    ),
    rootPrefetchFanout: Math.floor(
      positive(opts.rootPrefetchFanout, base?.rootPrefetchFanout ?? 64, "rootPrefetchFanout", 0),
    ),
    laggingSeconds: positive(opts.laggingSeconds, base?.laggingSeconds ?? 60, "laggingSeconds", 0),
    staleSeconds: positive(opts.staleSeconds, base?.staleSeconds ?? 300, "staleSeconds", 0),
    backgroundPollMs:
      backgroundPoll === undefined
        ? undefined
        : positive(backgroundPoll, 0, "backgroundPollMs", 10),
    hydrate,
    hydrateMaxBytes: positive(
      opts.hydrateMaxBytes,
      base?.hydrateMaxBytes ?? cacheBytes,
      "hydrateMaxBytes",
      0,
    ),
    bulkFetchBytes:
      bulkFetch === undefined ? undefined : Math.floor(positive(bulkFetch, 0, "bulkFetchBytes", 0)),
    maxRequestsPerQuery: requestBudget(opts.maxRequestsPerQuery, base?.maxRequestsPerQuery),
    clock: opts.clock ?? base?.clock,
  };
}

/** The core options `settings` give (store, caches and `at` aside). */
function coreOptions(settings: ReplicaSettings): Omit<ReplicaCoreOptions, "store"> {
  return {
    cacheBytes: settings.cacheBytes,
    pollIntervalMs: settings.pollIntervalMs,
    pollWaitMs: settings.pollWaitMs,
    pollAbandonMs: settings.pollAbandonMs,
    concurrency: settings.concurrency,
    laggingSeconds: settings.laggingSeconds,
    staleSeconds: settings.staleSeconds,
    readAheadPages: settings.readAheadPages,
    rootPrefetchFanout: settings.rootPrefetchFanout,
    hydrate: settings.hydrate,
    hydrateMaxBytes: settings.hydrateMaxBytes,
    ...(settings.bulkFetchBytes !== undefined ? { bulkFetchBytes: settings.bulkFetchBytes } : {}),
    maxRequestsPerQuery: settings.maxRequestsPerQuery,
    ...(settings.clock ? { now: settings.clock } : {}),
  };
}

/** `maxRequestsPerQuery`: a whole number >= 1, or `Infinity` (no limit). */
function requestBudget(value: number | undefined, base: number | undefined): number {
  if (value === undefined) return base ?? defaultMaxRequestsPerQuery();
  if (value === Number.POSITIVE_INFINITY) return value;
  return Math.floor(positive(value, 0, "maxRequestsPerQuery", 1));
}

function connectionOptions(settings: ReplicaSettings): ReplicaConnectionOptions {
  return {
    readAheadPages: settings.readAheadPages,
    sqliteCacheKiB: Math.max(64, Math.floor(settings.sqliteCacheBytes / 1024)),
  };
}

/** The persistent cache the options ask for: `persistentCache`, else `cacheDir`, else none. */
function resolvePersistentCache(opts: ReplicaOptions): PersistentCache | undefined {
  const given = opts.persistentCache;
  if (given !== undefined) {
    if (given instanceof PersistentCache) return given;
    if (given && typeof given.get === "function" && typeof given.put === "function") {
      return new PersistentCache(given);
    }
    throw new ReplicaError(
      "REPLICA_INVALID_ARGUMENT",
      "persistentCache must be a PersistentCache or a backend with get/put/delete",
    );
  }
  if (opts.cacheDir === undefined) return undefined;
  const max =
    opts.cacheDirMaxBytes === undefined
      ? undefined
      : positive(opts.cacheDirMaxBytes, 0, "cacheDirMaxBytes", 65536);
  return openCacheDir(opts.cacheDir, max);
}

/** The status of a replica (same as `replica.status()`; for symmetry with other pagecast tools). */
export function vfsStatus(replica: Replica): ReplicaStatus {
  return replica.status();
}
