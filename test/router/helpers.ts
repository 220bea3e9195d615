/** Shared fixtures of the router tests: a schema, a primary file, controllable replicas. */
import { join } from "node:path";
import Database from "better-sqlite3";
import { relations } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { Replicator } from "../../src/replicator/replicator.js";
import type {
  PrimaryConnection,
  RouterReplica,
  Statement,
  StatementResult,
} from "../../src/router/connection.js";
import { createRouter, type RouterDatabase, type RouterOptions } from "../../src/router/router.js";
import type { SessionContext } from "../../src/router/router-session.js";
import type { WritePosition } from "../../src/router/write-position.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import type { Replica } from "../../src/vfs/replica.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { tempDir } from "../replicator/helpers.js";

export { tempDir };

export const users = sqliteTable("users", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
});

export const posts = sqliteTable("posts", {
  id: integer("id").primaryKey(),
  userId: integer("user_id")
    .notNull()
    .references(() => users.id),
  title: text("title").notNull(),
});

export const usersRelations = relations(users, ({ many }) => ({ posts: many(posts) }));
export const postsRelations = relations(posts, ({ one }) => ({
  author: one(users, { fields: [posts.userId], references: [users.id] }),
}));

export const schema = { users, posts, usersRelations, postsRelations };

export const SCHEMA_SQL = `
  CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
  CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), title TEXT NOT NULL);
  INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob');
  INSERT INTO posts (user_id, title) VALUES (1, 'hello'), (1, 'again'), (2, 'bob here');
`;

/** A WAL-mode database file with the test schema. */
export function primaryFile(dir: string, name = "primary.db"): Database.Database {
  const db = new Database(join(dir, name));
  db.pragma("journal_mode = wal");
  db.exec(SCHEMA_SQL);
  return db;
}

/**
 * A primary wrapper recording which SQL reached it (and batches), optionally
 * reporting positions.
 */
export class RecordingPrimary implements PrimaryConnection {
  sql: string[] = [];
  batches: Statement[][] = [];
  position?: () => WritePosition;
  resolvePosition?: (p: WritePosition) => Promise<number | undefined>;

  constructor(readonly inner: PrimaryConnection) {
    if (inner.position) this.position = () => inner.position!();
    if (inner.resolvePosition) this.resolvePosition = (p) => inner.resolvePosition!(p);
  }

  all(sql: string, params: readonly unknown[]) {
    this.sql.push(sql);
    return this.inner.all(sql, params);
  }
  get(sql: string, params: readonly unknown[]) {
    this.sql.push(sql);
    return this.inner.get(sql, params);
  }
  run(sql: string, params: readonly unknown[]) {
    this.sql.push(sql);
    return this.inner.run(sql, params);
  }
  batch(statements: readonly Statement[]): Promise<StatementResult[]> {
    this.batches.push([...statements]);
    return this.inner.batch(statements);
  }
  inTransaction(): boolean {
    return this.inner.inTransaction?.() ?? false;
  }
}

/**
 * A replica whose status the test sets, reading through its own read-only
 * connection to the primary file (so its data is always current: tests look
 * at where statements went, not at staleness).
 */
export class FakeReplica implements RouterReplica {
  readonly db: Database.Database;
  txid: number | null = 1;
  lagSeconds: number | null = 0;
  /** Thrown by the next reads while set. */
  fail: unknown;
  sql: string[] = [];
  polls = 0;

  constructor(
    readonly name: string,
    path: string,
  ) {
    this.db = new Database(path, { readonly: true });
  }

  status() {
    return { txid: this.txid, lagSeconds: this.lagSeconds };
  }

  async poll(): Promise<void> {
    this.polls++;
  }

  async all(sql: string, params: readonly unknown[]): Promise<unknown[][]> {
    this.sql.push(sql);
    if (this.fail !== undefined) throw this.fail;
    const stmt = this.db.prepare(sql);
    return stmt.raw(true).all(...params) as unknown[][];
  }

  async get(sql: string, params: readonly unknown[]): Promise<unknown[] | undefined> {
    return (await this.all(sql, params))[0];
  }

  close(): void {
    this.db.close();
  }
}

/** Registers a cleanup (run in reverse order after each test). */
export type Defer = (fn: () => unknown) => void;

/**
 * A WAL-mode primary with the test schema, a Replicator publishing it to a
 * memory store and `replicaCount` real replicas following it.
 */
export interface ReplicatedPrimary {
  dir: string;
  file: Database.Database;
  store: MemoryStore;
  replicator: Replicator;
  replicas: Replica[];
}

export async function replicatedPrimary(
  defer: Defer,
  options: { syncInterval: number; replicaCount?: number; pollIntervalMs?: number },
): Promise<ReplicatedPrimary> {
  const { dir, cleanup } = tempDir();
  defer(cleanup);
  const file = primaryFile(dir);
  defer(() => file.close());
  const store = new MemoryStore();
  const replicator = await Replicator.start({
    db: join(dir, "primary.db"),
    store,
    syncInterval: options.syncInterval,
    compaction: false,
  });
  defer(() => replicator.close());
  const replicas: Replica[] = [];
  for (let i = 0; i < (options.replicaCount ?? 2); i++) {
    const r = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: options.pollIntervalMs ?? 20,
    });
    defer(() => r.close());
    replicas.push(r);
  }
  return { dir, file, store, replicator, replicas };
}

/** Publishes everything committed so far and brings every replica up to it. */
export async function catchUp(env: { replicator: Replicator; replicas: Replica[] }): Promise<void> {
  const { txid } = await env.replicator.sync();
  for (const r of env.replicas) {
    while ((r.status().txid ?? 0) < txid) await r.poll();
  }
}

/** What {@link fakeReplicaRouter} makes. */
export interface FakeReplicaRouter {
  dir: string;
  db: RouterDatabase<typeof schema>;
  primary: RecordingPrimary;
  r1: FakeReplica;
  r2: FakeReplica;
  file: Database.Database;
  /** Statements that reached the primary and the replicas so far. */
  counts(): { primary: number; replicas: number };
}

/**
 * A router over a recording better-sqlite3 primary (`wrap` may change what it
 * reports) and two fake replicas reading the primary's file.
 */
export function fakeReplicaRouter(
  defer: Defer,
  context: SessionContext,
  options: Partial<RouterOptions<typeof schema>> & {
    wrap?: (p: PrimaryConnection) => PrimaryConnection;
  } = {},
): FakeReplicaRouter {
  const { dir, cleanup } = tempDir();
  defer(cleanup);
  const file = primaryFile(dir);
  defer(() => file.close());
  const base = betterSqlitePrimary(file);
  const primary = new RecordingPrimary(options.wrap ? options.wrap(base) : base);
  const r1 = new FakeReplica("r1", join(dir, "primary.db"));
  const r2 = new FakeReplica("r2", join(dir, "primary.db"));
  defer(() => r1.close());
  defer(() => r2.close());
  const { wrap: _w, ...rest } = options;
  const db = createRouter({ primary, replicas: [r1, r2], schema, context, ...rest });
  const counts = () => ({ primary: primary.sql.length, replicas: r1.sql.length + r2.sql.length });
  return { dir, db, primary, r1, r2, file, counts };
}

/** A position reporter for a primary: every write lands in TXID `next.txid`. */
export function exactPositions(next: { txid: number }) {
  return (p: PrimaryConnection): PrimaryConnection => ({
    ...p,
    inTransaction: () => p.inTransaction!(),
    batch: (s) => p.batch(s),
    position: (): WritePosition => ({ txid: next.txid, at: Date.now() }),
  });
}
