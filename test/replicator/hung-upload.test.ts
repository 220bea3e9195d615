/**
 * Issue 18: a hung upload (a PUT that never answers) must not block capture
 * or checkpoints: they go on at every sync interval, the WAL stays bounded as
 * in outage mode, and `stats()` shows storage failing as soon as an attempt
 * fails or the upload stalls past `uploadStallTimeout`, not only after every
 * retry. When the upload answers, the writer catches up.
 */
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore, StoreCounters } from "../../src/storage/object-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store whose L0 puts wait while `hang` is set, and whose error counter can be bumped (a failed attempt being retried). */
function hangingStore() {
  const inner = new MemoryStore();
  const ctl = { hang: undefined as Promise<void> | undefined, extraErrors: 0 };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === "put") {
        return async (key: string, ...rest: unknown[]) => {
          if (key.startsWith("0000/") && ctl.hang) await ctl.hang;
          return (target.put as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      if (prop === "counters") {
        return (): StoreCounters => {
          const c = target.counters();
          return { ...c, errors: c.errors + ctl.extraErrors };
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as ObjectStore;
  return { inner, store, ctl };
}

function setup() {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  return { dir, dbPath, app };
}

const FRAME = 24 + 4096;

describe("a hung upload", () => {
  test("capture and checkpoints go on, the WAL stays bounded, stats show the stall; the writer catches up", async () => {
    const { dir, dbPath, app } = setup();
    const { inner, store, ctl } = hangingStore();
    const truncatePages = 60;
    const r = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 20,
      checkpointPages: 10,
      truncatePages,
      compaction: false,
      uploadStallTimeout: 300,
    });
    cleanups.push(() => r.close());
    const insert = app.prepare("INSERT INTO t (v) VALUES (?)");
    insert.run(Buffer.alloc(1000, 1));
    await r.sync();
    const before = r.stats();

    let release!: () => void;
    ctl.hang = new Promise((res) => {
      release = res;
    });
    // Whatever happens, the upload answers in the end (close() waits for it).
    cleanups.push(() => release());
    const hungAt = Date.now();
    let maxWal = 0;
    let failingSeenAt: number | undefined;
    let written = 0;
    const bound = (truncatePages + 100) * FRAME + 32;
    // At least 2.5 s, and far more written than the bound allows.
    while (
      (Date.now() - hungAt < 2500 || written * 10_000 < 3 * bound) &&
      Date.now() - hungAt < 20_000
    ) {
      app.transaction(() => {
        for (let i = 0; i < 10; i++) insert.run(Buffer.alloc(1000, written & 255));
      })();
      written++;
      const s = r.stats();
      maxWal = Math.max(maxWal, s.walBytes);
      if (failingSeenAt === undefined && s.storageFailingSince !== null) failingSeenAt = Date.now();
      await sleep(2);
    }
    const during = r.stats();
    console.info(
      `[hung-upload] ${written} transactions during the hang: storage failing after ${
        failingSeenAt === undefined ? "never" : `${failingSeenAt - hungAt} ms`
      }, ${during.syncs - before.syncs} syncs, ${
        during.checkpoints.passive +
        during.checkpoints.truncate -
        before.checkpoints.passive -
        before.checkpoints.truncate
      } checkpoints, max WAL ${maxWal} bytes`,
    );
    // Capture ran on its own cadence, with checkpoints keeping the WAL bounded.
    expect(during.syncs - before.syncs).toBeGreaterThan(20);
    expect(during.checkpoints.passive + during.checkpoints.truncate).toBeGreaterThan(
      before.checkpoints.passive + before.checkpoints.truncate + 5,
    );
    expect(maxWal).toBeLessThanOrEqual(bound);
    expect(written * 10_000).toBeGreaterThanOrEqual(3 * bound);
    // The stall shows while the upload still hangs.
    expect(failingSeenAt).toBeDefined();
    expect(failingSeenAt! - hungAt).toBeLessThan(2000);
    expect(during.storageFailingSince).not.toBeNull();
    expect(during.health).toBe("storage-unavailable");
    expect(during.errors).toBeGreaterThan(before.errors);
    expect(during.pending.transactions).toBeGreaterThan(0);

    release();
    ctl.hang = undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const s = r.stats();
      if (s.storageFailingSince === null && s.pending.transactions === 0) break;
      await sleep(20);
    }
    const after = r.stats();
    expect(after.storageFailingSince).toBeNull();
    expect(after.snapshots).toBe(before.snapshots);
    await r.sync();
    const out = join(dir, "restored.db");
    await restore(inner, out);
    expect(dumpFile(out)).toBe(dump(app));
  }, 60_000);

  test("a failed attempt shows at once, before the store's retries give up", async () => {
    const { dbPath, app } = setup();
    const { store, ctl } = hangingStore();
    const r = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 20,
      compaction: false,
      uploadStallTimeout: 60_000,
    });
    cleanups.push(() => r.close());
    let release!: () => void;
    ctl.hang = new Promise((res) => {
      release = res;
    });
    cleanups.push(() => release());
    app.prepare("INSERT INTO t (v) VALUES (?)").run(Buffer.alloc(100));
    await sleep(200);
    expect(r.stats().storageFailingSince).toBeNull();
    // The store counts a failed attempt of the upload under way (its retry is still running).
    ctl.extraErrors++;
    const seen = Date.now();
    while (r.stats().storageFailingSince === null && Date.now() - seen < 5000) await sleep(10);
    expect(r.stats().storageFailingSince).not.toBeNull();
    expect(r.stats().lastError).toMatch(/failed attempt/);
    release();
    ctl.hang = undefined;
    await r.sync();
    expect(r.stats().storageFailingSince).toBeNull();
  }, 30_000);
});
