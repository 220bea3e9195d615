import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { PagecastError } from "../../src/errors.js";
import { listAllLevels } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetOptions, ObjectStore } from "../../src/storage/object-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const CHUNK = 64 << 10;

/** Counts GETs in flight and the largest range asked for. */
function counting(inner: ObjectStore) {
  const stats = { inFlight: 0, maxInFlight: 0, maxRange: 0, ranged: 0 };
  const store: ObjectStore = {
    url: inner.url,
    async get(key: string, options?: GetOptions) {
      const r = options?.range;
      if (r) {
        stats.ranged++;
        stats.maxRange = Math.max(stats.maxRange, "length" in r ? r.length : r.suffix);
      }
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return await inner.get(key, options);
      } finally {
        stats.inFlight--;
      }
    },
    head: (k, o) => inner.head(k, o),
    put: (k, b, o) => inner.put(k, b, o),
    list: (o) => inner.list(o),
    deleteMany: (k, o) => inner.deleteMany(k, o),
    counters: () => inner.counters(),
    close: () => inner.close(),
  };
  return { store, stats };
}

/** A replica of a ~3 MB database (incompressible blobs: the snapshot spans many chunks) plus L0 files. */
async function replica() {
  const { dir, cleanup } = tempDir("pagecast-restore-stream-");
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => {
    app.close();
  });
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  const ins = app.prepare("INSERT INTO t (v) VALUES (randomblob(?))");
  app.transaction(() => {
    for (let i = 0; i < 750; i++) ins.run(4000);
  })();
  const store = new MemoryStore();
  const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, compaction: false });
  cleanups.push(() => r.close());
  for (let i = 0; i < 3; i++) {
    app.transaction(() => {
      for (let j = 0; j < 40; j++) ins.run(3000);
    })();
    app.prepare("DELETE FROM t WHERE id % 17 = ?").run(i);
    await r.sync();
  }
  return { dir, store, expected: dump(app), txid: r.position.txid };
}

describe("restore streams with bounded memory", () => {
  test("a database many chunks large restores exactly, never buffering more than the bound", async () => {
    const { dir, store: mem, expected, txid } = await replica();
    const files = await listAllLevels(mem);
    const snapshot = files.find((f) => f.level === 9)!;
    expect(snapshot.size).toBeGreaterThan(20 * CHUNK);
    expect(files.length).toBeGreaterThan(1);

    const { store, stats } = counting(mem);
    let maxBuffered = 0;
    const out = join(dir, "restored.db");
    const res = await restore(store, out, {
      chunkSize: CHUNK,
      concurrency: 4,
      onBuffered: (b) => {
        maxBuffered = Math.max(maxBuffered, b);
      },
    });
    expect(res.txid).toBe(txid);
    expect(res.checksumVerified).toBe("head");
    expect(dumpFile(out)).toBe(expected);
    expect(maxBuffered).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(4 * CHUNK);
    // Every LTX byte came through ranged GETs of at most one chunk, several at a time.
    expect(stats.maxRange).toBeLessThanOrEqual(CHUNK);
    expect(stats.ranged).toBeGreaterThan(20);
    expect(stats.maxInFlight).toBeGreaterThan(1);
    expect(stats.maxInFlight).toBeLessThanOrEqual(4 + 2); // + listing and head object
  });

  for (const damage of ["corrupt", "truncate"] as const) {
    test(`a ${damage === "corrupt" ? "corrupted" : "truncated"} snapshot fails with a typed error and leaves no file`, async () => {
      const { dir, store } = await replica();
      const snapshot = (await listAllLevels(store)).find((f) => f.level === 9)!;
      const got = await store.get(snapshot.key);
      const body = Uint8Array.from(got.body!);
      if (damage === "corrupt") {
        // In a page-data chunk well past the first chunks.
        const at = Math.floor(body.length * 0.7);
        body[at] = body[at]! ^ 0xff;
        await store.put(snapshot.key, body);
      } else {
        await store.put(snapshot.key, body.subarray(0, Math.floor(body.length * 0.6)));
      }
      const out = join(dir, "restored.db");
      const err = await restore(store, out, { chunkSize: CHUNK, concurrency: 3 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PagecastError);
      expect((err as PagecastError).code).toMatch(/^LTX_|^DOWNLOAD_/);
      expect(
        readdirSync(dir).filter((n) => n.startsWith("restored") || n.includes("restore")),
      ).toEqual([]);
    });
  }

  test("an object shorter than listed fails with DOWNLOAD_SIZE_MISMATCH and leaves no file", async () => {
    const { dir, store: mem } = await replica();
    const snapshot = (await listAllLevels(mem)).find((f) => f.level === 9)!;
    // The listing promises the full size; the object ends early.
    const short: ObjectStore = {
      ...counting(mem).store,
      async get(key, options) {
        const res = await mem.get(key, options);
        if (key !== snapshot.key || res.notModified) return res;
        const end = Math.floor(snapshot.size / 2);
        const body = res.body.subarray(0, Math.max(0, Math.min(res.body.length, end - res.offset)));
        return { ...res, body, meta: { ...res.meta, size: end } };
      },
    };
    const out = join(dir, "restored.db");
    await expect(restore(short, out, { chunkSize: CHUNK })).rejects.toMatchObject({
      code: "DOWNLOAD_SIZE_MISMATCH",
    });
    expect(readdirSync(dir).filter((n) => n.includes("restore"))).toEqual([]);
  });
});
