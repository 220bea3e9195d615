/**
 * A restore whose planned files are deleted while it runs (review by a
 * helper): Litestream drops level-0 files a few minutes after compacting them
 * into level 1, and retention deletes what a newer snapshot covers; a large
 * restore from S3 easily runs longer. It planned once and failed with a raw
 * NotFoundError; it now plans the same target again and starts over.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { listAllLevels } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { RecordingStore } from "../vfs/helpers.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const { dir, cleanup } = tempDir("pagecast-restore-replan-");
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = app.prepare("INSERT INTO t (v) VALUES (?)");
  app.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run("x".repeat(200));
  })();
  const inner = new MemoryStore();
  const replicator = await Replicator.start({
    db: dbPath,
    store: inner,
    syncInterval: 0,
    retention: 0,
    compaction: { l1: 3_600_000, l2: 3_600_000, l3: 3_600_000 },
  });
  cleanups.push(() => replicator.close());
  for (let i = 1; i <= 3; i++) {
    app.prepare("UPDATE t SET v = ? WHERE id = ?").run("y".repeat(200), i * 50);
    await replicator.sync();
  }
  return { dir, app, inner, replicator };
}

test("a restore whose level-0 files are compacted and deleted while it downloads plans again and restores the same state", async () => {
  const { dir, app, inner, replicator } = await setup();
  const store = new RecordingStore(inner);
  let deleted: string[] = [];
  let started = false;
  store.beforeGet = async (key) => {
    // The first read of a level-0 file of the plan: Litestream-style, they are
    // compacted into level 1 and deleted before it gets there.
    if (!started && key.startsWith("0000/") && !key.includes("-0000000000000001.")) {
      started = true;
      await replicator.compactNow();
      deleted = (await listAllLevels(inner))
        .filter((f) => f.level === 0 && f.minTXID > 1)
        .map((f) => f.key);
      await inner.deleteMany(deleted);
    }
  };
  const out = join(dir, "restored.db");
  const result = await restore(store, out, { decodeThreads: 0 });
  expect(deleted.length).toBe(3);
  expect(result.txid).toBe(replicator.position.txid);
  expect(result.integrityCheck).toBe("quick");
  expect(dumpFile(out)).toBe(dump(app));
});

test("a restore whose files keep vanishing gives up with RESTORE_FAILED naming the file, and leaves nothing", async () => {
  const { dir, inner } = await setup();
  const store = new RecordingStore(inner);
  // Every file is gone by the time it is read (a listing that is always stale).
  store.beforeGet = (key) => {
    if (key.endsWith(".ltx"))
      throw Object.assign(new Error(`object not found: ${key}`), {
        code: "STORE_NOT_FOUND",
        key,
      });
  };
  const out = join(dir, "restored.db");
  const err = await restore(store, out, { decodeThreads: 0 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: "RESTORE_FAILED" });
  expect(String((err as Error).message)).toMatch(/missing after 3 plans \(.*\.ltx\)/);
  expect(existsSync(out)).toBe(false);
});
