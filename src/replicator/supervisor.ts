/**
 * Many databases replicated by one process (`pagecast replicate -config`):
 * each database gets its own Replicator (lease, head, stats, store), and one
 * that fails never stops the others: a database that cannot start (missing,
 * lease held elsewhere, storage down) or that stops (lost lease) is logged
 * and started again with backoff, while the rest keep replicating.
 */
import {
  type MetricLabels,
  type MetricsOptions,
  type MetricsText,
  metricsText,
  WRITE_METRICS,
} from "../metrics/prometheus-text.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { ReplicatorLogger } from "./logger.js";
import { Replicator, type ReplicatorOptions } from "./replicator.js";

/** One database the supervisor replicates. */
export interface SupervisedDatabase {
  /** The database path (its identity in the supervisor, logs and metrics). */
  db: string;
  /** Where it goes, as logged and labelled (`url` of the store). */
  url: string;
  /** Opens the database's store (called again for every start attempt). */
  openStore: () => Promise<ObjectStore>;
  /** Replicator options besides `db`, `store` and `logger`. */
  options?: Omit<ReplicatorOptions, "db" | "url" | "store" | "logger">;
}

/** Options of {@link ReplicatorSupervisor}. */
export interface SupervisorOptions {
  logger: ReplicatorLogger;
  /** First wait before a failed database is started again, ms (doubles up to `maxRetryDelay`; default 1000). */
  retryDelay?: number;
  /** Longest wait between start attempts, ms (default 60 000). */
  maxRetryDelay?: number;
}

/** Where one database stands. */
export interface SupervisedStatus {
  db: string;
  url: string;
  /** `starting` (first attempt), `replicating`, `retrying` (after a failure), `stopped` (closed). */
  state: "starting" | "replicating" | "retrying" | "stopped";
  /** Failed starts and stops since the supervisor began. */
  failures: number;
  /** The latest failure, while not replicating (or the last background error while replicating). */
  lastError: string | null;
  /** The writer's health while replicating. */
  health: ReturnType<Replicator["stats"]>["health"] | null;
  txid: number | null;
}

const STATES = ["starting", "replicating", "retrying", "stopped"] as const;

function errorText(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" && !message.includes(code) ? `${message} [${code}]` : message;
}

class Supervised {
  state: SupervisedStatus["state"] = "starting";
  failures = 0;
  lastError: string | null = null;
  replicator: Replicator | undefined;
  store: ObjectStore | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  delay: number;
  /** The TXID when the replicator last closed. */
  lastTxid: number | null = null;
  /** The running start attempt or stop (close awaits it). */
  work: Promise<void> = Promise.resolve();

  constructor(
    readonly spec: SupervisedDatabase,
    readonly sup: ReplicatorSupervisor,
    readonly opts: Required<Omit<SupervisorOptions, "logger">> & { logger: ReplicatorLogger },
  ) {
    this.delay = opts.retryDelay;
  }

  get log(): ReplicatorLogger {
    return this.opts.logger;
  }

  /** The replicator's lines name their database (one process logs many). */
  readonly dbLog: ReplicatorLogger = {
    debug: (m, f) => this.log.debug(m, { db: this.spec.db, ...f }),
    info: (m, f) => this.log.info(m, { db: this.spec.db, ...f }),
    warn: (m, f) => this.log.warn(m, { db: this.spec.db, ...f }),
    error: (m, f) => this.log.error(m, { db: this.spec.db, ...f }),
  };

  start(): void {
    this.work = this.work.then(() => this.#attempt());
  }

  async #attempt(): Promise<void> {
    this.timer = undefined;
    if (this.sup.closed) return;
    const { db } = this.spec;
    let store: ObjectStore | undefined;
    try {
      store = await this.spec.openStore();
      const r = await Replicator.start({
        ...this.spec.options,
        db,
        store,
        logger: this.dbLog,
      });
      this.replicator = r;
      this.store = store;
      this.state = "replicating";
      this.lastError = null;
      this.delay = this.opts.retryDelay;
      r.on("error", (err: unknown) => {
        this.lastError = errorText(err);
        // A lost lease stops the replicator for good: start it again later.
        if ((err as { code?: unknown }).code === "LEASE_LOST") {
          this.work = this.work.then(() => this.#stopped(err));
        }
      });
      if (this.sup.closed) await this.#close();
    } catch (err) {
      await store?.close().catch(() => {});
      this.#fail(err, "cannot start replicating");
    }
  }

  async #stopped(err: unknown): Promise<void> {
    if (this.sup.closed || this.state !== "replicating") return;
    await this.#close().catch(() => {});
    this.#fail(err, "replication stopped");
  }

  #fail(err: unknown, what: string): void {
    this.failures++;
    this.lastError = errorText(err);
    if (this.sup.closed) return;
    this.state = "retrying";
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.opts.maxRetryDelay);
    this.log.error(`${what}; retrying in ${Math.round(wait / 100) / 10}s`, {
      db: this.spec.db,
      replica: this.spec.url,
      error: this.lastError,
    });
    this.timer = setTimeout(() => this.start(), wait);
    // The daemon holds the process open itself; a library user's supervisor must not.
    this.timer.unref();
  }

  async #close(): Promise<void> {
    const r = this.replicator;
    const store = this.store;
    this.replicator = undefined;
    this.store = undefined;
    try {
      await r?.close();
    } finally {
      if (r) this.lastTxid = r.stats().txid;
      await store?.close().catch(() => {});
    }
  }

  /** Final sync and lease release (waits for a start attempt under way). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.work.catch(() => {});
    try {
      await this.#close();
    } finally {
      this.state = "stopped";
    }
  }

  status(): SupervisedStatus {
    const s = this.replicator?.stats();
    return {
      db: this.spec.db,
      url: this.spec.url,
      state: this.state,
      failures: this.failures,
      lastError: this.lastError ?? s?.lastError ?? null,
      health: s?.health ?? null,
      txid: s?.txid ?? this.lastTxid,
    };
  }
}

/**
 * Replicates many databases in one process, each independently (see the
 * module comment). `metrics()` gives every database's writer metrics plus
 * `pagecast_database_state{db,url,state}` and
 * `pagecast_database_failures_total{db,url}`.
 */
export class ReplicatorSupervisor {
  readonly #dbs = new Map<string, Supervised>();
  readonly #opts: Required<Omit<SupervisorOptions, "logger">> & { logger: ReplicatorLogger };
  #closed = false;

  constructor(options: SupervisorOptions) {
    this.#opts = {
      logger: options.logger,
      retryDelay: options.retryDelay ?? 1000,
      maxRetryDelay: options.maxRetryDelay ?? 60_000,
    };
  }

  /** @internal */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether `db` is supervised already. */
  has(db: string): boolean {
    return this.#dbs.has(db);
  }

  /** Starts replicating `spec.db` (in the background; failures are retried). False when it is supervised already. */
  add(spec: SupervisedDatabase): boolean {
    if (this.#closed || this.#dbs.has(spec.db)) return false;
    const d = new Supervised(spec, this, this.#opts);
    this.#dbs.set(spec.db, d);
    d.start();
    return true;
  }

  /**
   * Stops replicating `db` (a database that was deleted): closes its
   * replicator, whose final sync may fail on a vanished file (logged, not
   * thrown). False when it was not supervised.
   */
  async remove(db: string): Promise<boolean> {
    const d = this.#dbs.get(db);
    if (!d) return false;
    this.#dbs.delete(db);
    await d.close().catch((err: unknown) => {
      this.#opts.logger.warn("closing a removed database failed", { db, error: errorText(err) });
    });
    return true;
  }

  /** Resolves once every database added so far made its first start attempt. */
  async started(): Promise<void> {
    await Promise.all([...this.#dbs.values()].map((d) => d.work.catch(() => {})));
  }

  /** The running replicator of `db`, if it replicates now. */
  replicator(db: string): Replicator | undefined {
    return this.#dbs.get(db)?.replicator;
  }

  /** Every database's state. */
  status(): SupervisedStatus[] {
    return [...this.#dbs.values()].map((d) => d.status());
  }

  /** Whether every database replicates and its writer is healthy. */
  healthy(): boolean {
    return this.status().every((s) => s.state === "replicating" && s.health === "healthy");
  }

  /** Prometheus text of every database (see the class comment). */
  metrics(options: MetricsOptions = {}): string {
    return metricsText(this, options);
  }

  /** @internal */
  [WRITE_METRICS](out: MetricsText, labels: MetricLabels): void {
    const statuses = [...this.#dbs.values()];
    for (const d of statuses) {
      const l = { ...labels, db: d.spec.db, url: d.spec.url };
      for (const state of STATES) {
        out.add(
          "pagecast_database_state",
          "gauge",
          "1 for the state of each configured database (starting, replicating, retrying, stopped).",
          { ...l, state },
          d.state === state ? 1 : 0,
        );
      }
      out.add(
        "pagecast_database_failures_total",
        "counter",
        "Failed starts and stops of the database's replication (each retried).",
        l,
        d.failures,
      );
    }
    for (const d of statuses) d.replicator?.[WRITE_METRICS](out, labels);
  }

  /** Stops every database: final syncs and lease releases, in parallel. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const results = await Promise.allSettled([...this.#dbs.values()].map((d) => d.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}
