/**
 * Read-your-writes with a Replicator in the process (review by a helper): a
 * write was taken to be in the writer's published TXID `after` + 2 at the
 * latest. But the Replicator captures on its own lane while an upload is in
 * flight: with `after + 1` uploading and another writer's commit captured
 * into the next buffer, that buffer is published as `after + 2` before the
 * session's write is captured, which then lands in `after + 3`. A replica at
 * `after + 2` was taken to hold the write, and the session read its own
 * write as missing.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { eq } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterEach, expect, test } from "vitest";
import { parseLtxKey } from "../../src/format/index.js";
import { openReplica } from "../../src/index.node.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { createRouter } from "../../src/router/router.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { PutOptions } from "../../src/storage/object-store.js";
import { tempDir } from "../replicator/helpers.js";

const t = sqliteTable("t", { id: integer("id").primaryKey(), v: text("v") });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Level-0 uploads whose TXID `held` matches wait for `release()` (a slow PUT). */
class GatedUploads extends MemoryStore {
  held: (txid: number) => boolean = () => false;
  #waiters: (() => void)[] = [];
  release(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const wake of w) wake();
  }
  override async put(key: string, body: Uint8Array, options?: PutOptions) {
    const p = parseLtxKey(key);
    if (p && p.level === 0 && this.held(p.maxTXID)) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return super.put(key, body, options);
  }
}

test("a session reads its own write although another commit was published between it and its TXID", async () => {
  const { dir, cleanup } = tempDir("pagecast-ryw-bound-");
  cleanups.push(cleanup);
  const path = join(dir, "primary.db");
  const sqlite = new Database(path);
  cleanups.push(() => sqlite.close());
  sqlite.pragma("journal_mode = wal");
  sqlite.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('seed')");
  const store = new GatedUploads();
  const replicator = await Replicator.start({
    db: path,
    store,
    syncInterval: 0,
    compaction: false,
  });
  const replica = await openReplica({ store, pollIntervalMs: 20 });
  const db = createRouter({
    primary: betterSqlitePrimary(sqlite, { replicator }),
    replicas: [replica],
    schema: { t },
    context: asyncSessionContext(),
  });
  cleanups.push(async () => {
    store.held = () => false;
    store.release();
    await db.$close();
    await replicator.close();
  });
  const A = replicator.position.txid;
  store.held = (txid) => txid === A + 1 || txid >= A + 3;
  // Another writer's commit uploads as A+1 (held), a second one is captured into the next buffer.
  sqlite.prepare("INSERT INTO t (v) VALUES ('x0')").run();
  const s1 = replicator.sync().catch(() => {});
  await sleep(50);
  sqlite.prepare("INSERT INTO t (v) VALUES ('x')").run();
  const s2 = replicator.sync().catch(() => {});
  await sleep(50);
  await db.$withSession(async () => {
    const [w] = await db.insert(t).values({ v: "W" }).returning();
    // A+1 lands; the same publish loop publishes A+2 = {x}; W is not captured yet (A+3, held).
    store.release();
    const t0 = Date.now();
    while ((replica.status().txid ?? 0) < A + 2 && Date.now() - t0 < 3000) {
      await replica.poll();
      await sleep(10);
    }
    expect(replica.status().txid).toBe(A + 2);
    const rows = await db.select().from(t).where(eq(t.id, w!.id));
    expect(rows).toEqual([{ id: w!.id, v: "W" }]);
  });
  store.held = () => false;
  store.release();
  await Promise.all([s1, s2]);
});

test("resolving a write's TXID keeps the bound of a later write committed in the same millisecond", async () => {
  const { dir, cleanup } = tempDir("pagecast-ryw-same-ms-");
  cleanups.push(cleanup);
  const sqlite = new Database(join(dir, "primary.db"));
  cleanups.push(() => sqlite.close());
  sqlite.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const base = betterSqlitePrimary(sqlite);
  // As ReplicatorPositions marks them: W1 while 5 was published, W2 (same ms) once 6 was.
  const positions = [
    { after: 5, at: 1_000_000, seq: 1 },
    { after: 6, at: 1_000_000, seq: 2 },
  ];
  const pending: ((txid: number) => void)[] = [];
  const primary = {
    ...base,
    inTransaction: () => base.inTransaction?.() ?? false,
    batch: base.batch?.bind(base),
    position: () => positions.shift()!,
    resolvePosition: () => new Promise<number | undefined>((resolve) => pending.push(resolve)),
  };
  const reads: string[] = [];
  const replica = {
    name: "stub",
    status: () => ({ txid: 7, lagSeconds: 0 }), // holds W1, not W2
    all: async (sql: string) => {
      reads.push(sql);
      return [];
    },
    get: async (sql: string) => {
      reads.push(sql);
      return undefined;
    },
  };
  const db = createRouter({
    primary: primary as never,
    replicas: [replica as never],
    schema: { t },
    context: asyncSessionContext(),
  });
  cleanups.push(() => db.$close());
  await db.$withSession(async () => {
    await db.insert(t).values({ v: "W1" });
    await db.insert(t).values({ v: "W2" });
    // W1 resolves, exactly, to TXID 7.
    pending.shift()!(7);
    await sleep(10);
    const rows = await db.select().from(t);
    expect(reads).toEqual([]);
    expect(rows.map((r) => r.v)).toEqual(["W1", "W2"]);
  });
});
