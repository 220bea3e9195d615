import { afterEach, describe, expect, test } from "vitest";
import { HEAD_OBJECT_KEY } from "../../src/layout/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import {
  primaryValues,
  type RecordedCall,
  RecordingStore,
  readSqliteWasm,
  ScriptedWriter,
} from "./helpers.js";

const open: Replica[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

async function history(commits: number, compactEvery = 0) {
  const mem = new MemoryStore();
  const store = new RecordingStore(mem);
  const writer = new ScriptedWriter(mem);
  await writer.commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 0; i < commits; i++) {
    await writer.commit(`INSERT INTO t (v) VALUES ('${"x".repeat(300)}${i}')`);
    if (compactEvery > 0 && (i + 1) % compactEvery === 0) await writer.compact(1);
  }
  return { mem, store, writer };
}

describe("request counts", () => {
  test.each([
    [3, 0],
    [40, 0],
    [300, 10],
  ])(
    "open takes <= 2 sequential round trips and no LIST (%i commits, compaction every %i)",
    async (commits, every) => {
      const { store, writer } = await history(commits, every);
      store.reset();
      const replica = await openReplica({ store, wasm: readSqliteWasm });
      open.push(replica);
      const isPageRead = (c: RecordedCall) => c.range !== undefined && "offset" in c.range;
      const openCalls = store.calls.filter((c) => !isPageRead(c));
      expect(openCalls.filter((c) => c.op === "list")).toEqual([]);
      expect(openCalls.filter((c) => c.key === HEAD_OBJECT_KEY)).toHaveLength(1);
      // One head GET, then one exact index read per planned file, all in parallel.
      expect(openCalls.length).toBe(1 + writer.plan.length);
      expect(store.depth(openCalls)).toBe(2);
      const firstPageRead = Math.min(...store.calls.filter(isPageRead).map((c) => c.start));
      expect(Math.max(...openCalls.map((c) => c.end))).toBeLessThan(firstPageRead);
      // The first query reads pages only now.
      const sql = "SELECT count(*), max(v) FROM t";
      expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
      expect(store.calls.length).toBeGreaterThan(openCalls.length);
    },
  );

  test("an idle poll is one conditional GET and no LIST; warm queries make no requests", async () => {
    const { store } = await history(5);
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    open.push(replica);
    await replica.values("SELECT * FROM t");
    store.reset();
    await replica.poll();
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]).toMatchObject({ op: "get", key: HEAD_OBJECT_KEY, conditional: true });
    store.reset();
    // A query that starts a transaction polls (interval 0) and reads only cached pages.
    await replica.values("SELECT * FROM t");
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]).toMatchObject({ key: HEAD_OBJECT_KEY, conditional: true });
    expect(replica.status().requests.list.requests).toBe(0);
  });

  test("lazy polling respects the interval (no timer, no request within it)", async () => {
    const { store, writer } = await history(2);
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 60_000 });
    open.push(replica);
    await replica.values("SELECT count(*) FROM t");
    await writer.commit("INSERT INTO t (v) VALUES ('late')");
    store.reset();
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2]]);
    expect(store.calls).toHaveLength(0);
    await replica.poll();
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[3]]);
  });

  test("a cold scan of a VACUUMed table coalesces adjacent frames into few range GETs", async () => {
    const { mem, writer } = await history(0);
    await writer.commit(() => {
      const ins = writer.db.prepare("INSERT INTO t (v) VALUES (?)");
      for (let i = 0; i < 3000; i++) ins.run(`${i}`.padEnd(400, "y"));
    });
    await writer.commit("VACUUM", { snapshot: true });
    const store = new RecordingStore(mem);
    const replica = await openReplica({ store, wasm: readSqliteWasm });
    open.push(replica);
    store.reset();
    const sql = "SELECT sum(length(v)), count(*) FROM t";
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
    const pages = replica.status().pages!;
    const pageGets = store.calls.filter((c) => c.range && "offset" in c.range);
    expect(pages).toBeGreaterThan(250);
    expect(pageGets.length).toBeLessThan(pages / 4);
    expect(store.depth()).toBeLessThan(pages / 4);
  });

  test("a cold scan of a scattered (never VACUUMed) table prefetches sibling leaves in parallel", async () => {
    const { mem, writer } = await history(0);
    await writer.commit(() => {
      const ins = writer.db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
      // Interleave two tables so neither's leaves are adjacent in the file.
      writer.db.exec("CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT)");
      const other = writer.db.prepare("INSERT INTO other (id, v) VALUES (?, ?)");
      for (let i = 0; i < 3000; i++) {
        ins.run(i, `${i}`.padEnd(400, "y"));
        other.run(i, `${i}`.padEnd(400, "z"));
      }
    });
    const store = new RecordingStore(mem);
    const replica = await openReplica({ store, wasm: readSqliteWasm });
    open.push(replica);
    store.reset();
    const sql = "SELECT sum(length(v)), count(*) FROM t";
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
    const leaves = Math.ceil(3000 / 9);
    expect(store.depth()).toBeLessThan(leaves / 4);
  });
});
