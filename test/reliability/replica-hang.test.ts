/**
 * A replica's queries over cached pages while its S3 endpoint hangs
 * (connections accepted, never answered), with every timeout at its
 * default: a query never waits on the hung poll beyond the poll-wait budget;
 * it answers from the version the replica has, and the outage shows in
 * status. In CI: a hang past the store's first timed-out attempt, each query
 * answering within a stated bound (a bound on hangs, not a speed check).
 *
 * Measurement, opt-in (the closing note's "longest cached replica query"):
 *   PAGECAST_HANG_SECONDS=60 npx vitest run test/reliability/replica-hang.test.ts
 */
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import type { Replica } from "../../src/vfs/replica.js";
import { DEFAULT_POLL_WAIT_MS } from "../../src/vfs/replica-core.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { openApp, tempDir } from "../replicator/helpers.js";
import { testS3Store } from "./helpers.js";

const s3 = inject("s3");
const measureSeconds = Number(process.env.PAGECAST_HANG_SECONDS ?? 0);
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  while (cleanups.length) await Promise.resolve(cleanups.pop()!()).catch(() => {});
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A replicated database, and a replica of it whose every request goes through a fault proxy. */
async function setup(name: string) {
  const prefix = `replica-hang-${Date.now().toString(36)}-${name}`;
  const direct = testS3Store(s3, prefix);
  cleanups.push(() => direct.close());
  const { dir, cleanup } = tempDir("pagecast-replica-hang-");
  cleanups.push(cleanup);
  const db = join(dir, "app.db");
  const app = openApp(db);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v)");
  const insert = app.prepare("INSERT INTO t (v) VALUES (?)");
  app.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run(`value-${i}-${"x".repeat(i % 97)}`);
  })();
  const replicator = await Replicator.start({ db, store: direct, syncInterval: 0 });
  await replicator.sync();
  await replicator.close();

  const proxy = await startFaultProxy(s3.endpoint);
  cleanups.push(() => proxy.close());
  // No timeout, retry or poll option: the defaults are what is tested.
  const store = testS3Store(s3, prefix, proxy.endpoint);
  cleanups.push(() => store.close());
  const replica = await openReplica({ store, wasm: readSqliteWasm });
  cleanups.push(() => replica.close());
  return { proxy, replica };
}

const QUERIES = [
  "SELECT count(*) FROM t",
  `SELECT v FROM t WHERE v = 'value-1500-${"x".repeat(1500 % 97)}'`,
  "SELECT max(id), min(v) FROM t",
];

/** Runs the cached queries back to back for `ms`; returns each query's time. */
async function queryFor(replica: Replica, ms: number): Promise<{ at: number; ms: number }[]> {
  const start = Date.now();
  const times: { at: number; ms: number }[] = [];
  for (let i = 0; Date.now() - start < ms; i++) {
    const t0 = Date.now();
    const rows = await replica.values(QUERIES[i % QUERIES.length]!);
    times.push({ at: t0 - start, ms: Date.now() - t0 });
    expect(rows.length).toBe(1);
    // Spaced out a little: each query finds a poll due again (default interval 1 s).
    await sleep(250);
  }
  return times;
}

test("queries over cached pages answer within 5 s while S3 hangs (default timeouts)", {
  timeout: 60_000,
}, async () => {
  const { proxy, replica } = await setup("ci");
  // Every page the queries need is cached.
  for (const q of QUERIES) expect(await replica.values(q)).toHaveLength(1);
  const [[count]] = (await replica.values("SELECT count(*) FROM t")) as [[number]];
  proxy.blackhole = true;
  const hangStart = Date.now();
  await sleep(1_100);
  // Past the store's first timed-out attempt (10 s), so the outage shows.
  const times = await queryFor(replica, 13_000);
  const longest = Math.max(...times.map((t) => t.ms));
  console.log(
    `replica, S3 hung for ${((Date.now() - hangStart) / 1000).toFixed(1)} s: ${times.length} cached queries, longest ${longest} ms`,
  );
  expect(times.length).toBeGreaterThan(10);
  for (const t of times) expect(t.ms).toBeLessThan(5_000);
  // The first query waited for its poll at most the budget.
  expect(times[0]!.ms).toBeLessThan(DEFAULT_POLL_WAIT_MS + 4_000);
  expect(await replica.values("SELECT count(*) FROM t")).toEqual([[count]]);
  const status = replica.status();
  expect(status.storage?.failingSince).toBeInstanceOf(Date);
  proxy.blackhole = false;
});

describe.skipIf(!(measureSeconds > 0))(`measurement: a ${measureSeconds} s hang`, () => {
  test("longest cached replica query", { timeout: (measureSeconds + 120) * 1000 }, async () => {
    const { proxy, replica } = await setup("measure");
    for (const q of QUERIES) await replica.values(q);
    proxy.blackhole = true;
    const hangStart = Date.now();
    setTimeout(() => {
      proxy.blackhole = false;
    }, measureSeconds * 1000);
    let failingShown: number | undefined;
    const watch = setInterval(() => {
      if (replica.status().storage?.failingSince) failingShown ??= Date.now() - hangStart;
    }, 100);
    const times = await queryFor(replica, measureSeconds * 1000 + 15_000).finally(() =>
      clearInterval(watch),
    );
    const longest = times.reduce((a, b) => (b.ms > a.ms ? b : a));
    console.log(
      [
        `replica, ${measureSeconds} s hang, default timeouts:`,
        `  cached queries: ${times.length}; longest ${longest.ms} ms (started ${(longest.at / 1000).toFixed(1)} s into the hang)`,
        `  slowest five: ${[...times]
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 5)
          .map((t) => `${t.ms} ms @${(t.at / 1000).toFixed(1)} s`)
          .join(", ")}`,
        `  status showed storage failing from ${failingShown === undefined ? "never" : `${(failingShown / 1000).toFixed(1)} s`} into the hang`,
      ].join("\n"),
    );
    for (const t of times) expect(t.ms).toBeLessThan(5_000);
  });
});
