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
import { dump, dumpFile, level0History } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const { dir, app, store: inner, replicator } = await level0History(2000, cleanups);
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
