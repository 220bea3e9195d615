/**
 * `maxRows` (review by a helper): Drizzle's `.get()` on a replica read the
 * whole result and kept its first row (14 storage GETs and 600 ms against
 * one GET with a LIMIT, on a cold replica); better-sqlite3's `get()` stops at
 * the first row. A replica now stops stepping at `maxRows`, and the router's
 * `get` asks for one row.
 */
import { afterEach, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica } from "../../src/vfs/index.js";
import { publishScattered, RecordingStore, readSqliteWasm } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function coldReplica(mem: MemoryStore) {
  const store = new RecordingStore(mem);
  const replica = await openReplica({
    store,
    wasm: readSqliteWasm,
    pollIntervalMs: 60_000,
    bulkFetchBytes: 0,
    hydrate: false,
    readAheadPages: 0,
  });
  cleanups.push(() => replica.close());
  store.reset();
  return { replica, store };
}

test("maxRows stops a statement at that many rows and fetches nothing the rest would need", async () => {
  const mem = new MemoryStore();
  const writer = await publishScattered(mem);
  cleanups.push(() => writer.close());
  const sql = "SELECT id, memo FROM orders WHERE total > ?";
  const all = await coldReplica(mem);
  const rows = await all.replica.values(sql, [0]);
  expect(rows.length).toBeGreaterThan(100);
  const one = await coldReplica(mem);
  expect(await one.replica.values(sql, [0], { maxRows: 1 })).toEqual([rows[0]]);
  expect(await one.replica.values(sql, [0], { maxRows: 3 })).toEqual(rows.slice(0, 3));
  expect(one.store.calls.length).toBeLessThan(all.store.calls.length / 10);
  // In a transaction too, and the statement is reusable afterwards.
  expect(await one.replica.transaction((tx) => tx.values(sql, [0], { maxRows: 2 }))).toEqual(
    rows.slice(0, 2),
  );
  expect((await one.replica.values(sql, [0])).length).toBe(rows.length);
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    await expect(one.replica.values(sql, [0], { maxRows: bad })).rejects.toMatchObject({
      code: "REPLICA_INVALID_ARGUMENT",
    });
  }
});
