/**
 * Acceptance: request counting. An idle replicator makes no requests (over a
 * scaled-down minute: 60+ background syncs, compaction checks due); a sync
 * with changes makes exactly 2 PUTs (the L0 file and the head) and nothing
 * else, outside compaction.
 */
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { StoreCounters } from "../../src/storage/object-store.js";
import { openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function delta(a: StoreCounters, b: StoreCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a.requests) as (keyof StoreCounters["requests"])[]) {
    out[k] = b.requests[k] - a.requests[k];
  }
  return out;
}

describe("request counting", () => {
  test("a sync with changes is exactly 2 PUTs; an idle minute is 0 requests", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const store = new MemoryStore();
    const r = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 0,
      checkpointPages: 100_000,
      truncatePages: 200_000,
    });
    cleanups.push(() => r.close());
    for (let i = 0; i < 10; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`.repeat(50));
      if (i % 3 === 0)
        app.prepare("INSERT INTO t (v) VALUES (?)").run("second transaction in the same sync");
      const before = store.counters();
      await r.sync();
      expect(delta(before, store.counters())).toEqual({
        get: 0,
        head: 0,
        put: 2,
        list: 0,
        delete: 0,
      });
    }
    const before = store.counters();
    for (let i = 0; i < 5; i++) await r.sync();
    expect(delta(before, store.counters())).toEqual({
      get: 0,
      head: 0,
      put: 0,
      list: 0,
      delete: 0,
    });
  });

  test("idle background replicator: 0 requests over 60+ background syncs and compaction checks", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const store = new MemoryStore();
    // A minute of a 1 s sync interval, scaled down: 60+ background syncs, and
    // every compaction level due several times over.
    const r = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 15,
      compaction: { l1: 50, l2: 100, l3: 200 },
    });
    cleanups.push(() => r.close());
    app.prepare("INSERT INTO t (v) VALUES ('x')").run();
    await r.sync();
    // Let compaction of what exists happen: that is work, not idleness.
    const deadline = Date.now() + 10_000;
    while (r.stats().compactions[3] === 0 && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    expect(r.stats().compactions[3]).toBe(1);
    await new Promise((res) => setTimeout(res, 100));
    const syncsBefore = r.stats().syncs;
    const before = store.counters();
    while (r.stats().syncs - syncsBefore < 60) await new Promise((res) => setTimeout(res, 20));
    expect(delta(before, store.counters())).toEqual({
      get: 0,
      head: 0,
      put: 0,
      list: 0,
      delete: 0,
    });
    expect(r.stats().errors).toBe(0);
  });
});
