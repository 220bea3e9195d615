/**
 * Measurement, opt-in: an S3 endpoint that hangs for PAGECAST_HANG_SECONDS
 * (e.g. 60: connections accepted, never answered), then recovers, with every
 * timeout at its default. Reports how long a store operation takes to fail,
 * when the failure first shows (attempt listener, store health), when the
 * store works again, and, with the Replicator (an app writing ~20 tx/s in
 * this process, syncs in a loop), the longest sync(), the WAL peak and when
 * the replicator's own stats show the outage. The writer's capture and WAL
 * bound are another issue's; this measures what the store contributes.
 *
 *   PAGECAST_HANG_SECONDS=60 npx vitest run test/reliability/hang-measure.test.ts
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const seconds = Number(process.env.PAGECAST_HANG_SECONDS ?? 0);
const s3 = inject("s3");
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function setup(name: string) {
  const proxy = await startFaultProxy(s3.endpoint);
  cleanups.push(() => proxy.close());
  const store = new S3Store({
    bucket: s3.bucket,
    prefix: `hang-measure-${Date.now().toString(36)}-${name}`,
    endpoint: proxy.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  cleanups.push(() => store.close());
  return { proxy, store };
}

describe.skipIf(!(seconds > 0)).concurrent(`a ${seconds} s hang with default timeouts`, () => {
  test("store operations", { timeout: (seconds + 120) * 1000 }, async () => {
    const { proxy, store } = await setup("store");
    await store.put("k", new Uint8Array([1]));
    let firstFailureAt: number | undefined;
    store.onAttemptFailure(() => {
      firstFailureAt ??= Date.now();
    });
    proxy.blackhole = true;
    const hangStart = Date.now();
    setTimeout(() => {
      proxy.blackhole = false;
    }, seconds * 1000);
    const results: { started: number; ms: number; ok: boolean; code?: string }[] = [];
    // Operations back to back, through the hang and past it.
    while (Date.now() - hangStart < seconds * 1000 + 15_000) {
      const started = Date.now();
      try {
        await store.get("k");
        results.push({ started: started - hangStart, ms: Date.now() - started, ok: true });
        if (started - hangStart > seconds * 1000) break;
      } catch (err) {
        results.push({
          started: started - hangStart,
          ms: Date.now() - started,
          ok: false,
          code: (err as { code?: string }).code,
        });
      }
    }
    const failed = results.filter((r) => !r.ok);
    const firstOk = results.find((r) => r.ok);
    console.log(
      [
        `store, ${seconds} s hang:`,
        `  operations: ${results.map((r) => `${s(r.started)}+${s(r.ms)} ${r.ok ? "ok" : r.code}`).join(", ")}`,
        `  longest failing operation: ${s(Math.max(...failed.map((r) => r.ms)))}`,
        `  first attempt failure reported after ${s(firstFailureAt! - hangStart)}`,
        `  first success ends ${s(firstOk!.started + firstOk!.ms - seconds * 1000)} after the endpoint is back`,
      ].join("\n"),
    );
    expect(failed.length).toBeGreaterThan(0);
    expect(firstOk).toBeDefined();
  });

  test("Replicator sync()", { timeout: (seconds + 180) * 1000 }, async () => {
    const { proxy, store } = await setup("replicator");
    const { dir, cleanup } = tempDir("pagecast-hang-");
    cleanups.push(cleanup);
    const db = join(dir, "app.db");
    const app = openApp(db);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
    const r = await Replicator.start({ db, store, syncInterval: 0 });
    cleanups.push(() => r.close().catch(() => {}));
    const insert = app.prepare("INSERT INTO t (v) VALUES (randomblob(2000))");
    let writing = true;
    const writer = (async () => {
      while (writing) {
        insert.run();
        await sleep(50);
      }
    })();
    let walPeak = 0;
    let failingShownAt: number | undefined;
    let hangStart = 0;
    const sampler = setInterval(() => {
      try {
        walPeak = Math.max(walPeak, statSync(`${db}-wal`).size);
      } catch {}
      if (hangStart && failingShownAt === undefined && r.stats().storageFailingSince !== null) {
        failingShownAt = Date.now();
      }
    }, 200);
    cleanups.push(() => clearInterval(sampler));
    await sleep(2000);
    await r.sync();
    proxy.blackhole = true;
    hangStart = Date.now();
    setTimeout(() => {
      proxy.blackhole = false;
    }, seconds * 1000);
    const syncs: { started: number; ms: number; ok: boolean; code?: string }[] = [];
    while (Date.now() - hangStart < seconds * 1000 + 20_000) {
      const started = Date.now();
      try {
        await r.sync();
        syncs.push({ started: started - hangStart, ms: Date.now() - started, ok: true });
        if (started - hangStart > seconds * 1000 + 5_000) break;
      } catch (err) {
        syncs.push({
          started: started - hangStart,
          ms: Date.now() - started,
          ok: false,
          code: (err as { code?: string }).code,
        });
      }
      await sleep(1000);
    }
    writing = false;
    await writer;
    const st = r.stats();
    console.log(
      [
        `Replicator, ${seconds} s hang (writes ~20 tx/s):`,
        `  syncs: ${syncs.map((x) => `${s(x.started)}+${s(x.ms)} ${x.ok ? "ok" : x.code}`).join(", ")}`,
        `  longest sync(): ${s(Math.max(...syncs.map((x) => x.ms)))}`,
        `  WAL peak: ${(walPeak / 1e6).toFixed(1)} MB`,
        `  stats().storageFailingSince set ${failingShownAt ? `${s(failingShownAt - hangStart)} into the hang` : "never"}`,
        `  stats().errors ${st.errors}, store errors ${st.store.errors}, retries ${st.store.retries}`,
      ].join("\n"),
    );
    expect(syncs.at(-1)!.ok).toBe(true);
  });
});
