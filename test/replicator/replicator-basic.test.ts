import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { HEAD_OBJECT_KEY, listAllLevels, parseHeadObject } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { dump, dumpFile, integrity, openApp, tempDir, verifyAllFiles } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An application database in a temporary directory, both removed after the test. */
function tempApp() {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => {
    app.close();
  });
  return { dir, dbPath, app };
}

describe("replicator basics", () => {
  test("snapshot on start, one L0 per sync, head, restore latest and past TXIDs", async () => {
    const { dir, dbPath, app } = tempApp();
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    app.prepare("INSERT INTO t (v) VALUES (?)").run("a");
    const store = new MemoryStore();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    cleanups.push(() => r.close());
    const p1 = r.position;
    expect(p1.txid).toBe(1);
    const dumps = new Map<number, string>([[p1.txid, dump(app)]]);
    for (let i = 0; i < 5; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i} ${"x".repeat(i * 500)}`);
      const pos = await r.sync();
      dumps.set(pos.txid, dump(app));
    }
    expect(r.position.txid).toBe(6);
    // Idle sync: no new TXID.
    expect((await r.sync()).txid).toBe(6);

    const files = await listAllLevels(store);
    // The first TXID goes to level 0 too (every level contiguous, as Litestream writes it).
    expect(files.map((f) => f.key)).toEqual([
      "0000/0000000000000001-0000000000000001.ltx",
      "0000/0000000000000002-0000000000000002.ltx",
      "0000/0000000000000003-0000000000000003.ltx",
      "0000/0000000000000004-0000000000000004.ltx",
      "0000/0000000000000005-0000000000000005.ltx",
      "0000/0000000000000006-0000000000000006.ltx",
      "0009/0000000000000001-0000000000000001.ltx",
    ]);
    // ...as the snapshot 1-1 itself, byte for byte (encoded once).
    const [l0, l9] = await Promise.all(
      [files[0]!.key, files[6]!.key].map(async (k) => (await store.get(k)).body!),
    );
    expect(Buffer.compare(l0!, l9!)).toBe(0);
    const headRes = await store.get(HEAD_OBJECT_KEY);
    const head = parseHeadObject(headRes.body!);
    expect(head.txid).toBe(6);
    expect(head.files.length).toBe(6);
    expect(head.postApplyChecksum).not.toBeNull();
    expect(await verifyAllFiles(store)).toBe(7);

    for (const [txid, expected] of dumps) {
      const out = join(dir, `restore-${txid}.db`);
      const res = await restore(store, out, { txid });
      expect(res.txid).toBe(txid);
      expect(dumpFile(out)).toBe(expected);
      expect(integrity(out)).toBe("ok");
    }
    const latest = join(dir, "latest.db");
    const res = await restore(store, latest);
    expect(res.checksumVerified).toBe("head");
    expect(dumpFile(latest)).toBe(dump(app));
  });

  test("by default a busy WAL gets PASSIVE checkpoints, not a TRUNCATE at every sync (Litestream's thresholds)", async () => {
    const { dbPath, app } = tempApp();
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v TEXT); CREATE INDEX t_k ON t (k)");
    const r = await Replicator.start({ db: dbPath, store: new MemoryStore(), syncInterval: 0 });
    cleanups.push(() => r.close());
    const insert = app.prepare("INSERT INTO t (k, v) VALUES (?, ?)");
    // About 16,000 WAL frames per sync (one-row transactions, two pages each):
    // past the old TRUNCATE threshold (10,000), far below Litestream's 121,359.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 8_000; i++) insert.run(`${(i * 7919) % 8_000}-${round}`, "x".repeat(40));
      await r.sync();
    }
    const { checkpoints } = r.stats();
    expect(checkpoints.truncate).toBe(0);
    expect(checkpoints.passive).toBe(2);
    expect(integrity(dbPath)).toBe("ok");
  });
});
