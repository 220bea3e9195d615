/**
 * `createRouter`: one Drizzle database (sqlite-proxy, async) whose statements
 * are routed one by one in the proxy callback: proven reads to a healthy
 * replica, everything else (writes, RETURNING, DDL, PRAGMA, transactions,
 * batches) to the primary. Routing happens when a statement runs, not when a
 * query is built, so it sees the session's latest writes. The aim is a
 * database indistinguishable from Drizzle over the primary alone: statements
 * take effect in the order they were issued, whatever lives only on the
 * primary's connection is read there, and results have the primary driver's
 * types and shapes whichever side answered.
 */
import type { Cache } from "drizzle-orm/cache/core";
import type { SqliteRemoteDatabase } from "drizzle-orm/sqlite-proxy";
import {
  type MetricLabels,
  type MetricsOptions,
  type MetricsText,
  metricsText,
  WRITE_METRICS,
} from "../metrics/prometheus-text.js";
import { writeRouterMetrics } from "../metrics/router-metrics.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { ReplicaOptions } from "../vfs/replica.js";
import type { ReplicaStatus } from "../vfs/replica-core.js";
import type {
  PrimaryConnection,
  ReplicaHealthStatus,
  RouterReplica,
  Statement,
  StatementMethod,
  StatementResult,
  ValueTypes,
} from "./connection.js";
import { drizzleRuntime } from "./drizzle-runtime.js";
import { PrimaryGate } from "./primary-gate.js";
import { PrimaryState } from "./primary-state.js";
import {
  type DrizzleOptions,
  describeStatement,
  type ReadonlyDatabase,
  readOnlyDrizzle,
  readRows,
  readSequentially,
} from "./read-only-database.js";
import { classifyReplicaFailure, type ReplicaLike, toRouterReplica } from "./replica-adapter.js";
import { type FallbackReason, type ReplicaEntry, ReplicaSelector } from "./replica-selector.js";
import { type RouterCache, routerCache } from "./router-cache.js";
import { RouterError } from "./router-error.js";
import { getDefaultSessionContext, RouterSession, type SessionContext } from "./router-session.js";
import {
  classifyStatement,
  type StatementClass,
  type TransactionEffect,
} from "./statement-classifier.js";
import {
  addPosition,
  emptyRequirement,
  type Requirement,
  replicaSatisfies,
  resolveRequirement,
  type WritePosition,
} from "./write-position.js";

/** Options of {@link createRouter}. */
export interface RouterOptions<TSchema extends Record<string, unknown> = Record<string, never>> {
  /** The writable database (see `betterSqlitePrimary` in `pagecast/node`, or any {@link PrimaryConnection}). */
  primary: PrimaryConnection;
  /** Replicas: `Replica` objects from `openReplica`, or {@link RouterReplica} implementations. */
  replicas: ReadonlyArray<ReplicaLike | RouterReplica>;
  /** A replica is healthy while its `lagSeconds` is at most this (default 60). */
  maxLagSeconds?: number;
  /**
   * Read-your-writes (default on): after a write, the session reads from the
   * primary until a replica holds it. `assumePublishedWithinMs` (default
   * 10 000) only matters for primaries that cannot tell replica positions
   * (no Replicator attached): a replica that confirmed freshness that long
   * after the write is assumed to have it.
   */
  readYourWrites?: boolean | { assumePublishedWithinMs?: number };
  /** Drizzle schema (relational queries). */
  schema?: TSchema;
  /** Drizzle logger and casing. */
  drizzle?: Omit<DrizzleOptions<TSchema>, "schema">;
  /**
   * Drizzle's query cache (a `Cache` from `drizzle-orm/cache/core`, e.g.
   * `upstashCache()`), shared by every database of the router (`$primary`,
   * `$replica`, sessions; not time travel). Writes through the router
   * invalidate it as Drizzle does; a replica's answer is only cached when
   * that replica already holds every write made through the router, so a
   * cached result never predates one.
   */
  cache?: Cache;
  /**
   * Where the current session lives across awaits. Default: the provider
   * `pagecast/node` registers (AsyncLocalStorage); `null` for none (explicit
   * sessions only).
   */
  context?: SessionContext | null;
  /** Replicas whose lag is within this many seconds of the least count as tied (default 1). */
  tieSeconds?: number;
  /** After a connection failure, a replica is skipped this long (ms, default 2000). */
  retryReplicaAfterMs?: number;
  /**
   * Least time between background polls the router asks of a replica that
   * lags or lacks a session's write (ms, default 200; each is one conditional GET).
   */
  pollKickMs?: number;
  /** Time travel from this router: a store and replica options for pinned replicas. */
  timeTravel?: { store?: ObjectStore; replicaOptions?: ReplicaOptions };
  /** Milliseconds clock (tests). */
  clock?: () => number;
}

/** A replica's line in {@link RouterStatus}. */
export interface RouterReplicaStatus {
  /** The replica's name (URL). */
  name: string;
  /** Its own status (a `Replica`'s full status; the fields of {@link ReplicaHealthStatus} at least). */
  status: ReplicaHealthStatus & Partial<ReplicaStatus>;
  /** Reads the router sent to it. */
  reads: number;
  /** Connection-level failures of reads the router sent to it. */
  errors: number;
  /** Whether the router currently skips it after a failure. */
  coolingDown: boolean;
  lastError: { message: string; code: string | undefined; at: Date } | null;
}

/** What `vfsStatus(router)` reports. */
export interface RouterStatus {
  kind: "router";
  maxLagSeconds: number;
  replicas: RouterReplicaStatus[];
  /** Reads by target. */
  reads: { primary: number; replicas: number };
  /** Statements that may write (all on the primary), batches and transactions. */
  writes: number;
  batches: number;
  transactions: number;
  /** Reads that could have gone to a replica but went to the primary, by reason. */
  fallbacks: {
    total: number;
    reasons: Record<FallbackReason, number>;
    last: { reason: FallbackReason; replica: string | undefined; at: Date } | null;
  };
}

/** A Drizzle database bound to one explicit session (see `$session`). */
export type SessionDatabase<TSchema extends Record<string, unknown> = Record<string, never>> =
  SqliteRemoteDatabase<TSchema> & {
    /** This session's bookmark: send it to the client (cookie or header). */
    $bookmark(): string;
    /** The same session, every statement on the primary. */
    readonly $primary: SqliteRemoteDatabase<TSchema>;
    /** Reads from a replica regardless of this session's writes. */
    readonly $replica: ReadonlyDatabase<TSchema>;
  };

/** What `$withSession` returns: thenables become promises settled inside the session. */
export type WithSessionResult<T> = T extends PromiseLike<infer U> ? Promise<U> : T;

/** The database `createRouter` returns. */
export type RouterDatabase<TSchema extends Record<string, unknown> = Record<string, never>> =
  SqliteRemoteDatabase<TSchema> & {
    /** Every statement on the primary (Drizzle 1.0 name); read-your-writes still tracked. */
    readonly $primary: SqliteRemoteDatabase<TSchema>;
    /** Reads from a replica, ignoring read-your-writes (Drizzle 1.0 name); writes are refused. */
    readonly $replica: ReadonlyDatabase<TSchema>;
    /** A database bound to an explicit session resuming `bookmark` (for runtimes without AsyncLocalStorage). */
    $session(bookmark?: string | null): SessionDatabase<TSchema>;
    /**
     * Runs `fn` in a new session (resuming `bookmark`) carried by the async
     * context. A thenable result (e.g. a Drizzle query, which runs only when
     * awaited) is awaited inside the session.
     */
    $withSession<T>(fn: () => T, bookmark?: string | null): WithSessionResult<T>;
    /** The current session's bookmark (async context, else the router-wide session). */
    $bookmark(): string;
    /** Routing figures (also `vfsStatus(router)`). */
    $status(): RouterStatus;
    /**
     * The router's figures as Prometheus text: reads per target, writes,
     * fallbacks by reason, and each replica's metrics (as `replica.metrics()`
     * names them, labelled `url` and `replica` = its index).
     */
    $metrics(options?: MetricsOptions): string;
    /** @internal Adds the router's samples (`metricsText([router, ...])`). */
    [WRITE_METRICS](out: MetricsText, labels: MetricLabels): void;
    /**
     * Closes the replicas the router was given (those with a `close()`),
     * not the primary: the application opened its handle and closes it.
     * Statements afterwards fail with `ROUTER_CLOSED`. Idempotent; also
     * `await using db = createRouter(...)`.
     */
    $close(): Promise<void>;
    [Symbol.asyncDispose](): Promise<void>;
  };

/** @internal What time travel and `vfsStatus` learn about a router. */
export interface RouterInternals {
  status(): RouterStatus;
  /** A replica to plan time travel on (the preferred one), with the original object. */
  pinSource(): ReplicaLike | RouterReplica | undefined;
  schema: Record<string, unknown> | undefined;
  drizzle: Omit<DrizzleOptions<Record<string, unknown>>, "schema"> | undefined;
  timeTravel: RouterOptions["timeTravel"];
  /** The JS types of the primary's driver (time travel answers with them too). */
  valueTypes(): ValueTypes | undefined;
  /** Runs statements as one atomic batch on the primary, in the current session. */
  primaryBatch(statements: Statement[]): Promise<unknown[]>;
}

const ROUTER = Symbol.for("pagecast.router");

/** The router behind a database made by {@link createRouter}, if `db` is one. */
export function routerInternals(db: unknown): RouterInternals | undefined {
  if (db === null || (typeof db !== "object" && typeof db !== "function")) return undefined;
  return (db as { [ROUTER]?: RouterInternals })[ROUTER];
}

type Mode = "route" | "primary" | "replica";

interface Binding {
  /** The explicit session, if any (else the context's, else the router-wide one). */
  base: RouterSession | undefined;
  mode: Mode;
}

/** What the sqlite-proxy callback returns: `{ rows }`, or for `run` the driver's own result. */
type ProxyResult = { rows: unknown } | StatementResult;

const FALLBACK_REASONS: FallbackReason[] = [
  "no-replicas",
  "no-healthy-replica",
  "read-your-writes",
  "replica-error",
  "replica-read-only",
  "primary-only",
  "replica-missing-object",
];

function positiveNumber(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RouterError("ROUTER_INVALID_ARGUMENT", `${name} must be a number >= 0`);
  }
  return value;
}

function checkPrimary(primary: unknown): PrimaryConnection {
  const p = primary as Partial<PrimaryConnection> | null;
  if (
    !p ||
    typeof p !== "object" ||
    typeof p.all !== "function" ||
    typeof p.get !== "function" ||
    typeof p.run !== "function" ||
    typeof p.batch !== "function"
  ) {
    throw new RouterError(
      "ROUTER_INVALID_ARGUMENT",
      "primary must implement { all, get, run, batch } (e.g. betterSqlitePrimary from pagecast/node)",
    );
  }
  return primary as PrimaryConnection;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * Shapes a primary result as sqlite-proxy wants it: rows under `rows`; a
 * `run` result exactly as the driver returned it (Drizzle hands it to the
 * caller as is).
 */
function proxyResult(method: StatementMethod, result: StatementResult): ProxyResult {
  return method === "run" ? result : { rows: result };
}

/** Statements after which the primary's temp objects or attached databases may have changed. */
function changesSchema(cls: StatementClass): boolean {
  return (
    cls.kind === "ddl" || cls.kind === "attach" || cls.kind === "multiple" || cls.kind === "unknown"
  );
}

class Router<TSchema extends Record<string, unknown>> implements RouterInternals {
  readonly primary: PrimaryConnection;
  readonly selector: ReplicaSelector;
  readonly originals: ReadonlyArray<ReplicaLike | RouterReplica>;
  readonly gate = new PrimaryGate();
  readonly context: SessionContext | undefined;
  readonly defaultSession = new RouterSession();
  readonly ryw: boolean;
  readonly maxLagSeconds: number;
  readonly schema: TSchema | undefined;
  readonly drizzle: Omit<DrizzleOptions<TSchema>, "schema"> | undefined;
  readonly timeTravel: RouterOptions["timeTravel"];
  readonly now: () => number;
  readonly assumePublishedWithinMs: number;
  /** What exists only on the primary's connection (temp objects, attached databases). */
  readonly primaryState = new PrimaryState();
  /** Drizzle's cache, wrapped so that answers older than a write are not stored. */
  readonly cache: RouterCache | undefined;
  /** Every write made through the router (all sessions): a cacheable replica answer holds them all. */
  readonly written: Requirement = emptyRequirement();
  readonly counts = {
    primaryReads: 0,
    replicaReads: 0,
    writes: 0,
    batches: 0,
    transactions: 0,
    fallbacks: Object.fromEntries(FALLBACK_REASONS.map((r) => [r, 0])) as Record<
      FallbackReason,
      number
    >,
    lastFallback: null as RouterStatus["fallbacks"]["last"],
  };

  #closing: Promise<void> | undefined;

  /** Closes the replicas the router was given (see `$close`). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const results = await Promise.allSettled(
        this.originals.map(async (r) => {
          const close = (r as { close?: unknown }).close;
          if (typeof close === "function") await close.call(r);
        }),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
    return this.#closing;
  }

  assertOpen(): void {
    if (this.#closing) throw new RouterError("ROUTER_CLOSED", "the router is closed ($close)");
  }

  constructor(options: RouterOptions<TSchema>) {
    if (!options || typeof options !== "object") {
      throw new RouterError("ROUTER_INVALID_ARGUMENT", "createRouter needs options");
    }
    this.primary = checkPrimary(options.primary);
    if (!Array.isArray(options.replicas)) {
      throw new RouterError("ROUTER_INVALID_ARGUMENT", "replicas must be an array");
    }
    this.originals = [...options.replicas];
    const replicas = this.originals.map((r, i) => toRouterReplica(r, `replicas[${i}]`));
    for (const r of replicas) {
      if (r.status().pinned) {
        throw new RouterError(
          "ROUTER_INVALID_ARGUMENT",
          `replica ${r.name} is pinned to a past state (time travel); routers need live replicas`,
        );
      }
    }
    this.maxLagSeconds = positiveNumber(options.maxLagSeconds, 60, "maxLagSeconds");
    const ryw = options.readYourWrites ?? true;
    this.ryw = ryw !== false;
    const assume = positiveNumber(
      typeof ryw === "object" ? ryw.assumePublishedWithinMs : undefined,
      10_000,
      "readYourWrites.assumePublishedWithinMs",
    );
    this.now = options.clock ?? Date.now;
    this.assumePublishedWithinMs = assume;
    this.selector = new ReplicaSelector(replicas, {
      maxLagSeconds: this.maxLagSeconds,
      tieSeconds: positiveNumber(options.tieSeconds, 1, "tieSeconds"),
      retryAfterMs: positiveNumber(options.retryReplicaAfterMs, 2000, "retryReplicaAfterMs"),
      pollKickMs: positiveNumber(options.pollKickMs, 200, "pollKickMs"),
      assumePublishedWithinMs: assume,
      now: this.now,
    });
    this.context =
      options.context === null ? undefined : (options.context ?? getDefaultSessionContext());
    this.schema = options.schema;
    this.drizzle = options.drizzle;
    this.timeTravel = options.timeTravel;
    this.cache = options.cache ? routerCache(options.cache) : undefined;
  }

  // ---- sessions ----

  session(binding: Binding): RouterSession {
    const current = this.context?.current();
    if (current && (!binding.base || current.root === binding.base)) return current;
    return binding.base ?? this.defaultSession;
  }

  /** A session resuming a bookmark; pending positions start resolving at once. */
  newSession(bookmark: string | null | undefined): RouterSession {
    const session = RouterSession.fromBookmark(bookmark);
    const after = session.requirement.after;
    if (after) this.#resolve(session, after);
    return session;
  }

  // ---- statements ----

  async execute(
    binding: Binding,
    sql: string,
    params: unknown[],
    method: StatementMethod,
  ): Promise<ProxyResult> {
    this.assertOpen();
    const session = this.session(binding);
    const cls = classifyStatement(sql);
    // A `run` result is the primary connection's state (changes, last rowid).
    if (binding.mode === "route" && cls.readOnly && method !== "run") {
      // Statements issued earlier in this session take effect first, as on one connection.
      const earlier = session.inFlight;
      if (earlier) await earlier;
      if (!session.tx.open && this.gate.owner !== session) {
        const rows = await this.#routeRead(session, cls, sql, params, method);
        if (rows) return rows;
      }
    }
    const done = this.#onPrimary(
      session,
      [cls],
      () => this.#primaryStatement(sql, params, method).then((r) => proxyResult(method, r)),
      cls.transaction,
    );
    if (!cls.readOnly) session.issued(done);
    return done;
  }

  async batch(binding: Binding, statements: Statement[]): Promise<ProxyResult[]> {
    this.assertOpen();
    const session = this.session(binding);
    this.counts.batches++;
    const classes = statements.map((s) => classifyStatement(s.sql));
    // A batch is one atomic unit on the primary, whatever it holds.
    const done = this.#onPrimary(session, classes, async () => {
      const results = await this.primary.batch(statements);
      return results.map((r, i) => proxyResult(statements[i]!.method, r));
    });
    if (classes.some((c) => !c.readOnly)) session.issued(done);
    return done;
  }

  /** A `$replica` read: the best replica regardless of read-your-writes. */
  async replicaRead(
    sql: string,
    params: readonly unknown[],
    method: StatementMethod,
  ): Promise<{ rows: unknown }> {
    this.assertOpen();
    const entry = this.selector.chooseAny();
    if (!entry) throw new RouterError("ROUTER_NO_REPLICA", "no replica has loaded a version yet");
    entry.reads++;
    this.counts.replicaReads++;
    const cacheable = this.#holdsEveryWrite(entry);
    const start = this.cache?.writes ?? 0;
    const rows = await readRows(entry.replica, sql, params, method, this.primary.valueTypes?.());
    return this.#cacheVerdict({ rows }, cacheable, start);
  }

  async replicaBatch(statements: readonly Statement[]): Promise<unknown[]> {
    this.assertOpen();
    const entry = this.selector.chooseAny();
    if (!entry) throw new RouterError("ROUTER_NO_REPLICA", "no replica has loaded a version yet");
    entry.reads += statements.length;
    this.counts.replicaReads += statements.length;
    const r = entry.replica;
    const types = this.primary.valueTypes?.();
    return r.snapshot
      ? r.snapshot((tx) => readSequentially(tx, statements, types))
      : readSequentially(r, statements, types);
  }

  /**
   * A replica's answer, marked for the cache: not stored when the replica
   * lacked a write made through the router, nor when a write was issued
   * after the read started (`start`: the cache's write count then).
   */
  #cacheVerdict<T extends object>(result: T, cacheable: boolean, start: number): T {
    const cache = this.cache;
    if (!cache) return result;
    return cacheable ? cache.readSince(result, start) : cache.uncacheable(result);
  }

  /** Whether `entry` holds every write made through the router (always true without a cache). */
  #holdsEveryWrite(entry: ReplicaEntry): boolean {
    if (!this.cache) return true;
    const st = entry.replica.status();
    return replicaSatisfies(this.written, {
      txid: st.txid,
      lagSeconds: st.lagSeconds,
      now: this.now(),
      assumePublishedWithinMs: this.assumePublishedWithinMs,
    });
  }

  async #routeRead(
    session: RouterSession,
    cls: StatementClass,
    sql: string,
    params: unknown[],
    method: StatementMethod,
  ): Promise<ProxyResult | undefined> {
    if (this.primaryState.needsPrimary(cls)) {
      this.#fallback("primary-only", undefined);
      return undefined;
    }
    const choice = this.selector.choose(this.ryw ? session.requirement : undefined);
    if ("reason" in choice) {
      this.#fallback(choice.reason, undefined);
      return undefined;
    }
    const entry = choice.entry;
    const cacheable = this.#holdsEveryWrite(entry);
    const start = this.cache?.writes ?? 0;
    try {
      const rows = await readRows(entry.replica, sql, params, method, this.primary.valueTypes?.());
      entry.reads++;
      this.counts.replicaReads++;
      return this.#cacheVerdict({ rows }, cacheable, start);
    } catch (err) {
      const failure = classifyReplicaFailure(err);
      if (failure === "sql") throw err;
      if (failure === "connection") this.selector.failed(entry, err);
      this.#fallback(
        failure === "connection"
          ? "replica-error"
          : failure === "missing"
            ? "replica-missing-object"
            : "replica-read-only",
        entry,
      );
      return undefined;
    }
  }

  #fallback(reason: FallbackReason, entry: ReplicaEntry | undefined): void {
    this.counts.fallbacks[reason]++;
    this.counts.lastFallback = {
      reason,
      replica: entry?.replica.name,
      at: new Date(this.now()),
    };
  }

  async #primaryStatement(
    sql: string,
    params: readonly unknown[],
    method: StatementMethod,
  ): Promise<StatementResult> {
    switch (method) {
      case "run":
        return this.primary.run(sql, params);
      case "get":
        return this.primary.get(sql, params);
      default:
        return this.primary.all(sql, params);
    }
  }

  /**
   * Runs `work` (one statement, or a batch of them) on the primary for
   * `session`: waits while another session's transaction is open, takes the
   * gate when the statement opens one (`effect`), and afterwards updates the
   * transaction state, read-your-writes position and what exists only on the
   * primary.
   */
  async #onPrimary<T>(
    session: RouterSession,
    classes: readonly StatementClass[],
    work: () => Promise<T>,
    effect?: TransactionEffect,
  ): Promise<T> {
    const opens = effect?.op === "begin" || (effect?.op === "savepoint" && !session.tx.open);
    const owner = this.gate.owner;
    if (owner !== undefined && owner !== session && this.context?.current() === owner) {
      // Another session's statement inside this transaction (a `$session`
      // database used in it) would wait for the transaction itself, forever.
      throw new RouterError(
        "ROUTER_NESTED_SESSION",
        "a statement of another session was issued inside an open transaction, which it would wait for: " +
          "use the transaction's `tx` (or run it after the transaction)",
      );
    }
    await this.gate.enter(session, opens);
    if (opens) this.counts.transactions++;
    const readOnly = classes.every((c) => c.readOnly);
    const write = !readOnly && classes.some((c) => c.kind !== "transaction");
    if (readOnly) this.counts.primaryReads++;
    else if (write) {
      this.counts.writes++;
      this.cache?.writeIssued();
    }
    const schema = classes.some(changesSchema);
    if (schema && session.tx.open) session.tx.ddl = true;
    // A rollback may undo temp objects created in the transaction.
    const undo = (effect?.op === "rollback" || effect?.op === "rollback-to") && session.tx.ddl;
    let ok = false;
    try {
      const result = await work();
      ok = true;
      return result;
    } finally {
      if (schema || undo) await this.primaryState.refresh(this.primary);
      this.#afterPrimary(session, effect, write, ok);
    }
  }

  #afterPrimary(
    session: RouterSession,
    effect: TransactionEffect | undefined,
    write: boolean,
    ok: boolean,
  ): void {
    const tx = session.tx;
    if (effect && ok) {
      switch (effect.op) {
        case "begin":
          tx.open = true;
          tx.openedBy = undefined;
          break;
        case "savepoint":
          if (!tx.open) {
            tx.open = true;
            tx.openedBy = effect.name;
          }
          break;
        case "release":
          if (tx.openedBy === effect.name) tx.open = false;
          break;
        case "commit":
        case "rollback":
          tx.open = false;
          break;
        case "rollback-to":
          break;
      }
    }
    // The connection knows best (e.g. SQLite rolled back on an error), for the
    // session holding the gate or free to take it.
    const owner = this.gate.owner;
    if (this.primary.inTransaction && (owner === undefined || owner === session)) {
      tx.open = this.primary.inTransaction();
      if (tx.open) this.gate.holdIfFree(session);
    }
    // A failed statement may still have done part of its work (several statements in one string).
    if (write) tx.dirty = true;
    if (!tx.open) {
      if (tx.dirty) {
        tx.dirty = false;
        this.#mark(session);
      }
      tx.ddl = false;
      tx.openedBy = undefined;
      this.gate.release(session);
    }
  }

  /** Records the position of a write that just committed (for read-your-writes and the cache). */
  #mark(session: RouterSession): void {
    if (!this.ryw && !this.cache) return;
    const position: WritePosition = this.primary.position?.() ?? { at: this.now() };
    if (this.ryw) session.addPosition(position);
    if (this.cache) addPosition(this.written, position);
    if (position.txid === undefined && position.after !== undefined)
      this.#resolve(session, position);
  }

  /**
   * Resolves `position` to an exact TXID. One resolution per session is in
   * flight at a time: positions arriving meanwhile wait, and only the newest
   * is resolved next (its TXID covers the older ones).
   */
  #resolve(session: RouterSession, position: WritePosition): void {
    if (!this.primary.resolvePosition) return;
    if (session.startResolution(position)) this.#resolveNow(session, position);
  }

  #resolveNow(session: RouterSession, position: WritePosition): void {
    let resolving: Promise<number | undefined>;
    try {
      // Called at once: a position the primary already knows resolves in one hop,
      // before a read that follows a bookmark's resumption is routed.
      resolving = this.primary.resolvePosition!(position);
    } catch (err) {
      resolving = Promise.reject(err);
    }
    resolving
      .then(
        (txid) => {
          if (txid === undefined) return;
          if (this.ryw) session.resolved(position, txid);
          if (this.cache) resolveRequirement(this.written, position, txid);
          // Published: replicas may fetch it now rather than at their next kick.
          this.selector.wake(txid);
        },
        () => {
          // Unresolved: the safe bound (after + AFTER_BOUND) stays.
        },
      )
      .then(() => {
        const next = session.resolutionDone();
        if (next) this.#resolveNow(session, next);
      });
  }

  // ---- figures ----

  status(): RouterStatus {
    const now = this.now();
    const reasons = { ...this.counts.fallbacks };
    return {
      kind: "router",
      maxLagSeconds: this.maxLagSeconds,
      replicas: this.selector.entries.map((e) => ({
        name: e.replica.name,
        status: e.replica.status() as RouterReplicaStatus["status"],
        reads: e.reads,
        errors: e.errors,
        coolingDown: now < e.coolUntil,
        lastError: e.lastError ? { ...e.lastError } : null,
      })),
      reads: { primary: this.counts.primaryReads, replicas: this.counts.replicaReads },
      writes: this.counts.writes,
      batches: this.counts.batches,
      transactions: this.counts.transactions,
      fallbacks: {
        total: Object.values(reasons).reduce((a, b) => a + b, 0),
        reasons,
        last: this.counts.lastFallback ? { ...this.counts.lastFallback } : null,
      },
    };
  }

  valueTypes(): ValueTypes | undefined {
    return this.primary.valueTypes?.();
  }

  primaryBatch(statements: Statement[]): Promise<unknown[]> {
    return this.batch({ base: undefined, mode: "primary" }, statements);
  }

  pinSource(): ReplicaLike | RouterReplica | undefined {
    const choice = this.selector.choose(undefined);
    const index = "entry" in choice ? choice.entry.index : 0;
    return this.originals[index];
  }

  // ---- databases ----

  /**
   * Drizzle settings of every database of the router. `logger: true` becomes
   * a DefaultLogger: sqlite-proxy's `drizzle()` drops the cache otherwise.
   */
  drizzleConfig() {
    const { logger, ...rest } = this.drizzle ?? {};
    return {
      ...rest,
      ...(logger === true
        ? { logger: new (drizzleRuntime().DefaultLogger)() }
        : logger
          ? { logger }
          : {}),
      ...(this.schema ? { schema: this.schema } : {}),
      ...(this.cache ? { cache: this.cache } : {}),
    };
  }

  /** A Drizzle database whose statements run for `binding` (transactions as Drizzle runs them). */
  #drizzleDatabase(binding: Binding): SqliteRemoteDatabase<TSchema> {
    return drizzleRuntime().drizzle<TSchema>(
      (sql, params, method) =>
        this.execute(binding, sql, params, method) as Promise<{ rows: unknown[] }>,
      (batch) => this.batch(binding, batch as Statement[]) as Promise<{ rows: unknown[] }[]>,
      this.drizzleConfig(),
    );
  }

  database(binding: Binding): SqliteRemoteDatabase<TSchema> {
    const db = this.#drizzleDatabase(binding);
    type Transaction = typeof db.transaction;
    const context = this.context;
    db.transaction = ((fn: Parameters<Transaction>[0], config?: Parameters<Transaction>[1]) => {
      const current = this.session(binding);
      // Called inside a transaction of this session (a helper with its own
      // transaction): a savepoint of it, as better-sqlite3 nests them. Waiting
      // for the gate would wait for the outer transaction itself.
      const outer = current.tx.open
        ? (current.drizzleTransaction as { transaction: Transaction } | undefined)
        : undefined;
      if (outer) return outer.transaction(fn, config);
      // Each transaction gets its own session, bound to its statements, so
      // the primary gate tells them from those of concurrent requests, with
      // or without an async context (without one, every request shares the
      // default session).
      const child = current.child();
      const own = this.#drizzleDatabase({ base: child, mode: binding.mode });
      const run = () =>
        own.transaction((tx) => {
          child.drizzleTransaction = tx;
          return fn(tx);
        }, config);
      return context ? context.run(child, run) : run();
    }) as Transaction;
    return db;
  }

  readOnly(): ReadonlyDatabase<TSchema> {
    return readOnlyDrizzle<TSchema>(
      {
        read: async (sql, params, method) => (await this.replicaRead(sql, params, method)).rows,
        readResult: (sql, params, method) => this.replicaRead(sql, params, method),
        readBatch: (statements) => this.replicaBatch(statements),
        refuse: (sql, cls) =>
          new RouterError(
            "ROUTER_READ_ONLY",
            `$replica is read-only: refused ${describeStatement(sql, cls)}`,
          ),
      },
      this.drizzleConfig(),
    );
  }
}

/**
 * Creates the routed Drizzle database. Reads (selects, relational queries,
 * `$count`, read-only raw SQL) go to the healthiest replica that holds the
 * session's writes; everything else, and every read when no replica
 * qualifies, goes to the primary.
 */
export function createRouter<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: RouterOptions<TSchema>,
): RouterDatabase<TSchema> {
  const router = new Router<TSchema>(options);
  const rootBinding: Binding = { base: undefined, mode: "route" };
  const db = router.database(rootBinding) as RouterDatabase<TSchema>;
  const replicaDb = router.readOnly();
  const primaryDb = router.database({ base: undefined, mode: "primary" });

  const metricsSource = {
    [WRITE_METRICS]: (out: MetricsText, labels: MetricLabels) =>
      writeRouterMetrics(out, router.status(), labels),
  };

  const sessionDb = (session: RouterSession): SessionDatabase<TSchema> => {
    const sdb = router.database({ base: session, mode: "route" }) as SessionDatabase<TSchema>;
    const sprimary = router.database({ base: session, mode: "primary" });
    Object.defineProperties(sdb, {
      $bookmark: { value: () => session.bookmark() },
      $primary: { value: sprimary },
      $replica: { value: replicaDb },
    });
    return sdb;
  };

  Object.defineProperties(db, {
    [ROUTER]: { value: router },
    $primary: { value: primaryDb },
    $replica: { value: replicaDb },
    $session: { value: (bookmark?: string | null) => sessionDb(router.newSession(bookmark)) },
    $withSession: {
      value: <T>(fn: () => T, bookmark?: string | null): WithSessionResult<T> => {
        const context = router.context;
        if (!context) {
          throw new RouterError(
            "ROUTER_NO_CONTEXT",
            "$withSession needs an async context (import pagecast/node, or pass `context`); " +
              "elsewhere use $session(bookmark)",
          );
        }
        // Inside a transaction its statements run in it: another session's
        // would wait for the transaction itself.
        const current = context.current();
        if (current?.tx.open) return fn() as WithSessionResult<T>;
        return context.run(router.newSession(bookmark), () => {
          const result = fn();
          // Drizzle queries are lazy thenables: run them while the session is current.
          return (isThenable(result) ? Promise.resolve(result) : result) as WithSessionResult<T>;
        });
      },
    },
    $bookmark: { value: () => router.session(rootBinding).bookmark() },
    $status: { value: () => router.status() },
    $metrics: { value: (options?: MetricsOptions) => metricsText(metricsSource, options) },
    [WRITE_METRICS]: { value: metricsSource[WRITE_METRICS] },
    $close: { value: () => router.close() },
    [Symbol.asyncDispose]: { value: () => router.close() },
  });
  return db;
}
