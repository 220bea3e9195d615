/**
 * Read-only Drizzle databases: over one replica (`drizzleReplica`), and the
 * building block of `$replica` and time travel. Writing is impossible twice
 * over: the type has no insert/update/delete/run/transaction/batch, and any
 * statement that is not proven read-only is refused before it reaches the
 * replica (which would refuse it too: replicas are read-only files).
 */
import type { DrizzleConfig, WithSubquery } from "drizzle-orm";
import type { Cache } from "drizzle-orm/cache/core";
import type { SqliteRemoteDatabase } from "drizzle-orm/sqlite-proxy";
import type { ReadConnection, Statement, StatementMethod, ValueTypes } from "./connection.js";
import { drizzleRuntime } from "./drizzle-runtime.js";
import { type ReplicaLike, replicaAdapter } from "./replica-adapter.js";
import { RouterError } from "./router-error.js";
import { classifyStatement, type StatementClass } from "./statement-classifier.js";
import { conformRow, conformRows, readOptions } from "./value-types.js";

/** Members of a Drizzle database that write or open transactions. */
export type WritingMembers =
  | "insert"
  | "update"
  | "delete"
  | "run"
  | "transaction"
  | "batch"
  | "with";

/** A Drizzle database that can only read. */
export type ReadonlyDatabase<TSchema extends Record<string, unknown> = Record<string, never>> =
  Omit<SqliteRemoteDatabase<TSchema>, WritingMembers> & {
    /** Incorporates CTEs into a select (the writing forms are not available). */
    with(
      ...queries: WithSubquery[]
    ): Pick<ReturnType<SqliteRemoteDatabase<TSchema>["with"]>, "select" | "selectDistinct">;
  };

/** Drizzle settings passed through (schema for relational queries, logger, casing). */
export type DrizzleOptions<TSchema extends Record<string, unknown>> = Pick<
  DrizzleConfig<TSchema>,
  "schema" | "logger" | "casing"
>;

/** Where a read-only database's statements go. */
export interface ReadOnlyBackend {
  /** Runs one read. */
  read(sql: string, params: readonly unknown[], method: StatementMethod): Promise<unknown>;
  /** Like `read`, but returns the sqlite-proxy result itself (`{ rows }`); used when present. */
  readResult?(
    sql: string,
    params: readonly unknown[],
    method: StatementMethod,
  ): Promise<{ rows: unknown }>;
  /** Runs reads on one consistent version, when the backend can. */
  readBatch(statements: readonly Statement[]): Promise<unknown[]>;
  /** The error for a statement that may write. */
  refuse(sql: string, cls: StatementClass): Error;
}

/**
 * `rows` as sqlite-proxy wants them for `method`, with the JS types `types`
 * names (a router's primary driver's) when given.
 */
export async function readRows(
  conn: ReadConnection,
  sql: string,
  params: readonly unknown[],
  method: StatementMethod,
  types?: ValueTypes,
): Promise<unknown> {
  const options = readOptions(types);
  if (method === "get") {
    const row = await conn.get(sql, params, options);
    return types && row ? conformRow(row, types) : row;
  }
  const rows = await conn.all(sql, params, options);
  if (method === "run") return [];
  return types ? conformRows(rows, types) : rows;
}

/** Runs reads one after another on one connection (a connection runs one statement at a time). */
export async function readSequentially(
  conn: ReadConnection,
  statements: readonly Statement[],
  types?: ValueTypes,
): Promise<unknown[]> {
  const results: unknown[] = [];
  for (const s of statements) results.push(await readRows(conn, s.sql, s.params, s.method, types));
  return results;
}

/** Builds a sqlite-proxy database whose every statement must be read-only. */
export function readOnlyDrizzle<TSchema extends Record<string, unknown>>(
  backend: ReadOnlyBackend,
  options: DrizzleOptions<TSchema> & { cache?: Cache } = {},
): ReadonlyDatabase<TSchema> {
  const check = (sql: string) => {
    const cls = classifyStatement(sql);
    if (!cls.readOnly) throw backend.refuse(sql, cls);
  };
  const db = drizzleRuntime().drizzle<TSchema>(
    async (sql, params, method) => {
      check(sql);
      if (backend.readResult) {
        return (await backend.readResult(sql, params, method)) as { rows: unknown[] };
      }
      return { rows: (await backend.read(sql, params, method)) as unknown[] };
    },
    async (batch) => {
      for (const s of batch) check(s.sql);
      const results = await backend.readBatch(batch);
      return results.map((rows) => ({ rows: rows as unknown[] }));
    },
    options,
  );
  return db as unknown as ReadonlyDatabase<TSchema>;
}

/** A short description of a refused statement (never its parameters). */
export function describeStatement(sql: string, cls: StatementClass): string {
  const text = sql.replace(/\s+/g, " ").trim();
  return `${cls.kind} statement ${JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text)}`;
}

/**
 * A read-only Drizzle database over one replica (e.g. in a Worker, where the
 * writer lives elsewhere). Batches run in one read transaction: one version.
 */
export function drizzleReplica<TSchema extends Record<string, unknown> = Record<string, never>>(
  replica: ReplicaLike,
  options: DrizzleOptions<TSchema> = {},
): ReadonlyDatabase<TSchema> {
  const conn = replicaAdapter(replica);
  return readOnlyDrizzle<TSchema>(
    {
      read: (sql, params, method) => readRows(conn, sql, params, method),
      readBatch: (statements) => conn.snapshot!((tx) => readSequentially(tx, statements)),
      refuse: (sql, cls) =>
        new RouterError(
          "ROUTER_READ_ONLY",
          `a replica is read-only: refused ${describeStatement(sql, cls)}`,
        ),
    },
    options,
  );
}
