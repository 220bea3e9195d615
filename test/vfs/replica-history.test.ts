import { afterEach, describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import { primaryValues, RecordingStore, readSqliteWasm, ScriptedWriter } from "./helpers.js";

const open: Replica[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

const COUNT = "SELECT count(*), sum(length(v)) FROM t";

async function setup(head = true) {
  const mem = new MemoryStore();
  const store = new RecordingStore(mem);
  const writer = new ScriptedWriter(mem, { head });
  await writer.commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 1; i <= 6; i++) {
    await writer.commit(() => {
      const ins = writer.db.prepare("INSERT INTO t (v) VALUES (?)");
      for (let j = 0; j < 50 * i; j++) ins.run(`${i}-${j}`.padEnd(100 + i * 10, "z"));
    });
  }
  return { mem, store, writer };
}

function expectSame(writer: ScriptedWriter, txid: number, got: unknown, sql = COUNT) {
  expect(got).toEqual(primaryValues(writer.primaryAt(txid), sql));
}

describe("pinned `at` replicas", () => {
  test("return the state as of a TXID or a time, and never poll", async () => {
    const { store, writer } = await setup();
    const byTxid = await openReplica({
      store,
      wasm: readSqliteWasm,
      at: { txid: 4 },
      pollIntervalMs: 0,
    });
    open.push(byTxid);
    expectSame(writer, 4, await byTxid.values(COUNT));
    const t5 = writer.times.get(5)!;
    const byTime = await openReplica({ store, wasm: readSqliteWasm, at: new Date(t5 + 500) });
    open.push(byTime);
    expectSame(writer, 5, await byTime.values(COUNT));
    const byString = await openReplica({
      store,
      wasm: readSqliteWasm,
      at: new Date(t5).toISOString(),
    });
    open.push(byString);
    expectSame(writer, 5, await byString.values(COUNT));
    await writer.commit("DELETE FROM t");
    store.reset();
    expectSame(writer, 4, await byTxid.values(COUNT));
    expect(store.calls.filter((c) => c.key === "pagecast-head.json")).toEqual([]);
    const st = byTxid.status();
    expect(st).toMatchObject({ txid: 4, pinned: true, lagSeconds: null });
    expect(st.commitTime?.getTime()).toBe(writer.times.get(4));
  });

  test("a time before retention fails naming the earliest available time", async () => {
    const { store, writer } = await setup();
    const earliest = new Date(writer.times.get(1)!).toISOString();
    await expect(
      openReplica({ store, wasm: readSqliteWasm, at: new Date(Date.UTC(2020, 0, 1)) }),
    ).rejects.toThrow(earliest);
    await expect(
      openReplica({ store, wasm: readSqliteWasm, at: new Date(Date.UTC(2020, 0, 1)) }),
    ).rejects.toMatchObject({ code: "RESTORE_TARGET_UNAVAILABLE" });
    await expect(
      openReplica({ store, wasm: readSqliteWasm, at: "yesterday-ish" }),
    ).rejects.toMatchObject({
      code: "REPLICA_INVALID_ARGUMENT",
    });
  });

  test("work on a Litestream layout too", async () => {
    const { store, writer } = await setup(false);
    const replica = await openReplica({ store, wasm: readSqliteWasm, at: { txid: 3 } });
    open.push(replica);
    expectSame(writer, 3, await replica.values(COUNT));
  });
});

describe("following the writer", () => {
  test.each([true, false])(
    "compactions, new snapshots and shrinking (head layout: %s)",
    async (head) => {
      const { store, writer } = await setup(head);
      const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
      open.push(replica);
      expectSame(writer, writer.txid, await replica.values(COUNT));
      // Compacted: the head's plan now names an L1 file re-covering applied TXIDs.
      await writer.commit("UPDATE t SET v = v || 'u' WHERE id % 3 = 0");
      await writer.compact(1);
      await writer.commit("DELETE FROM t WHERE id % 2 = 0");
      expectSame(writer, writer.txid, await replica.values(COUNT));
      // Shrinks (VACUUM drops pages above Commit), then grows again.
      await writer.commit("DELETE FROM t WHERE id > 100; VACUUM");
      expectSame(writer, writer.txid, await replica.values(COUNT));
      await writer.commit(() => {
        const ins = writer.db.prepare("INSERT INTO t (v) VALUES (?)");
        for (let j = 0; j < 400; j++) ins.run(`g-${j}`.padEnd(300, "g"));
      });
      expectSame(writer, writer.txid, await replica.values(COUNT));
      // A new snapshot (writer restart / continuity break).
      await writer.commit("INSERT INTO t (v) VALUES ('after restart')", { snapshot: true });
      await writer.commit("INSERT INTO t (v) VALUES ('next')");
      const sql = "SELECT id, v FROM t ORDER BY id";
      expectSame(writer, writer.txid, await replica.values(sql), sql);
      expect(replica.status().txid).toBe(writer.txid);
    },
  );

  test("a replica far behind the head's snapshot catches up", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 60_000 });
    open.push(replica);
    await replica.values(COUNT);
    for (let i = 0; i < 5; i++) await writer.commit(`INSERT INTO t (v) VALUES ('x${i}')`);
    await writer.commit("UPDATE t SET v = 'snap'", { snapshot: true });
    await writer.commit("INSERT INTO t (v) VALUES ('tail')");
    await replica.poll();
    const sql = "SELECT count(*), max(id), min(v) FROM t";
    expectSame(writer, writer.txid, await replica.values(sql), sql);
  });
});

describe("failures", () => {
  test("a corrupted frame fails that query with SQLITE_IOERR; the replica recovers", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: 60_000,
      readAheadPages: 0,
    });
    open.push(replica);
    let corrupt = true;
    store.mapBody = (_key, body, options) => {
      const range = options?.range;
      if (!corrupt || !range || !("offset" in range) || range.offset < 200) return body;
      const copy = body.slice();
      copy[copy.length >> 1]! ^= 0x5a;
      copy[copy.length - 1]! ^= 0xff;
      return copy;
    };
    const err = await replica.values(COUNT).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SQLITE_IOERR" });
    expect(replica.status().lastError).not.toBeNull();
    // Page 1 (cached) still works: the failure was confined to that query.
    expect(await replica.values("SELECT count(*) FROM sqlite_schema")).toEqual([[1]]);
    corrupt = false;
    expectSame(writer, writer.txid, await replica.values(COUNT));
  });

  test("a wrong page in a frame (valid LZ4, wrong pgno) is never served", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 0 });
    open.push(replica);
    let swap = true;
    store.mapBody = (_key, body, options) => {
      const range = options?.range;
      if (!swap || !range || !("offset" in range) || range.offset < 200) return body;
      const copy = body.slice();
      copy[3] = (copy[3]! + 1) & 0xff; // page number of the first frame
      return copy;
    };
    await expect(replica.values(COUNT)).rejects.toMatchObject({ code: "SQLITE_IOERR" });
    swap = false;
    expectSame(writer, writer.txid, await replica.values(COUNT));
  });

  test("a new version whose index is corrupt is not applied: the replica stays on the last good one", async () => {
    const { store, writer } = await setup();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    const good = writer.txid;
    expectSame(writer, good, await replica.values(COUNT));
    await writer.commit("DELETE FROM t WHERE id < 100");
    const badKey = writer.plan[writer.plan.length - 1]!.key;
    store.mapBody = (key, body) => {
      if (key !== badKey) return body;
      const copy = body.slice();
      copy[copy.length - 20]! ^= 0xff;
      copy[copy.length - 30]! ^= 0xff;
      return copy;
    };
    expectSame(writer, good, await replica.values(COUNT));
    const st = replica.status();
    expect(st.txid).toBe(good);
    expect(st.lastError).not.toBeNull();
    store.mapBody = undefined;
    expectSame(writer, writer.txid, await replica.values(COUNT));
  });

  test("files deleted by retention under the current plan: re-plan instead of wedging", async () => {
    const { mem, store, writer } = await setup();
    // No prefetch: the table's pages must still be uncached when their files vanish.
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: 60_000,
      rootPrefetchFanout: 0,
      readAheadPages: 0,
    });
    open.push(replica);
    await replica.values("SELECT count(*) FROM sqlite_schema");
    const oldKeys = writer.plan.map((f) => f.key);
    await writer.commit("UPDATE t SET v = 'rewritten ' || id", { snapshot: true });
    await mem.deleteMany(oldKeys);
    // The replica still believes in the old plan (no poll yet); reading its pages fails,
    // so it re-plans from storage and answers from the new snapshot.
    expectSame(writer, writer.txid, await replica.values(COUNT));
    expect(replica.status().txid).toBe(writer.txid);
  });

  test("status reports lag and health from the last confirmation", async () => {
    const { store } = await setup();
    let now = 1_000_000;
    const clock = () => now;
    const replica = await openReplica({ store, wasm: readSqliteWasm, clock, pollIntervalMs: 1000 });
    open.push(replica);
    expect(replica.status()).toMatchObject({ health: "healthy", lagSeconds: 0 });
    now += 61_000;
    expect(replica.status()).toMatchObject({ health: "lagging", lagSeconds: 61 });
    now += 240_000;
    expect(replica.status()).toMatchObject({ health: "stale", lagSeconds: 301 });
    // A query starts a transaction: the interval has passed, so it polls and confirms.
    await replica.values("SELECT 1");
    expect(replica.status()).toMatchObject({ health: "healthy", lagSeconds: 0 });
    // A failing poll does not confirm anything: lag keeps growing, the error is reported.
    store.beforeGet = () => {
      throw new Error("storage down");
    };
    now += 120_000;
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[1050]]);
    expect(replica.status()).toMatchObject({ health: "lagging", lagSeconds: 120 });
    expect(replica.status().lastError?.message).toContain("storage down");
    store.beforeGet = undefined;
  });
});
