/**
 * A pagecast writer taking over a replica Litestream wrote (the reference
 * fixtures: A with levels 0, 1 and 9, E a young replica with level 0 only)
 * keeps every level contiguous the way Litestream would have (issue 13,
 * point 3): its first TXID continues the chain as a level-0 file holding
 * only what differs from the replica's state (rebuilt from the Litestream
 * files), a level-9 snapshot comes when the replica has none, and
 * compaction continues each level where Litestream left it. Litestream's
 * level-by-level restore plan then works at every TXID.
 */
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { decodeLtx } from "../../src/format/index.js";
import { listAllLevels, SNAPSHOT_LEVEL } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { dump, dumpFile, openApp, tempDir } from "../replicator/helpers.js";
import { holes, litestreamPlan } from "../replicator/level-checks.js";
import { fixtureReplicas, fixtureStatePath } from "./fixtures.js";

const tmp = tempDir("pagecast-handover-");
afterAll(() => tmp.cleanup());

describe("a pagecast writer continues a Litestream replica", () => {
  const fixtures = fixtureReplicas().filter((f) => f.layout === "s3" && /^[AE]-/.test(f.name));

  test.each(fixtures.map((f) => [f.name, f] as const))("%s", async (name, fixture) => {
    const store = new MemoryStore();
    for (const f of fixture.files) {
      await store.put(relative(fixture.dir, f.path), readFileSync(f.path));
    }
    const dbPath = join(tmp.dir, `${name}.db`);
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, autoRestore: true });
    const app = openApp(dbPath);
    const count = (db: typeof app) =>
      (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n;
    const counts = new Map<number, number>();
    try {
      // The restored database is Litestream's last state; the writer's first TXID follows it.
      expect(dump(app)).toBe(dumpFile(fixtureStatePath(6)));
      expect(r.position.txid).toBe(7);
      for (let i = 0; i < 3; i++) {
        app.prepare("INSERT INTO t (v) VALUES (?)").run(`pagecast ${i}`);
        counts.set((await r.sync()).txid, count(app));
      }
      await r.compactNow();
      app.prepare("INSERT INTO t (v) VALUES ('last')").run();
      counts.set((await r.sync()).txid, count(app));
    } finally {
      await r.close();
    }
    const files = await listAllLevels(store);
    expect(holes(files)).toEqual([]);
    expect(
      files.filter((f) => f.level === 0).map((f) => f.maxTXID),
      "level 0: every TXID",
    ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // TXID 7 brings Litestream's state to the same database: page 1 (its header moves) and no more.
    const seven = await store.get("0000/0000000000000007-0000000000000007.ltx");
    if (seven.notModified) throw new Error("not modified");
    expect(decodeLtx(seven.body).pages.map((p) => p.pgno)).toEqual([1]);
    // A snapshot only where the replica had none (the head's plan starts from one).
    const snapshots = files.filter((f) => f.level === SNAPSHOT_LEVEL).map((f) => f.maxTXID);
    expect(snapshots).toEqual(name.startsWith("A-") ? [3] : [7]);
    // Level 1 continues after what Litestream compacted (A: 1-4) or after TXID 1 (E).
    const level1 = files.filter((f) => f.level === 1).map((f) => [f.minTXID, f.maxTXID]);
    expect(level1).toEqual(
      name.startsWith("A-")
        ? [
            [1, 4],
            [5, 10],
          ]
        : [[2, 10]],
    );
    for (let txid = 1; txid <= 11; txid++)
      expect(litestreamPlan(files, txid).at(-1)!.maxTXID).toBe(txid);
    const out = join(tmp.dir, `${name}-restored.db`);
    await restore(store, out);
    const check = openApp(dbPath);
    try {
      expect(dumpFile(out)).toBe(dump(check));
    } finally {
      check.close();
    }
    // Replicas read the same plans (A's run through level 3's 1-10, a snapshot after 1-3).
    for (const at of [undefined, { txid: 10 }]) {
      const replica = await openReplica({ store, wasm: readSqliteWasm, ...(at ? { at } : {}) });
      try {
        expect(await replica.values("SELECT count(*) FROM t")).toEqual([
          [counts.get(at ? 10 : 11)],
        ]);
      } finally {
        await replica.close();
      }
    }
    const past = join(tmp.dir, `${name}-4.db`);
    await restore(store, past, { txid: 4 });
    expect(dumpFile(past)).toBe(dumpFile(fixtureStatePath(4)));
    app.close();
  });
});
