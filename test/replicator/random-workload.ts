/**
 * Acceptance: a random workload (inserts, updates, deletes, schema changes,
 * transactions larger than the checkpoint thresholds, VACUUM, app-issued
 * checkpoints including TRUNCATE, a replicator restart), then restores to the
 * latest and to >= 20 random past TXIDs each equal the primary's full dump at
 * that TXID and pass integrity_check.
 */
import { join } from "node:path";
import { afterEach, expect } from "vitest";
import { listAllLevels } from "../../src/layout/index.js";
import { lineLogger } from "../../src/replicator/logger.js";
import { Replicator, type ReplicatorOptions } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { dump, dumpFile, integrity, openApp, rng, tempDir, verifyAllFiles } from "./helpers.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Runs the workload against a store and checks the restores. */
export async function runWorkload(
  seed: number,
  makeStore: (dir: string) => ObjectStore,
): Promise<void> {
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const dbPath = join(dir, "primary.db");
  const app = openApp(dbPath, 50);
  cleanups.push(() => {
    app.close();
  });
  app.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)");
  const store = makeStore(dir);
  cleanups.push(() => store.close());
  const options: ReplicatorOptions = {
    db: dbPath,
    store,
    syncInterval: 0,
    checkpointPages: 40,
    truncatePages: 250,
    retention: 0,
    ...(process.env.PAGECAST_DEBUG
      ? { logger: lineLogger((l) => process.stdout.write(l), { debug: true }) }
      : {}),
  };
  let r = await Replicator.start(options);
  cleanups.push(() => r.close());
  const dumps = new Map<number, string>([[r.position.txid, dump(app)]]);
  const tables = ["items"];
  let extraTables = 0;
  const ops = {
    insert() {
      const n = 1 + Math.floor(rand() * 20);
      const stmt = app.prepare(`INSERT INTO items (name, body, n) VALUES (?, ?, ?)`);
      app.transaction(() => {
        for (let i = 0; i < n; i++)
          stmt.run(
            `name-${rand()}`,
            Buffer.alloc(Math.floor(rand() * 800), Math.floor(rand() * 256)),
            i,
          );
      })();
    },
    update() {
      app
        .prepare("UPDATE items SET name = ?, n = n + 1 WHERE id % ? = 0")
        .run(`u-${rand()}`, 2 + Math.floor(rand() * 7));
    },
    delete() {
      app.prepare("DELETE FROM items WHERE id % ? = 1").run(3 + Math.floor(rand() * 10));
    },
    schema() {
      const choice = rand();
      if (choice < 0.4) {
        const name = `extra_${extraTables++}`;
        app.exec(`CREATE TABLE ${name} (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID`);
        app.prepare(`INSERT INTO ${name} VALUES (?, ?)`).run(`k${rand()}`, Buffer.alloc(100, 7));
        tables.push(name);
      } else if (choice < 0.6) {
        app.exec(`CREATE INDEX IF NOT EXISTS idx_items_n_${extraTables} ON items (n, name)`);
      } else if (choice < 0.8 && tables.length > 1) {
        const name = tables.pop()!;
        app.exec(`DROP TABLE ${name}`);
      } else {
        app.exec(`ALTER TABLE items ADD COLUMN c${extraTables++} TEXT DEFAULT 'd'`);
      }
    },
    large() {
      // Larger than both checkpoint thresholds (40 and 250 pages).
      const stmt = app.prepare(`INSERT INTO items (name, body, n) VALUES (?, ?, ?)`);
      app.transaction(() => {
        for (let i = 0; i < 300; i++) stmt.run(`big-${i}`, Buffer.alloc(1500, i & 255), i);
      })();
    },
    vacuum() {
      app.exec("VACUUM");
    },
    appTruncate() {
      app.pragma("wal_checkpoint(TRUNCATE)");
    },
    appPassive() {
      app.pragma("wal_checkpoint(PASSIVE)");
    },
  };
  const weighted: (keyof typeof ops)[] = [
    ...Array<keyof typeof ops>(10).fill("insert"),
    ...Array<keyof typeof ops>(5).fill("update"),
    ...Array<keyof typeof ops>(4).fill("delete"),
    "schema",
    "schema",
    "large",
    "vacuum",
    "appTruncate",
    "appPassive",
  ];
  for (let step = 0; step < 140; step++) {
    const ops_n = 1 + Math.floor(rand() * 3);
    for (let i = 0; i < ops_n; i++) {
      const op = pick(weighted);
      if (process.env.PAGECAST_DEBUG) console.log(`step ${step} ${op}`);
      ops[op]();
    }
    const pos = await r.sync();
    dumps.set(pos.txid, dump(app));
    if (step % 37 === 36) await r.compactNow();
    if (step === 70) {
      await r.close();
      r = await Replicator.start(options);
    }
  }
  const final = await r.sync();
  dumps.set(final.txid, dump(app));
  await r.compactNow();
  const stats = r.stats();
  if (process.env.PAGECAST_DEBUG) console.log(JSON.stringify({ ...stats, store: undefined }));
  expect(stats.checkpoints.passive + stats.checkpoints.truncate).toBeGreaterThan(0);
  expect(stats.compactions[1]).toBeGreaterThan(0);

  // Every file the replicator wrote decodes and verifies.
  expect(await verifyAllFiles(store)).toBeGreaterThan(10);
  const levels = new Set((await listAllLevels(store)).map((f) => f.level));
  expect([...levels].sort()).toEqual([0, 1, 2, 3, 9]);

  const latest = join(dir, "latest.db");
  const res = await restore(store, latest);
  expect(res.txid).toBe(final.txid);
  expect(dumpFile(latest)).toBe(dump(app));
  expect(integrity(latest)).toBe("ok");

  const txids = [...dumps.keys()];
  const targets = new Set<number>();
  while (targets.size < Math.min(24, txids.length)) targets.add(pick(txids));
  for (const txid of targets) {
    const out = join(dir, `at-${txid}.db`);
    const got = await restore(store, out, { txid, integrityCheck: false });
    expect(got.txid).toBe(txid);
    expect(dumpFile(out), `state at TXID ${txid}`).toBe(dumps.get(txid));
    expect(integrity(out)).toBe("ok");
  }
}
