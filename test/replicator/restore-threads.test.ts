/**
 * Restore with decode threads, as users run it: the built package (its worker
 * script sits next to the pool; from the TypeScript sources the pool decodes
 * inline). Same database as a main-thread restore; a corrupt page fails the
 * restore from inside a thread and leaves no file. Needs `npm run build`
 * (`npm test` builds first).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { listAllLevels, SNAPSHOT_LEVEL } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const dist = resolve(__dirname, "../../dist");

interface DistApi {
  restore: typeof import("../../src/replicator/restore.js").restore;
}

let api: DistApi;
let dir: string;
let cleanup: () => void;
let store: MemoryStore;
let want: string;

beforeAll(async () => {
  expect(existsSync(join(dist, "replicator", "page-decode-worker.js")), "run `npm run build`").toBe(
    true,
  );
  api = (await import(pathToFileURL(join(dist, "node.js")).href)) as DistApi;
  ({ dir, cleanup } = tempDir("pagecast-restore-threads-"));
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  // Several MiB of compressible rows: many batches of frames per thread.
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const ins = app.prepare("INSERT INTO t (v) VALUES (?)");
  app.transaction(() => {
    for (let i = 0; i < 6000; i++) ins.run(`row ${i} `.repeat(1 + (i % 90)));
  })();
  store = new MemoryStore();
  const replicator = await Replicator.start({
    db: dbPath,
    store,
    syncInterval: 0,
    compaction: false,
  });
  app.prepare("UPDATE t SET v = 'changed' WHERE id % 7 = 0").run();
  await replicator.sync();
  await replicator.close();
  want = dump(app);
  app.close();
}, 120_000);

afterAll(async () => {
  await store?.close();
  cleanup?.();
});

describe("restore with decode threads (built package)", () => {
  test("threads and the main thread restore the same database", async () => {
    const files: Record<number, Buffer> = {};
    for (const decodeThreads of [2, 0]) {
      const out = join(dir, `restored-${decodeThreads}.db`);
      const r = await api.restore(store, out, { decodeThreads, chunkSize: 256 << 10 });
      expect(r.checksumVerified).not.toBe("none");
      expect(dumpFile(out)).toBe(want);
      files[decodeThreads] = readFileSync(out);
    }
    expect(files[2]!.equals(files[0]!)).toBe(true);
  });

  test("a corrupt page fails inside a thread; no file is left", async () => {
    const bad = new MemoryStore();
    try {
      const snapshots = new Set(
        (await listAllLevels(store)).filter((f) => f.level === SNAPSHOT_LEVEL).map((f) => f.key),
      );
      for (const { key } of (await store.list({})).objects) {
        const body = (await store.get(key)).body!;
        if (snapshots.has(key)) {
          // A byte well inside the page frames (not in the header or the index).
          body[Math.floor(body.length / 3)]! ^= 0x5a;
        }
        await bad.put(key, body);
      }
      const out = join(dir, "corrupt.db");
      const err = await api.restore(bad, out, { decodeThreads: 2 }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toMatch(/^LTX_/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await bad.close();
    }
  });
});
