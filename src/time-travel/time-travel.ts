/**
 * `timeTravel(db, when)`: a read-only Drizzle database pinned at a past
 * moment of a router's (or a replica's) database. Pinning plans the newest
 * snapshot at or before the moment plus covering files, exactly as a restore
 * to that moment would, and never polls. The past database derives from the
 * live replica: same store, same page cache (immutable LTX ranges are the
 * same bytes at any version), no second store opened by URL; closing it
 * leaves the live replica untouched. From a router it answers with the
 * primary driver's JS types, as the router does.
 */
import type { SqliteRemoteDatabase } from "drizzle-orm/sqlite-proxy";
import type { ValueTypes } from "../router/connection.js";
import {
  type DrizzleOptions,
  describeStatement,
  type ReadonlyDatabase,
  readOnlyDrizzle,
  readRows,
  readSequentially,
} from "../router/read-only-database.js";
import { replicaAdapter } from "../router/replica-adapter.js";
import { routerInternals } from "../router/router.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openReplica } from "../vfs/open-replica.js";
import type { Replica, ReplicaOptions } from "../vfs/replica.js";
import { TimeTravelError } from "./time-travel-error.js";
import { parseWhen, type When } from "./when.js";

/** Options of {@link timeTravel}. */
export interface TimeTravelOptions<TSchema extends Record<string, unknown> = Record<string, never>>
  extends DrizzleOptions<TSchema> {
  /**
   * The store holding the replica's files. Default: the router's
   * `timeTravel.store`, else the live replica's own store (and page cache);
   * a replica that cannot be derived from (another implementation) is
   * reopened from its URL (with `replicaOptions.storeOptions`).
   */
  store?: ObjectStore;
  /** Options of the pinned replica (`wasm` in Workers, `storeOptions`, `cacheBytes`...). */
  replicaOptions?: Omit<ReplicaOptions, "at">;
  /** Milliseconds clock for relative times and the future check (default `Date.now`). */
  clock?: () => number;
}

/** A read-only database showing one past state. Close it (or use `await using`). */
export type PastDatabase<TSchema extends Record<string, unknown> = Record<string, never>> =
  ReadonlyDatabase<TSchema> & {
    /** The state shown: its TXID and commit time. */
    readonly $at: { txid: number; commitTime: Date | null };
    /** The pinned replica (status, raw queries). */
    readonly $replica: Replica;
    /** Closes the pinned replica. Idempotent. */
    close(): Promise<void>;
    [Symbol.asyncDispose](): Promise<void>;
  };

/** What time travel can start from: a router, or a replica from `openReplica`. */
export type TimeTravelSource = object;

/** The Drizzle schema of a router database (none for a replica). */
export type SchemaOf<S> = S extends SqliteRemoteDatabase<infer T> ? T : Record<string, never>;

/** A replica that can open pinned replicas sharing its store and page cache (`Replica.pinned`). */
interface Pinnable {
  pinned(at: ReplicaOptions["at"], options?: Omit<ReplicaOptions, "at">): Promise<Replica>;
}

function isPinnable(v: unknown): v is Pinnable {
  return typeof (v as Partial<Pinnable> | null)?.pinned === "function";
}

interface Resolved {
  url: string | undefined;
  store: ObjectStore | undefined;
  /** The live replica to derive the past from (no `store` given). */
  live: Pinnable | undefined;
  replicaOptions: Omit<ReplicaOptions, "at">;
  drizzle: DrizzleOptions<Record<string, unknown>>;
  /** The router's primary driver's JS types (none for a replica). */
  valueTypes: ValueTypes | undefined;
}

function resolveSource(
  source: TimeTravelSource,
  options: TimeTravelOptions<Record<string, unknown>>,
): Resolved {
  const drizzle: DrizzleOptions<Record<string, unknown>> = {};
  const router = routerInternals(source);
  let target: unknown = source;
  let store = options.store;
  let replicaOptions: Omit<ReplicaOptions, "at"> = {};
  if (router) {
    target = router.pinSource();
    store ??= router.timeTravel?.store;
    replicaOptions = { ...router.timeTravel?.replicaOptions };
    if (router.schema) drizzle.schema = router.schema;
    Object.assign(drizzle, router.drizzle);
  }
  const url = (target as { url?: unknown } | null)?.url;
  const live = !store && isPinnable(target) ? target : undefined;
  if (!store && !live && typeof url !== "string") {
    throw new TimeTravelError(
      "TIME_TRAVEL_INVALID_SOURCE",
      router
        ? "the router's replicas have no URL to plan time travel on: pass `store`"
        : "timeTravel needs a router (createRouter) or a replica (openReplica)",
    );
  }
  if (options.schema) drizzle.schema = options.schema;
  if (options.logger !== undefined) drizzle.logger = options.logger;
  if (options.casing !== undefined) drizzle.casing = options.casing;
  return {
    url: typeof url === "string" ? url : undefined,
    store,
    live,
    replicaOptions: { ...replicaOptions, ...options.replicaOptions },
    drizzle,
    valueTypes: router?.valueTypes(),
  };
}

function unavailable(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "RESTORE_TARGET_UNAVAILABLE") {
    return new TimeTravelError("TIME_TRAVEL_UNAVAILABLE", (err as Error).message, { cause: err });
  }
  if (code === "REPLICA_EMPTY") {
    return new TimeTravelError(
      "TIME_TRAVEL_UNAVAILABLE",
      `${(err as Error).message} (a replica over a private store needs \`store\` for time travel)`,
      { cause: err },
    );
  }
  return err;
}

async function openPast<TSchema extends Record<string, unknown>>(
  source: TimeTravelSource,
  when: When,
  options: TimeTravelOptions<TSchema>,
): Promise<PastDatabase<TSchema>> {
  const now = (options.clock ?? Date.now)();
  const parsed = parseWhen(when, now);
  const src = resolveSource(source, options as TimeTravelOptions<Record<string, unknown>>);
  const at = "txid" in parsed ? { txid: parsed.txid } : new Date(parsed.timestamp);
  let replica: Replica;
  try {
    replica = src.live
      ? await src.live.pinned(at, src.replicaOptions)
      : src.store
        ? await openReplica({ ...src.replicaOptions, store: src.store, closeStore: false, at })
        : await openReplica(src.url!, { ...src.replicaOptions, at });
  } catch (err) {
    throw unavailable(err);
  }
  const conn = replicaAdapter(replica);
  const types = src.valueTypes;
  const db = readOnlyDrizzle<TSchema>(
    {
      read: (sql, params, method) => readRows(conn, sql, params, method, types),
      // A pinned replica has one version: any connection is consistent.
      readBatch: (statements) => readSequentially(conn, statements, types),
      refuse: (sql, cls) =>
        new TimeTravelError(
          "TIME_TRAVEL_READ_ONLY",
          `the past is read-only: refused ${describeStatement(sql, cls)}`,
        ),
    },
    src.drizzle as DrizzleOptions<TSchema>,
  );
  const st = replica.status();
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= replica.close();
    return closed;
  };
  Object.defineProperties(db, {
    $at: { value: Object.freeze({ txid: st.txid ?? 0, commitTime: st.commitTime }) },
    $replica: { value: replica },
    close: { value: close },
  });
  const dispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
  if (dispose) Object.defineProperty(db, dispose, { value: close });
  return db as PastDatabase<TSchema>;
}

/**
 * Opens a read-only Drizzle database pinned at `when` ("24 hours ago",
 * "2025-01-31T12:00:00Z", a Date, epoch ms or `{ txid }`) of a router's or a
 * replica's database. Close it when done, or use the callback form, which
 * closes it after the callback settles.
 */
export function timeTravel<
  S extends TimeTravelSource,
  TSchema extends Record<string, unknown> = SchemaOf<S>,
>(source: S, when: When, options?: TimeTravelOptions<TSchema>): Promise<PastDatabase<TSchema>>;
export function timeTravel<S extends TimeTravelSource, T>(
  source: S,
  when: When,
  fn: (past: PastDatabase<SchemaOf<S>>) => Promise<T>,
): Promise<T>;
export function timeTravel<
  S extends TimeTravelSource,
  T,
  TSchema extends Record<string, unknown> = SchemaOf<S>,
>(
  source: S,
  when: When,
  options: TimeTravelOptions<TSchema>,
  fn: (past: PastDatabase<TSchema>) => Promise<T>,
): Promise<T>;
export async function timeTravel<T, TSchema extends Record<string, unknown>>(
  source: TimeTravelSource,
  when: When,
  optionsOrFn?: TimeTravelOptions<TSchema> | ((past: PastDatabase<TSchema>) => Promise<T>),
  maybeFn?: (past: PastDatabase<TSchema>) => Promise<T>,
): Promise<PastDatabase<TSchema> | T> {
  const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn;
  const options = typeof optionsOrFn === "object" && optionsOrFn !== null ? optionsOrFn : {};
  if (source === null || typeof source !== "object") {
    throw new TimeTravelError(
      "TIME_TRAVEL_INVALID_SOURCE",
      "timeTravel needs a router (createRouter) or a replica (openReplica)",
    );
  }
  const past = await openPast<TSchema>(source, when, options);
  if (!fn) return past;
  try {
    return await fn(past);
  } finally {
    await past.close();
  }
}
