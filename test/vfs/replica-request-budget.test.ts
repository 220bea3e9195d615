/**
 * The per-statement request budget (`maxRequestsPerQuery`) on scattered,
 * un-VACUUMed data: a statement whose cold run, miss by miss, would need far
 * more requests than its budget answers correctly through bulk fetching
 * within it, or fails with a `RequestBudgetError` when even bulk fetching
 * cannot fit; never a request past the budget (counted at the store, after
 * background work settled). The error leaves the replica usable.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import {
  openReplica,
  type Replica,
  type ReplicaOptions,
  RequestBudgetError,
} from "../../src/vfs/index.js";
import { defaultMaxRequestsPerQuery } from "../../src/vfs/request-budget.js";
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

const settle = () => new Promise((r) => setTimeout(r, 100));

async function published(): Promise<{ mem: MemoryStore; writer: ScriptedWriter }> {
  const mem = new MemoryStore();
  const writer = await publishScattered(mem);
  cleanups.push(() => writer.close());
  return { mem, writer };
}

/** A cold replica whose store records only what comes after the open (and its background reads). */
async function cold(
  mem: MemoryStore,
  options: ReplicaOptions,
): Promise<{ replica: Replica; store: RecordingStore }> {
  const store = new RecordingStore(mem);
  const replica = await openReplica({
    store,
    wasm: readSqliteWasm,
    pollIntervalMs: 60_000,
    ...options,
  });
  cleanups.push(() => replica.close());
  await settle();
  store.reset();
  return { replica, store };
}

const SCAN = "SELECT count(*), sum(length(memo)), max(total) FROM orders";

describe("per-statement request budget", () => {
  test("over-budget cold queries answer through bulk fetching within the budget, or fail typed; never overrun", async () => {
    const { mem, writer } = await published();
    const primary = writer.primaryAt(writer.txid);
    const budget = 8;
    let answeredOverMissByMiss = 0;
    let answeredOverBulk = 0;
    for (const q of [...SCATTERED_QUERIES, { name: "full scan", sql: SCAN, params: [] }]) {
      // What the query costs unbudgeted: miss by miss, and with bulk fetching.
      const cost: number[] = [];
      for (const bulkFetchBytes of [0, undefined]) {
        const off = await cold(mem, {
          hydrate: false,
          syncWasm: false,
          maxRequestsPerQuery: Number.POSITIVE_INFINITY,
          ...(bulkFetchBytes === undefined ? {} : { bulkFetchBytes }),
        });
        await off.replica.values(q.sql, q.params as never);
        await settle();
        cost.push(off.store.calls.length);
      }
      const [missByMiss = 0, bulk = 0] = cost;
      for (const build of [{ syncWasm: false }, {}] as ReplicaOptions[]) {
        const { replica, store } = await cold(mem, {
          hydrate: false,
          maxRequestsPerQuery: budget,
          ...build,
        });
        try {
          expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
            primaryValues(primary, q.sql, q.params),
          );
          if (missByMiss > budget) answeredOverMissByMiss++;
          if (bulk > budget) answeredOverBulk++;
        } catch (err) {
          expect(err, q.name).toBeInstanceOf(RequestBudgetError);
        }
        await settle();
        const label = `${q.name}: ${missByMiss} miss by miss, ${bulk} bulk unbudgeted`;
        expect(store.calls.length, label).toBeLessThanOrEqual(budget);
      }
    }
    // Queries needing hundreds of requests miss by miss answer within 8.
    expect(answeredOverMissByMiss).toBeGreaterThanOrEqual(8);
    // (Measured: "range + rowid lookups" takes 15 requests with unbudgeted bulk
    // fetching, 5 when the budget makes it coalesce.)
    expect(answeredOverBulk).toBeGreaterThanOrEqual(1);
  });

  test("a statement that cannot fit fails with REPLICA_REQUEST_BUDGET, sends nothing past it, and the replica stays usable", async () => {
    const { mem, writer } = await published();
    const primary = writer.primaryAt(writer.txid);
    for (const build of [{ syncWasm: false }, {}] as ReplicaOptions[]) {
      // A byte budget too small to take the table in a few GETs.
      const { replica, store } = await cold(mem, {
        hydrate: false,
        bulkFetchBytes: 16 * 1024,
        maxRequestsPerQuery: 4,
        ...build,
      });
      const err = await replica.values(SCAN).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RequestBudgetError);
      const e = err as RequestBudgetError;
      expect(e.code).toBe("REPLICA_REQUEST_BUDGET");
      expect(e.budget).toBe(4);
      expect(e.requests).toBeLessThanOrEqual(4);
      expect(e.statement).toBe(SCAN);
      expect(e.message).toContain("maxRequestsPerQuery");
      expect(e.message).toContain(SCAN);
      await settle();
      expect(store.calls.length).toBeLessThanOrEqual(4);
      // Usable afterwards: a point lookup answers, status is healthy, and each
      // statement gets a budget of its own.
      const lookup = "SELECT id, total FROM orders WHERE id = ?";
      expect(await replica.values(lookup, [4321])).toEqual(primaryValues(primary, lookup, [4321]));
      expect(replica.status().health).not.toBe("failing");
      store.reset();
      const again = await replica.values(SCAN).catch((x: unknown) => x);
      await settle();
      expect(store.calls.length).toBeLessThanOrEqual(4);
      if (!(again instanceof RequestBudgetError))
        expect(again).toEqual(primaryValues(primary, SCAN));
    }
  });

  test("with a budget large enough, answers match better-sqlite3 with auto hydration too", async () => {
    const { mem, writer } = await published();
    const primary = writer.primaryAt(writer.txid);
    const { replica, store } = await cold(mem, { maxRequestsPerQuery: 40 });
    for (const q of SCATTERED_QUERIES) {
      store.reset();
      expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
        primaryValues(primary, q.sql, q.params),
      );
      await settle();
      expect(store.calls.length, q.name).toBeLessThanOrEqual(40);
    }
  });

  test("the default budget is 40 in Cloudflare Workers and none elsewhere", () => {
    expect(defaultMaxRequestsPerQuery()).toBe(Number.POSITIVE_INFINITY);
    vi.stubGlobal("navigator", { userAgent: "Cloudflare-Workers" });
    try {
      expect(defaultMaxRequestsPerQuery()).toBe(40);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  test("maxRequestsPerQuery is validated", async () => {
    const mem = new MemoryStore();
    for (const bad of [0, -1, Number.NaN]) {
      await expect(
        openReplica({ store: mem, wasm: readSqliteWasm, maxRequestsPerQuery: bad }),
      ).rejects.toMatchObject({ code: "REPLICA_INVALID_ARGUMENT" });
    }
  });
});
