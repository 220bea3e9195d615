/**
 * Hydration: the whole database downloaded in the background while queries
 * go on. Answers equal better-sqlite3's during hydration, after it, and
 * across versions the writer publishes meanwhile; a hydrated replica follows
 * new versions by fetching only the changed pages; a transaction keeps its
 * version. Counted, never timed (delays only slow hydration down so queries
 * overlap it).
 */
import { afterEach, describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica, type Replica, type ReplicaOptions } from "../../src/vfs/index.js";
import {
  primaryValues,
  publishScattered,
  RecordingStore,
  readSqliteWasm,
  SCATTERED_QUERIES,
  type ScriptedWriter,
} from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function published(): Promise<{ mem: MemoryStore; writer: ScriptedWriter }> {
  const mem = new MemoryStore();
  const writer = await publishScattered(mem);
  cleanups.push(() => writer.close());
  return { mem, writer };
}

/**
 * A store whose large range reads (hydration's) are slow, so that queries
 * overlap them; with `gate`, they also wait for it to settle first (a fixed
 * delay alone races the rest of `openReplica` on a loaded machine).
 */
function slowLargeReads(mem: MemoryStore, ms = 40, gate?: Promise<void>): RecordingStore {
  const store = new RecordingStore(mem);
  store.beforeGet = async (_key, options) => {
    const r = options?.range;
    if (r && "length" in r && r.length >= 16 * 1024) {
      await gate;
      await new Promise((res) => setTimeout(res, ms));
    }
  };
  return store;
}

async function open(store: RecordingStore, options: ReplicaOptions): Promise<Replica> {
  const replica = await openReplica({
    store,
    wasm: readSqliteWasm,
    pollIntervalMs: 60_000,
    ...options,
  });
  cleanups.push(() => replica.close());
  return replica;
}

describe("hydration", () => {
  test("queries during hydration answer like better-sqlite3; afterwards nothing is fetched", async () => {
    const { mem, writer } = await published();
    const primary = writer.primaryAt(writer.txid);
    // Hydration's reads wait until the replica is open and its status taken:
    // on a loaded machine, opening alone can outlast any fixed delay.
    let startHydration!: () => void;
    const gate = new Promise<void>((res) => {
      startHydration = res;
    });
    const store = slowLargeReads(mem, 500, gate);
    const replica = await open(store, { hydrate: true });
    // Queries start while hydration has barely begun.
    const during = replica.status().hydration;
    startHydration();
    expect(during.state).toBe("running");
    expect(during.totalPages).toBeGreaterThan(100);
    expect(during.pages).toBeLessThan(during.totalPages);
    for (const q of SCATTERED_QUERIES) {
      expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
        primaryValues(primary, q.sql, q.params),
      );
    }
    const done = await replica.hydrate();
    expect(done).toMatchObject({ state: "done", txid: writer.txid, error: null });
    expect(done.pages).toBe(done.totalPages);
    expect(done.bytes).toBe(done.totalBytes);
    expect(replica.status().requests.hydrate.requests).toBeGreaterThan(0);
    // Hydrated: new statements (other parameters) read nothing from storage.
    const before = replica.status().requests;
    for (const q of SCATTERED_QUERIES) {
      const params = q.params.map((p) => (typeof p === "number" ? p + 7 : p));
      expect(await replica.values(q.sql, params as never), q.name).toEqual(
        primaryValues(primary, q.sql, params),
      );
    }
    const after = replica.status().requests;
    for (const kind of ["page", "bulk", "hydrate"] as const) {
      expect(after[kind].requests, kind).toBe(before[kind].requests);
    }
  });

  test("follows new versions by fetching only the pages that changed", async () => {
    const { mem, writer } = await published();
    const store = new RecordingStore(mem);
    const replica = await open(store, { hydrate: true });
    await replica.hydrate();
    const first = replica.status().requests.hydrate;
    for (let round = 1; round <= 3; round++) {
      await writer.commit(`UPDATE orders SET total = total + ${round} WHERE id % 211 = 0`);
      const delta = writer.plan[writer.plan.length - 1]!;
      await replica.poll();
      const st = await replica.hydrate();
      expect(st).toMatchObject({ state: "done", txid: writer.txid });
      const now = replica.status().requests.hydrate;
      // Only the new file's frames: a fraction of the first download.
      expect(now.bytes - first.bytes).toBeLessThanOrEqual(delta.size * round);
      expect(now.requests - first.requests).toBeLessThanOrEqual(2 * round);
      const primary = writer.primaryAt(writer.txid);
      for (const q of SCATTERED_QUERIES) {
        expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
          primaryValues(primary, q.sql, q.params),
        );
      }
    }
    expect(replica.status().requests.hydrate.bytes).toBeLessThan(first.bytes * 1.5);
  });

  test("the writer commits while hydration runs: every answer matches its version", async () => {
    const { mem, writer } = await published();
    const store = slowLargeReads(mem, 60);
    // Without a bound on the wait: past `pollWaitMs` a query may run one version behind.
    const replica = await open(store, {
      hydrate: true,
      pollIntervalMs: 0,
      pollWaitMs: Number.POSITIVE_INFINITY,
    });
    const sql = "SELECT count(*), sum(total), max(id) FROM orders";
    for (let i = 0; i < 4; i++) {
      await writer.commit(
        `INSERT INTO orders VALUES (${10_000 + i}, 1, 'paid', 9, ${i * 1000}, NULL)`,
      );
      // pollIntervalMs 0, unbounded wait: each query polls first, so it sees the newest version.
      expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
      for (const q of SCATTERED_QUERIES.slice(0, 2)) {
        expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
          primaryValues(writer.primaryAt(writer.txid), q.sql, q.params),
        );
      }
    }
    const st = await replica.hydrate();
    expect(st).toMatchObject({ state: "done", txid: writer.txid });
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
  });

  test("a transaction keeps its version while hydration follows a newer one", async () => {
    const { mem, writer } = await published();
    const store = new RecordingStore(mem);
    const replica = await open(store, { hydrate: true });
    await replica.hydrate();
    const sql = "SELECT sum(total), count(*) FROM orders WHERE status = 'refunded'";
    const before = primaryValues(writer.primaryAt(writer.txid), sql);
    await replica.transaction(async (tx) => {
      expect(await tx.values(sql)).toEqual(before);
      await writer.commit(
        "UPDATE orders SET status = 'refunded', total = total + 1 WHERE id % 3 = 0",
      );
      await replica.poll();
      await replica.hydrate();
      expect(replica.status().hydration.txid).toBe(writer.txid);
      expect(await tx.values(sql)).toEqual(before);
    });
    const after = primaryValues(writer.primaryAt(writer.txid), sql);
    expect(after).not.toEqual(before);
    expect(await replica.values(sql)).toEqual(after);
  });

  test("a new snapshot (full plan) is hydrated afresh and answers stay right", async () => {
    const { mem, writer } = await published();
    const store = new RecordingStore(mem);
    const replica = await open(store, { hydrate: true });
    await replica.hydrate();
    await writer.commit("DELETE FROM orders WHERE id % 2 = 0", { snapshot: true });
    await replica.poll();
    const st = await replica.hydrate();
    expect(st).toMatchObject({ state: "done", txid: writer.txid });
    for (const q of SCATTERED_QUERIES) {
      expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
        primaryValues(writer.primaryAt(writer.txid), q.sql, q.params),
      );
    }
  });

  test('"auto" hydrates a small database once a query reads most of it; false never does', async () => {
    const { mem, writer } = await published();
    const sql = "SELECT count(*), sum(length(memo)), sum(total) FROM orders";
    const want = primaryValues(writer.primaryAt(writer.txid), sql);
    const auto = await open(new RecordingStore(mem), {});
    expect(auto.status().hydration.state).toBe("off");
    // A point lookup never hydrates.
    await auto.values("SELECT * FROM orders WHERE id = ?", [77]);
    expect(auto.status().hydration.state).toBe("off");
    expect(await auto.values(sql)).toEqual(want);
    expect(["running", "done"]).toContain(auto.status().hydration.state);
    expect(auto.status().bulk.hydrations).toBe(1);
    await auto.hydrate();
    const never = await open(new RecordingStore(mem), { hydrate: false });
    expect(await never.values(sql)).toEqual(want);
    expect(never.status().hydration.state).toBe("off");
    // Too large for "auto": bulk fetching only.
    const capped = await open(new RecordingStore(mem), { hydrateMaxBytes: 1024 });
    expect(await capped.values(sql)).toEqual(want);
    expect(capped.status().hydration.state).toBe("off");
    expect(capped.status().bulk.fetches).toBeGreaterThan(0);
  });

  test("hydrate option values are checked", async () => {
    const { mem } = await published();
    await expect(
      openReplica({ store: mem, wasm: readSqliteWasm, hydrate: "yes" as never }),
    ).rejects.toMatchObject({ code: "REPLICA_INVALID_ARGUMENT" });
  });
});
