/**
 * The plain-build / async-build split of a replica connection
 * (src/vfs/hybrid-connection.ts): warm statements run on the plain build,
 * misses are fetched and the statement re-run, cold scans move to the async
 * build, transactions (explicit or via BEGIN) and connection state stay
 * consistent, and a failed fetch surfaces as before.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { MAX_SYNC_MISSES } from "../../src/vfs/hybrid-connection.js";
import {
  openReplica,
  type Replica,
  ReplicaQueryError,
  setDefaultSqliteWasm,
} from "../../src/vfs/index.js";
import { ReplicaConnection } from "../../src/vfs/replica-connection.js";
import { readSyncSqliteWasm, registerNodeSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { primaryValues, RecordingStore, readSqliteWasm, ScriptedWriter } from "./helpers.js";

const open: Replica[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((r) => r.close()));
});

/** A table of ~2 MB (about 500 leaf pages) with an index. */
async function setup() {
  const mem = new MemoryStore();
  const store = new RecordingStore(mem);
  const writer = new ScriptedWriter(mem, { head: true });
  await writer.commit(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, pad TEXT); CREATE INDEX t_k ON t(k);",
  );
  await writer.commit(() => {
    const ins = writer.db.prepare("INSERT INTO t (k, pad) VALUES (?, ?)");
    for (let i = 0; i < 6000; i++) ins.run(`key-${(i * 7919) % 6000}`, "p".repeat(300));
  });
  return { mem, store, writer };
}

/**
 * Counts `ReplicaConnection.execute` calls by build from now on (of `sql`
 * only, when given; a connection's first statement counts twice, as it runs
 * its setup first).
 */
function countBuilds(sql?: string): () => { sync: number; async: number } {
  const spy = vi.spyOn(ReplicaConnection.prototype, "execute");
  return () => {
    const counts = { sync: 0, async: 0 };
    spy.mock.contexts.forEach((conn, i) => {
      if (sql === undefined || spy.mock.calls[i]?.[0] === sql) {
        counts[(conn as ReplicaConnection).build]++;
      }
    });
    return counts;
  };
}

describe("plain build beside the async build", () => {
  test("the async build compiles only once a statement keeps missing pages", async () => {
    const { store, writer } = await setup();
    // Sources of their own: compiles are memoized per source.
    let asyncLoads = 0;
    const wasm = async () => {
      asyncLoads++;
      return readSqliteWasm();
    };
    const replica = await openReplica({
      store,
      wasm,
      syncWasm: async () => readSyncSqliteWasm(),
      pollIntervalMs: 60_000,
    });
    open.push(replica);
    // Opening and a statement served from memory need only the plain build.
    expect(await replica.values("SELECT 1")).toEqual([[1]]);
    expect(asyncLoads).toBe(0);
    const sql = "SELECT id, k FROM t WHERE id = ?";
    const primary = writer.primaryAt(writer.txid);
    // A cold point lookup (one round of misses) leaves it alone.
    expect(await replica.values(sql, [4321])).toEqual(primaryValues(primary, sql, [4321]));
    expect(asyncLoads).toBe(0);
    // A scan missing round after round starts it while its pages come.
    const scan = "SELECT count(*), max(length(pad)) FROM t WHERE k > ?";
    expect(await replica.values(scan, ["key-2"])).toEqual(primaryValues(primary, scan, ["key-2"]));
    expect(asyncLoads).toBe(1);
    // A transaction runs on the async build: compiled once, not again.
    await replica.transaction(async (tx) => {
      expect(await tx.values(sql, [17])).toEqual(primaryValues(primary, sql, [17]));
    });
    expect(asyncLoads).toBe(1);
  });

  test("the async build compiled on first need is the one registered at the open; a bad one fails typed, once", async () => {
    const { store, writer } = await setup();
    const sql = "SELECT id, k FROM t WHERE id = ?";
    const primary = writer.primaryAt(writer.txid);
    // Opened with the registered default; unregistered before the first need.
    registerNodeSqliteWasm();
    const replica = await openReplica({ store, pollIntervalMs: 60_000 });
    open.push(replica);
    setDefaultSqliteWasm(undefined);
    try {
      await replica.transaction(async (tx) => {
        expect(await tx.values(sql, [17])).toEqual(primaryValues(primary, sql, [17]));
      });
    } finally {
      registerNodeSqliteWasm();
    }
    // An async build that cannot load: the open (plain build) works, the
    // statements that need it fail with a typed error, and it is loaded once.
    let loads = 0;
    const broken = await openReplica({
      store,
      wasm: async () => {
        loads++;
        throw new Error("ENOENT: no such file wa-sqlite-async.wasm");
      },
      syncWasm: async () => readSyncSqliteWasm(),
      pollIntervalMs: 60_000,
    });
    open.push(broken);
    for (let i = 0; i < 2; i++) {
      await expect(broken.transaction(async (tx) => tx.values(sql, [17]))).rejects.toMatchObject({
        code: "REPLICA_WASM_INVALID",
      });
    }
    expect(loads).toBe(1);
    // Statements the plain build runs still answer.
    expect(await broken.values("SELECT 1")).toEqual([[1]]);
  });

  test("a missing async build fails the open before any storage request", async () => {
    const { store } = await setup();
    setDefaultSqliteWasm(undefined);
    try {
      store.reset();
      await expect(openReplica({ store })).rejects.toMatchObject({
        code: "REPLICA_WASM_MISSING",
      });
      expect(store.calls).toEqual([]);
    } finally {
      registerNodeSqliteWasm();
    }
  });

  test("warm statements run on the plain build and answer like the async build", async () => {
    const { store, writer } = await setup();
    const hybrid = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 60_000 });
    const asyncOnly = await openReplica({
      store,
      wasm: readSqliteWasm,
      syncWasm: false,
      pollIntervalMs: 60_000,
    });
    open.push(hybrid, asyncOnly);
    const queries: [string, unknown[]][] = [
      ["SELECT id, k FROM t WHERE id = ?", [4321]],
      ["SELECT id FROM t WHERE k = ?", ["key-77"]],
      ["SELECT count(*), min(k), max(id) FROM t WHERE k BETWEEN ? AND ?", ["key-1", "key-3"]],
      ["SELECT k, count(*) FROM t GROUP BY substr(k, 1, 5) ORDER BY 1 LIMIT 3", []],
    ];
    const primary = writer.primaryAt(writer.txid);
    for (const [sql, params] of queries) {
      // Cold first (misses, re-runs, maybe the async build), then warm.
      const want = primaryValues(primary, sql, params);
      expect(await hybrid.values(sql, params as never)).toEqual(want);
      expect(await asyncOnly.values(sql, params as never)).toEqual(want);
    }
    const builds = countBuilds();
    for (const [sql, params] of queries) {
      expect(await hybrid.values(sql, params as never)).toEqual(
        await asyncOnly.values(sql, params as never),
      );
    }
    // Warm: the hybrid replica ran every statement on the plain build, the other on the async one.
    expect(builds()).toEqual({ sync: queries.length, async: queries.length });
  });

  test("a cold point lookup takes as many sequential round trips as on the async build", async () => {
    const { store } = await setup();
    const depths: number[] = [];
    for (const syncWasm of [undefined, false] as const) {
      const replica = await openReplica({
        store,
        wasm: readSqliteWasm,
        ...(syncWasm === false ? { syncWasm } : {}),
      });
      open.push(replica);
      store.reset();
      expect(await replica.values("SELECT id FROM t WHERE k = ?", ["key-4242"])).toHaveLength(1);
      depths.push(store.depth());
    }
    expect(depths[0]).toBe(depths[1]);
  });

  test("a cold scan moves to the async build after a few rounds of misses", async () => {
    const { store, writer } = await setup();
    // Without bulk fetching or hydration, which would spare it the rounds.
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      readAheadPages: 4,
      bulkFetchBytes: 0,
      hydrate: false,
      maxRequestsPerQuery: Number.POSITIVE_INFINITY,
    });
    open.push(replica);
    const sql = "SELECT sum(length(pad)), count(DISTINCT k) FROM t";
    const builds = countBuilds(sql);
    const got = await replica.values(sql);
    expect(got).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
    const counts = builds();
    expect(counts.sync).toBeGreaterThanOrEqual(MAX_SYNC_MISSES);
    expect(counts.sync).toBeLessThanOrEqual(MAX_SYNC_MISSES + 1);
    expect(counts.async).toBeGreaterThanOrEqual(1);
    // Warm now: the plain build alone.
    await replica.values(sql);
    expect(builds()).toEqual({ sync: counts.sync + 1, async: counts.async });
  });

  test("a BEGIN through query() runs on the async build and ends with the call", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    const sql = "SELECT count(*), max(id) FROM t";
    const before = await replica.values(sql);
    const builds = countBuilds();
    expect(await replica.values(`BEGIN; ${sql}`)).toEqual(before);
    expect(builds().async).toBeGreaterThanOrEqual(1);
    await writer.commit("INSERT INTO t (k, pad) VALUES ('new', 'x')");
    await replica.poll();
    // No transaction outlived the call: the next statement sees the newest version.
    const after = await replica.values(sql);
    expect(after).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
    expect(after).not.toEqual(before);
    // A COMMIT has no transaction left to end.
    await expect(replica.query("COMMIT")).rejects.toMatchObject({ code: "SQLITE_ERROR" });
    expect(await replica.transaction((tx) => tx.values(sql))).toEqual(after);
  });

  test("transaction() sees one version; statements outside it see the newest", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    const sql = "SELECT count(*) FROM t";
    await replica.values(sql);
    const inside = await replica.transaction(async (tx) => {
      const a = await tx.values(sql);
      await writer.commit("INSERT INTO t (k, pad) VALUES ('tx', 'x')");
      await replica.poll();
      const b = await tx.values(sql);
      return [a, b];
    });
    expect(inside[0]).toEqual(inside[1]);
    expect(await replica.values(sql)).toEqual([[(inside[0]![0]![0] as number) + 1]]);
  });

  test("a temp table moves its connection to the async build, where transactions see it too", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 4 });
    open.push(replica);
    await replica.query("CREATE TEMP TABLE picked (k TEXT PRIMARY KEY)");
    await replica.query("INSERT INTO picked VALUES ('key-1'), ('key-2'), ('key-3')");
    const builds = countBuilds();
    const sql =
      "SELECT count(*), sum(length(pad)) FROM t WHERE k IN (SELECT k FROM picked) OR id > 0";
    const got = await replica.values(sql);
    const primary = writer.primaryAt(writer.txid);
    expect(got).toEqual(primaryValues(primary, "SELECT count(*), sum(length(pad)) FROM t"));
    expect(builds().sync).toBe(0);
    expect(await replica.values("SELECT count(*) FROM picked")).toEqual([[3]]);
    expect(await replica.transaction((tx) => tx.values("SELECT count(*) FROM picked"))).toEqual([
      [3],
    ]);
  });

  test("a script is never partly repeated: state-changing statements run once, on the async build", async () => {
    const { store } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 1 });
    open.push(replica);
    await replica.query("CREATE TEMP TABLE log (x)");
    // Cold: the SELECT misses many times; the INSERT before it must not run again each time.
    const got = await replica.values(
      "INSERT INTO log VALUES (1); SELECT count(*) FROM t WHERE pad LIKE 'p%'",
    );
    expect(got).toEqual([[6000]]);
    expect(await replica.values("SELECT count(*) FROM log")).toEqual([[1]]);
  });

  test("a temp table built by a cold scan is visible to the next statement", async () => {
    const { store } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 1 });
    open.push(replica);
    await replica.query("CREATE TEMP TABLE big AS SELECT * FROM t");
    expect(await replica.values("SELECT count(*) FROM big")).toEqual([[6000]]);
  });

  test("reporting PRAGMAs leave no state: later cold scans larger than the cache still answer", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      readAheadPages: 1,
      cacheBytes: 256 * 1024,
    });
    open.push(replica);
    expect((await replica.values("PRAGMA table_info(t)")).length).toBe(3);
    const builds = countBuilds("PRAGMA user_version");
    await replica.values("PRAGMA user_version");
    expect(builds()).toEqual({ sync: 1, async: 0 });
    const sql = "SELECT count(*), sum(length(pad)) FROM t";
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
  });

  test("a script that fails inside a BEGIN leaves no transaction open", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    await replica.values("SELECT count(*) FROM t");
    const err = await replica.values("BEGIN; SELECT * FROM missing").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicaQueryError);
    await writer.commit("INSERT INTO t (k, pad) VALUES ('after', 'x')");
    // Not stuck in the failed script's transaction: the next statement sees the new commit.
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[6001]]);
  });

  test("a failed page fetch fails the statement with SQLITE_IOERR and the cause", async () => {
    const { store } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 60_000 });
    open.push(replica);
    await replica.values("SELECT count(*) FROM sqlite_schema");
    const boom = new Error("injected range failure");
    store.beforeGet = (_key, options) => {
      if (options?.range) throw boom;
    };
    const err = await replica.values("SELECT pad FROM t WHERE id = 5000").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicaQueryError);
    expect(err).toMatchObject({ code: "SQLITE_IOERR" });
    let cause = (err as Error).cause;
    while (cause instanceof Error && cause !== boom && cause.cause) cause = cause.cause;
    expect(cause).toBe(boom);
    // The replica recovers once storage answers again.
    store.beforeGet = undefined;
    expect(await replica.values("SELECT id FROM t WHERE id = 5000")).toEqual([[5000]]);
  });
});
