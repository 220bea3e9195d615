import { afterEach, describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetOptions, GetResult } from "../../src/storage/object-store.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import { primaryValues, RecordingStore, readSqliteWasm, ScriptedWriter } from "./helpers.js";

const open: Replica[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

async function setup(head = true) {
  const mem = new MemoryStore();
  const store = new RecordingStore(mem);
  const writer = new ScriptedWriter(mem, { head });
  await writer.commit(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n REAL, b BLOB); CREATE INDEX t_name ON t(name);",
  );
  await writer.commit(() => {
    const ins = writer.db.prepare("INSERT INTO t (name, n, b) VALUES (?, ?, ?)");
    for (let i = 0; i < 2000; i++)
      ins.run(`name-${i % 97}-${i}`, i / 7, Buffer.from([i & 255, 1, 2]));
  });
  return { mem, store, writer };
}

describe("openReplica", () => {
  test("answers queries like the primary (head layout)", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    const sql = "SELECT id, name, n, b FROM t WHERE name LIKE 'name-5-%' ORDER BY id";
    const got = await replica.values(sql);
    const want = primaryValues(writer.primaryAt(writer.txid), sql);
    expect(got).toEqual(want);
    expect(got.length).toBeGreaterThan(10);
    const rows = await replica.query("SELECT count(*) AS c, sum(n) AS s FROM t WHERE id > ?", [10]);
    expect(rows).toEqual([{ c: 1990, s: expect.any(Number) }]);
    const st = replica.status();
    expect(st.txid).toBe(2);
    expect(st.discovery).toBe("head");
    expect(st.health).toBe("healthy");
    expect(st.requests.page.requests).toBeGreaterThan(0);
  });

  test("writes fail with SQLITE_READONLY", async () => {
    const { store } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm });
    open.push(replica);
    await expect(replica.query("INSERT INTO t (name) VALUES ('x')")).rejects.toMatchObject({
      code: "SQLITE_READONLY",
    });
    await expect(replica.query("CREATE TABLE u (x)")).rejects.toMatchObject({
      code: "SQLITE_READONLY",
    });
    // Temp storage still works (sorting, temp tables).
    const sorted = await replica.values("SELECT name FROM t ORDER BY random() LIMIT 3");
    expect(sorted).toHaveLength(3);
    await replica.query("CREATE TEMP TABLE scratch AS SELECT id FROM t LIMIT 5");
    expect(await replica.values("SELECT count(*) FROM scratch")).toEqual([[5]]);
  });

  test("follows new commits and sees the newest data in the next transaction", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2000]]);
    await writer.commit("DELETE FROM t WHERE id % 2 = 0");
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[1000]]);
    await writer.commit("CREATE TABLE u (x); INSERT INTO u VALUES (42)");
    expect(await replica.values("SELECT x FROM u")).toEqual([[42]]);
    await writer.commit("VACUUM");
    const sql = "SELECT * FROM t ORDER BY name LIMIT 50";
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
    expect(replica.status().txid).toBe(writer.txid);
  });

  test("Litestream layout (no head object) opens and follows new files", async () => {
    const { store, writer } = await setup(false);
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    expect(replica.status().discovery).toBe("list");
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2000]]);
    await writer.commit("INSERT INTO t (name) VALUES ('new')");
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2001]]);
    await writer.commit("DELETE FROM t WHERE id < 1500");
    await writer.commit("VACUUM");
    const sql = "SELECT id, name FROM t ORDER BY id";
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
  });

  test("concurrent queries spread over connections and all see consistent data", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      connections: 3,
      cacheBytes: 256 * 1024,
    });
    open.push(replica);
    const sqls = [
      "SELECT count(*), sum(n) FROM t",
      "SELECT id, name FROM t WHERE name >= 'name-50' ORDER BY name LIMIT 30",
      "SELECT max(length(b)), min(id) FROM t",
      "SELECT name FROM t WHERE id = 777",
    ];
    const primary = writer.primaryAt(writer.txid);
    const runs = Array.from({ length: 40 }, (_, i) => sqls[i % sqls.length]!);
    const results = await Promise.all(runs.map((sql) => replica.values(sql)));
    results.forEach((got, i) => {
      expect(got).toEqual(primaryValues(primary, runs[i]!));
    });
    // The small cache evicted pages; figures stay within bounds.
    const cache = replica.status().cache;
    expect(cache.bytes).toBeLessThanOrEqual(256 * 1024);
    expect(cache.hits + cache.misses).toBeGreaterThan(0);
  });

  test("optional background polling advances without queries; close stops it", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: 3_600_000,
      backgroundPollMs: 20,
    });
    open.push(replica);
    await writer.commit("INSERT INTO t (name) VALUES ('bg')");
    const deadline = Date.now() + 30_000;
    while (replica.status().txid !== writer.txid && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(replica.status().txid).toBe(writer.txid);
    await replica.close();
    const polls = replica.status().requests.poll.requests;
    await new Promise((r) => setTimeout(r, 60));
    expect(replica.status().requests.poll.requests).toBe(polls);
    await expect(replica.query("SELECT 1")).rejects.toMatchObject({ code: "REPLICA_CLOSED" });
  });

  test("poll() sees what was published before the call, even with a poll already in flight", async () => {
    // A poll that read storage before the commit must not answer for a call made after it.
    class HeldStore extends RecordingStore {
      hold: Promise<void> | undefined;
      reading: (() => void) | undefined;
      override async get(key: string, options?: GetOptions): Promise<GetResult> {
        const res = await super.get(key, options);
        const hold = this.hold;
        if (hold) {
          this.reading?.();
          await hold;
        }
        return res;
      }
    }
    const { mem, writer } = await setup();
    const store = new HeldStore(mem);
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 3_600_000 });
    open.push(replica);
    const before = writer.txid;
    let release!: () => void;
    store.hold = new Promise<void>((r) => {
      release = r;
    });
    const reading = new Promise<void>((r) => {
      store.reading = r;
    });
    const first = replica.poll();
    await reading; // the first poll has read storage: it cannot see what follows
    await writer.commit("INSERT INTO t (name) VALUES ('after-first-poll-read')");
    const second = replica.poll();
    const third = replica.poll(); // callers arriving meanwhile share one follow-up poll
    store.hold = undefined;
    release();
    await first;
    await Promise.all([second, third]);
    expect(writer.txid).toBe(before + 1);
    expect(replica.status().txid).toBe(writer.txid);
    expect(
      await replica.values("SELECT count(*) FROM t WHERE name = 'after-first-poll-read'"),
    ).toEqual([[1]]);
  });

  test("a poll that never settles (a Worker's request answered) is given up after pollAbandonMs", async () => {
    // Workers cancel a request's outstanding I/O once it has answered: a poll
    // that outlived its request never settles. It must not freeze the replica.
    class StuckStore extends RecordingStore {
      stuck: { resolve: () => void } | undefined;
      stickNext = false;
      override async get(key: string, options?: GetOptions): Promise<GetResult> {
        const res = await super.get(key, options);
        if (this.stickNext) {
          this.stickNext = false;
          await new Promise<void>((resolve) => {
            this.stuck = { resolve };
          });
        }
        return res;
      }
    }
    const { mem, writer } = await setup();
    const store = new StuckStore(mem);
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: 0,
      pollWaitMs: 20,
      pollAbandonMs: 200,
    });
    open.push(replica);
    await writer.commit("INSERT INTO t (name) VALUES ('one')");
    store.stickNext = true;
    // The poll sticks after reading storage; the query runs on the version it has.
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2000]]);
    expect(store.stuck).toBeDefined();
    await writer.commit("INSERT INTO t (name) VALUES ('two')");
    // Within pollAbandonMs queries wait for the stuck poll (at most pollWaitMs each).
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2000]]);
    await new Promise((r) => setTimeout(r, 250));
    // Past it, the next query's poll starts afresh and sees both commits.
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2002]]);
    expect(replica.status().txid).toBe(writer.txid);
    // If the given-up poll finishes after all, its (older) answer is not applied.
    store.stuck!.resolve();
    await new Promise((r) => setTimeout(r, 50));
    expect(replica.status().txid).toBe(writer.txid);
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2002]]);
  });

  test("named and positional parameters, large integers, blobs", async () => {
    const { store } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm });
    open.push(replica);
    expect(await replica.values("SELECT ?, ?3, ?2", [1, "two", 2 ** 40])).toEqual([
      [1, 2 ** 40, "two"],
    ]);
    expect(
      await replica.query("SELECT :a AS a, @b AS b, $c AS c", { a: 1.5, "@b": null, c: true }),
    ).toEqual([{ a: 1.5, b: null, c: 1 }]);
    expect(await replica.values("SELECT 9007199254740993, x'00ff'")).toEqual([
      [9007199254740993n, new Uint8Array([0, 255])],
    ]);
    expect(await replica.values("SELECT ?", [123n])).toEqual([[123]]);
    await expect(replica.values("SELECT ?, ?", [1])).rejects.toMatchObject({
      code: "REPLICA_INVALID_ARGUMENT",
    });
    await expect(replica.values("SELEC 1")).rejects.toMatchObject({ code: "SQLITE_ERROR" });
  });
});
