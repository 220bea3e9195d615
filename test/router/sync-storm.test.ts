/**
 * Read-your-writes under write bursts, with a real Replicator and replicas:
 * one pending position resolution serves every waiting write (a handful of
 * `sync()` calls and one listener pair for a burst of 1,000), and reads go
 * back to replicas as soon as one holds the last write.
 *
 * Prints the figures (sync calls, time back to replicas). Intervals default
 * to the test's (sync 50 ms, replica poll 20 ms); PAGECAST_BURST_SYNC_MS and
 * PAGECAST_BURST_POLL_MS set others (e.g. the defaults, 1000 and 1000).
 */
import { performance } from "node:perf_hooks";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, test } from "vitest";
import { createRouter } from "../../src/router/router.js";
import { vfsStatus } from "../../src/router/vfs-status.js";
import { decodeBookmark } from "../../src/router/write-position.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { ReplicatorPositions } from "../../src/router-node/replicator-positions.js";
import { catchUp, type ReplicatedPrimary, replicatedPrimary, schema, users } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
const defer = (fn: () => unknown) => cleanups.push(fn);
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const SYNC_MS = Number(process.env.PAGECAST_BURST_SYNC_MS ?? 50);
const POLL_MS = Number(process.env.PAGECAST_BURST_POLL_MS ?? 20);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts `replicator.sync()` calls and the most "sync" listeners seen at once. */
function instrument(env: ReplicatedPrimary) {
  const seen = { syncs: 0, maxListeners: 0 };
  const r = env.replicator;
  const sync = r.sync.bind(r);
  r.sync = () => {
    seen.syncs++;
    return sync();
  };
  const on = r.on.bind(r);
  r.on = ((event: string, fn: (...args: unknown[]) => void) => {
    const out = on(event as never, fn as never);
    seen.maxListeners = Math.max(seen.maxListeners, r.listenerCount("sync"));
    return out;
  }) as typeof r.on;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  defer(() => process.off("warning", onWarning));
  return { seen, warnings };
}

/**
 * Reads `id` in the session of `bookmark` until a replica answers. Returns
 * when that happened and when a replica first held the TXID of the write
 * (known once the bookmark's position resolves).
 */
async function backOnReplicas(
  db: ReturnType<typeof routerOver>,
  env: ReplicatedPrimary,
  bookmark: string,
  id: number,
) {
  const start = performance.now();
  // Replicas' newest TXID before each read.
  const samples: { at: number; txid: number }[] = [];
  let resolvedAt: number | undefined;
  let txid: number | undefined;
  return db.$withSession(async () => {
    for (;;) {
      const now = performance.now() - start;
      samples.push({ at: now, txid: Math.max(...env.replicas.map((r) => r.status().txid ?? 0)) });
      const req = decodeBookmark(db.$bookmark());
      if (resolvedAt === undefined && req.after === undefined) {
        resolvedAt = now;
        txid = req.txid;
      }
      const before = vfsStatus(db).reads.replicas;
      const rows = await db.select().from(users).where(eq(users.id, id));
      expect(rows).toHaveLength(1);
      if (vfsStatus(db).reads.replicas > before) {
        // When the first read a replica served was issued.
        const held = samples.find((s) => txid !== undefined && s.txid >= txid)?.at;
        return { back: now, resolvedAt, replicaHeldAt: held, txid };
      }
      if (now > 60_000) throw new Error("reads never came back to replicas");
      await sleep(2);
    }
  }, bookmark);
}

function routerOver(env: ReplicatedPrimary) {
  return createRouter({
    primary: betterSqlitePrimary(env.file, { replicator: env.replicator }),
    replicas: env.replicas,
    schema,
    context: asyncSessionContext(),
  });
}

describe("sync storms", () => {
  test.each([
    ["back to back", 0],
    ["yielding to the event loop every 10 writes", 10],
  ])(
    "a 1,000-write burst, %s: a handful of syncs, one listener pair, reads back on replicas",
    async (kind, yieldEvery) => {
      const env = await replicatedPrimary(defer, {
        syncInterval: SYNC_MS,
        pollIntervalMs: POLL_MS,
      });
      await catchUp(env);
      const { seen, warnings } = instrument(env);
      const db = routerOver(env);

      // A single write first.
      const single = await db.$withSession(async () => {
        await db.insert(users).values({ id: 999, name: "single" });
        return db.$bookmark();
      });
      const afterSingle = await backOnReplicas(db, env, single, 999);
      const singleSyncs = seen.syncs;

      // The burst: 1,000 awaited inserts in one session, reading its own writes as it goes.
      const t0 = performance.now();
      const burst = await db.$withSession(async () => {
        for (let i = 0; i < 1000; i++) {
          await db.insert(users).values({ id: 1000 + i, name: `burst ${i}` });
          // Like a server between requests: the replicator publishes during the burst.
          if (yieldEvery && i % yieldEvery === yieldEvery - 1) {
            await new Promise((r) => setImmediate(r));
          }
          if (i % 100 === 99) {
            expect(await db.$count(users, eq(users.id, 1000 + i))).toBe(1);
          }
        }
        return db.$bookmark();
      });
      const burstMs = performance.now() - t0;
      const afterBurst = await backOnReplicas(db, env, burst, 1999);
      const burstSyncs = seen.syncs - singleSyncs;

      console.log(
        `[sync-storm] syncInterval ${SYNC_MS} ms, replica poll ${POLL_MS} ms | ` +
          `single write: ${singleSyncs} sync() call(s), back on replicas after ${afterSingle.back.toFixed(0)} ms ` +
          `(position resolved ${afterSingle.resolvedAt?.toFixed(0)} ms, a replica held it ${afterSingle.replicaHeldAt?.toFixed(0)} ms) | ` +
          `1,000-write burst ${kind} (${burstMs.toFixed(0)} ms): ${burstSyncs} sync() call(s), back on replicas ` +
          `${afterBurst.back.toFixed(0)} ms after it (resolved ${afterBurst.resolvedAt?.toFixed(0)} ms, ` +
          `a replica held it ${afterBurst.replicaHeldAt?.toFixed(0)} ms) | most "sync" listeners: ${seen.maxListeners}`,
      );
      expect(burstSyncs).toBeLessThanOrEqual(5);
      expect(singleSyncs).toBeLessThanOrEqual(1);
      expect(seen.maxListeners).toBeLessThanOrEqual(1);
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
      // The session's requirement became exact (a TXID), so replicas serve it once one holds that.
      expect(afterBurst.txid).toBeGreaterThan(0);
      expect(afterBurst.replicaHeldAt).toBeDefined();
    },
  );

  test("one resolution serves every waiting position; bookmarks too", async () => {
    const env = await replicatedPrimary(defer, { syncInterval: 0, replicaCount: 0 });
    await catchUp(env);
    const { seen, warnings } = instrument(env);
    const positions = new ReplicatorPositions(env.replicator, { waitMs: 30 });
    const marks = [];
    for (let i = 0; i < 500; i++) {
      env.file.prepare("insert into users (id, name) values (?, ?)").run(3000 + i, "w");
      marks.push(positions.mark());
    }
    // Bookmarked positions (no mark of this process) wait with them.
    const foreign = { after: marks[0]!.after!, at: Date.now() };
    const txids = await Promise.all([...marks, foreign].map((m) => positions.resolve(m)));
    const { txid } = env.replicator.position;
    expect(new Set(txids)).toEqual(new Set([txid]));
    expect(seen.syncs).toBe(1);
    expect(seen.maxListeners).toBeLessThanOrEqual(1);
    expect(warnings).toEqual([]);
    // Positions committed before that sync are answered from it at once.
    expect(await positions.resolve(marks[10]!)).toBe(txid);
    expect(seen.syncs).toBe(1);
  });
});
