/**
 * Retention: files older than the window go only when a kept snapshot covers
 * them, never while the head references them, and only after the grace
 * period; compaction merges runs and never spans a gap.
 */
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  HEAD_OBJECT_KEY,
  legacySkeletonKey,
  listAllLevels,
  parseHeadObject,
  type ReplicaFile,
  skeletonKey,
} from "../../src/layout/index.js";
import { compactionRuns } from "../../src/replicator/compactor.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { selectExpiredFiles } from "../../src/replicator/retention.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function f(level: number, minTXID: number, maxTXID: number, time: number): ReplicaFile {
  const key = `${level.toString(16).padStart(4, "0")}/${minTXID.toString(16).padStart(16, "0")}-${maxTXID.toString(16).padStart(16, "0")}.ltx`;
  return { level, minTXID, maxTXID, key, size: 1, lastModified: new Date(time), timestamp: time };
}

describe("retention rules", () => {
  const now = 100_000;
  const files = [
    f(9, 1, 10, 1000),
    f(0, 11, 11, 2000),
    f(0, 12, 12, 3000),
    f(1, 11, 12, 3500),
    f(9, 1, 12, 4000),
    f(0, 13, 13, 95_000),
    f(9, 1, 13, 96_000),
  ];
  const base = {
    files,
    now,
    retentionMs: 10_000,
    graceMs: 1000,
    leftHeadAt: new Map<string, number>(),
    fallbackLeftAt: 0,
  };

  test("keeps the newest snapshot older than the window and everything it does not cover", () => {
    const keys = selectExpiredFiles({ ...base, headKeys: new Set([files[6]!.key]) });
    expect(keys.sort()).toEqual(
      [files[1]!.key, files[2]!.key, files[3]!.key, files[0]!.key].sort(),
    );
  });

  test("never deletes head-referenced files or files within the grace period", () => {
    const leftHeadAt = new Map([[files[1]!.key, now - 500]]);
    const keys = selectExpiredFiles({ ...base, headKeys: new Set([files[2]!.key]), leftHeadAt });
    expect(keys).not.toContain(files[2]!.key);
    expect(keys).not.toContain(files[1]!.key);
    expect(keys).toContain(files[3]!.key);
  });

  test("a snapshot of an idle database (old commit time) covers older files only once it was uploaded before the window", () => {
    // The periodic snapshot 1-13 was uploaded just now but carries TXID 13's commit time, long ago.
    const idle = [
      f(9, 1, 10, 1000),
      f(0, 11, 11, 2000),
      f(0, 12, 12, 3000),
      f(0, 13, 13, 4000),
      { ...f(9, 1, 13, 4000), lastModified: new Date(now - 2000) },
    ];
    const headKeys = new Set([idle[4]!.key]);
    expect(selectExpiredFiles({ ...base, files: idle, headKeys })).toEqual([]);
    // Once that snapshot has been there for the whole window, what it covers goes.
    const later = { ...base, files: idle, headKeys, now: now + 9000 };
    expect(selectExpiredFiles(later).sort()).toEqual(
      [idle[0]!.key, idle[1]!.key, idle[2]!.key, idle[3]!.key].sort(),
    );
  });

  test("nothing without a snapshot", () => {
    expect(
      selectExpiredFiles({
        ...base,
        files: files.filter((x) => x.level !== 9),
        headKeys: new Set(),
      }),
    ).toEqual([]);
  });

  test("compaction runs split at gaps and start after the destination", () => {
    const src = [f(0, 3, 3, 0), f(0, 4, 4, 0), f(0, 5, 5, 0), f(0, 7, 7, 0), f(0, 8, 8, 0)];
    expect(compactionRuns(src, 3).map((r) => r.map((x) => x.minTXID))).toEqual([
      [4, 5],
      [7, 8],
    ]);
    expect(compactionRuns(src, 8)).toEqual([]);
  });
});

describe("retention keeps levels contiguous", () => {
  test("a level loses only its oldest files: one kept file keeps every newer one", () => {
    const files = [
      f(9, 1, 1, 100),
      f(0, 1, 1, 100),
      f(0, 2, 2, 200),
      f(0, 3, 3, 300),
      f(0, 4, 4, 400),
      f(1, 2, 3, 350),
      f(1, 4, 4, 450),
      f(9, 1, 4, 500),
      f(0, 5, 5, 90_000),
    ];
    // Level-0 TXID 2 is still within its grace period (it left a head late):
    // TXIDs 3 and 4 stay too, or level 0 would jump from 2 to 5.
    const keys = selectExpiredFiles({
      files,
      now: 100_000,
      retentionMs: 10_000,
      graceMs: 1000,
      headKeys: new Set([files[7]!.key, files[8]!.key]),
      leftHeadAt: new Map([[files[2]!.key, 99_500]]),
      fallbackLeftAt: 0,
    });
    expect(keys.sort()).toEqual(
      [files[0]!.key, files[1]!.key, files[5]!.key, files[6]!.key].sort(),
    );
    const level0 = files.filter((x) => x.level === 0 && !keys.includes(x.key));
    expect(level0.map((x) => x.minTXID)).toEqual([2, 3, 4, 5]);
  });
});

describe("retention in a running replicator", () => {
  test("old files are deleted, head files always exist, restore keeps working", async () => {
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
      retention: 150,
      retentionGrace: 50,
      snapshotInterval: 100,
    });
    cleanups.push(() => r.close());
    for (let i = 0; i < 30; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
      await r.sync();
      if (i % 5 === 4) await r.compactNow();
      await new Promise((res) => setTimeout(res, 20));
      const head = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
      const present = new Set((await listAllLevels(store)).map((x) => x.key));
      for (const hf of head.files) expect(present.has(hf.key), `head file ${hf.key}`).toBe(true);
    }
    expect(r.stats().retentionDeletes).toBeGreaterThan(10);
    const out = join(dir, "restored.db");
    await restore(store, out);
    expect(dumpFile(out)).toBe(dump(app));
  });
});

describe("retention and skeletons", () => {
  test("a deleted snapshot's skeleton goes under both names (an earlier writer's `.ltx` one too)", async () => {
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
      retention: 100,
      retentionGrace: 20,
      snapshotInterval: 50,
    });
    cleanups.push(() => r.close());
    // The first snapshot's skeleton, also under the name earlier writers gave it.
    const skeleton = await store.get(skeletonKey(1));
    if (skeleton.notModified) throw new Error("not modified");
    await store.put(legacySkeletonKey(1), skeleton.body);
    const first = "0009/0000000000000001-0000000000000001.ltx";
    for (let i = 0; i < 100; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
      await r.sync();
      await r.compactNow();
      if (!(await store.head(first))) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(await store.head(first), "the first snapshot expired").toBeUndefined();
    expect(await store.head(skeletonKey(1))).toBeUndefined();
    expect(await store.head(legacySkeletonKey(1))).toBeUndefined();
  }, 30_000);
});
