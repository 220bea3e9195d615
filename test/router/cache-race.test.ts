/**
 * The query cache and a replica read that straddles a write (review by a
 * helper): whether a replica's answer may be stored was decided before the
 * read ran. A read started before a write, answered after Drizzle's
 * invalidation, was stored, and the writer then got its pre-write rows from
 * the cache until the next write to the table. Answers read while a write
 * was issued are no longer stored.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import type { MutationOption } from "drizzle-orm/cache/core";
import { Cache } from "drizzle-orm/cache/core";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterEach, expect, test } from "vitest";
import { openReplica } from "../../src/index.node.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { createRouter } from "../../src/router/router.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetOptions, GetResult } from "../../src/storage/object-store.js";
import { tempDir } from "../replicator/helpers.js";

const t = sqliteTable("t", { id: integer("id").primaryKey(), v: text("v") });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drizzle's "all" strategy over a Map, invalidated by table. */
class MapCache extends Cache {
  readonly entries = new Map<string, unknown>();
  readonly byTable = new Map<string, Set<string>>();
  hits = 0;
  override strategy(): "all" {
    return "all";
  }
  override async get(key: string): Promise<unknown[] | undefined> {
    const hit = this.entries.get(key) as unknown[] | undefined;
    if (hit) this.hits++;
    return hit;
  }
  override async put(key: string, response: unknown, tables: string[]): Promise<void> {
    this.entries.set(key, response);
    for (const name of tables)
      this.byTable.set(name, (this.byTable.get(name) ?? new Set()).add(key));
  }
  override async onMutate(params: MutationOption): Promise<void> {
    const tables = ([] as unknown[]).concat(params.tables ?? []);
    for (const tb of tables) {
      const name =
        typeof tb === "string" ? tb : (tb as Record<symbol, string>)[Symbol.for("drizzle:Name")]!;
      for (const k of this.byTable.get(name) ?? []) this.entries.delete(k);
      this.byTable.delete(name);
    }
  }
}

/** S3 latency on the replica's reads, when on. */
class SlowStore extends MemoryStore {
  slow = false;
  constructor(readonly inner: MemoryStore) {
    super();
  }
  override async get(key: string, options?: GetOptions): Promise<GetResult> {
    if (this.slow) await sleep(20);
    return this.inner.get(key, options);
  }
  override list(...args: Parameters<MemoryStore["list"]>) {
    return this.inner.list(...args);
  }
}

test("a replica's answer read while a write was issued is not cached", async () => {
  const { dir, cleanup } = tempDir("pagecast-cache-race-");
  cleanups.push(cleanup);
  const path = join(dir, "primary.db");
  const sqlite = new Database(path);
  cleanups.push(() => sqlite.close());
  sqlite.pragma("journal_mode = wal");
  sqlite.exec(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);" +
      "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 3000) " +
      "INSERT INTO t (v) SELECT hex(randomblob(50)) FROM s",
  );
  const inner = new MemoryStore();
  const replicator = await Replicator.start({
    db: path,
    store: inner,
    syncInterval: 0,
    compaction: false,
  });
  cleanups.push(() => replicator.close());
  const store = new SlowStore(inner);
  const replica = await openReplica({
    store,
    pollIntervalMs: 10_000,
    cacheBytes: 65536,
    readAheadPages: 0,
  });
  const cache = new MapCache();
  const db = createRouter({
    primary: betterSqlitePrimary(sqlite, { replicator }),
    replicas: [replica],
    schema: { t },
    cache,
    context: asyncSessionContext(),
  });
  cleanups.push(() => db.$close());

  store.slow = true;
  // Request B's read starts; request A writes meanwhile, then reads.
  const b = db.$withSession(() => db.select().from(t));
  await sleep(20);
  const rowsA = await db.$withSession(async () => {
    await db.insert(t).values({ v: "A wrote this" });
    expect((await b).length).toBe(3000);
    return db.select().from(t);
  });
  expect(rowsA.some((r) => r.v === "A wrote this")).toBe(true);
  // Nor is anyone served B's answer from the cache later.
  const later = await db.$withSession(() => db.select().from(t));
  expect(later.length).toBe(3001);
});
