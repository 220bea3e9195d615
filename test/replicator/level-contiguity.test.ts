/**
 * Every level stays contiguous (issue 13, point 3), the way Litestream writes
 * a replica: each TXID, continuity breaks included, is a level-0 file; the
 * compaction levels never skip a TXID; retention only takes a level's oldest
 * files. Litestream relies on it: its restore (0.5.0-0.5.16) walks levels 8
 * to 0 and refuses any file that does not extend what it has, and its
 * follow mode fills level-0 gaps only from levels 1-8, never from a snapshot.
 *
 * The writer goes through every kind of continuity break it knows: a
 * database file replaced (diffed against the state it holds), a restart
 * after the database changed while nobody replicated (the replica's state
 * rebuilt from its files), a replacement with another page size (every
 * page, with a level-9 snapshot), with compactions in between. Then each
 * level, alone with the snapshots and the level-0 tail, must restore every
 * TXID it covers to what the application saw. (Retention's side: retention.test.ts.)
 */
import { renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach, describe, expect, test } from "vitest";
import { decodeLtx } from "../../src/format/index.js";
import {
  HEAD_OBJECT_KEY,
  listAllLevels,
  parseHeadObject,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { dump, dumpFile, openApp, tempDir, verifyAllFiles } from "./helpers.js";
import { byLevel, holes, litestreamPlan } from "./level-checks.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A store holding only `files` (and no head: restores plan from the files alone). */
async function storeOf(source: MemoryStore, files: readonly ReplicaFile[]): Promise<MemoryStore> {
  const out = new MemoryStore();
  for (const f of files) {
    const res = await source.get(f.key);
    if (res.notModified) throw new Error("not modified");
    await out.put(f.key, res.body);
  }
  return out;
}

describe("level contiguity", () => {
  test("continuity breaks, restarts and compactions leave no level with a hole; each level restores every TXID", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const store = new MemoryStore();
    /** The application's state at each TXID. */
    const states = new Map<number, string>();
    let app: Database.Database = openApp(dbPath);
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX tv ON t (v)");
    app.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
       INSERT INTO t (v) SELECT 'seed ' || i || ' ' || hex(randomblob(150)) FROM n`,
    );
    const options = { db: dbPath, store, syncInterval: 0, compaction: false as const };
    let r = await Replicator.start(options);
    cleanups.push(() => r.close());
    const record = async () => {
      const pos = await r.sync();
      states.set(pos.txid, dump(app));
      return pos.txid;
    };
    const writes = async (n: number, tag: string) => {
      for (let i = 0; i < n; i++) {
        app.prepare("INSERT INTO t (v) VALUES (?)").run(`${tag} ${i} ${"x".repeat(300)}`);
        await record();
      }
    };
    /** Replaces the database file with one `build` makes (rollback mode), as a restore or deploy would. */
    const replace = (build: (db: Database.Database) => void, from?: string) => {
      app.close();
      const otherPath = join(dir, "other.db");
      rmSync(otherPath, { force: true });
      if (from) renameSync(from, otherPath);
      const other = openApp(otherPath);
      other.pragma("journal_mode = delete");
      build(other);
      other.close();
      renameSync(otherPath, dbPath);
      rmSync(`${dbPath}-wal`, { force: true });
      rmSync(`${dbPath}-shm`, { force: true });
    };

    await record();
    await writes(6, "first");
    await r.compactNow();

    // 1. The file replaced by a copy with a few changes: the break's TXID is a
    // level-0 file holding what differs.
    const copy = join(dir, "copy.db");
    await app.backup(copy); // page for page (a VACUUM would move every page)
    replace((other) => other.prepare("UPDATE t SET v = 'changed' WHERE id = 3").run(), copy);
    const replaced = await r.sync();
    app = openApp(dbPath);
    states.set(replaced.txid, dump(app));
    expect(r.stats().continuityBreaks["database file replaced"]).toBe(1);
    await writes(4, "after replace");
    await r.compactNow();

    // 2. A restart after the database changed while nobody replicated (writes
    // checkpointed, the WAL truncated): the writer rebuilds the replica's
    // state from its files to publish what differs.
    await r.close();
    for (let i = 0; i < 20; i++) app.prepare("INSERT INTO t (v) VALUES (?)").run(`down ${i}`);
    app.pragma("wal_checkpoint(TRUNCATE)");
    app.prepare("INSERT INTO t (v) VALUES ('after checkpoint')").run();
    r = await Replicator.start(options);
    expect(
      Object.keys(r.stats().continuityBreaks).some((k) => k.startsWith("database changed")),
    ).toBe(true);
    const restarted = r.position.txid;
    states.set(restarted, dump(app));
    await writes(3, "after restart");

    // 3. Another page size: nothing to diff against, every page goes to level
    // 0 and a level-9 snapshot of that TXID follows.
    replace((other) => {
      other.pragma("page_size = 8192");
      other.exec("VACUUM"); // applies the page size in rollback mode
      other.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
      for (let i = 0; i < 40; i++) {
        other.prepare("INSERT INTO t (v) VALUES (?)").run(`big page ${i} ${"y".repeat(900)}`);
      }
    });
    const resized = await r.sync();
    app = openApp(dbPath);
    expect(app.pragma("page_size", { simple: true })).toBe(8192);
    states.set(resized.txid, dump(app));
    await writes(3, "after resize");
    await r.compactNow();
    await writes(2, "tail");
    await r.compactNow();
    await writes(2, "uncompacted");
    app.close();
    await r.close();

    const head = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
    const files = await listAllLevels(store);
    const levels = byLevel(files);
    expect(holes(files)).toEqual([]);
    // Level 0: every TXID from 1 to the head's, one file each.
    expect(levels.get(0)!.map((f) => [f.minTXID, f.maxTXID])).toEqual(
      Array.from({ length: head.txid }, (_, i) => [i + 1, i + 1]),
    );
    // Snapshots: the start's and the page size change's only (the other
    // breaks were level-0 diffs).
    expect(levels.get(SNAPSHOT_LEVEL)!.map((f) => f.maxTXID)).toEqual([1, resized.txid]);
    for (const level of [1, 2, 3]) {
      expect(levels.get(level)?.length, `level ${level}`).toBeGreaterThan(0);
      // Across levels: a compacted file spans whole files of the level below (never part of one).
      const below = levels.get(level - 1)!;
      for (const f of levels.get(level)!) {
        expect(
          below.some((b) => b.minTXID === f.minTXID),
          f.key,
        ).toBe(true);
        expect(
          below.some((b) => b.maxTXID === f.maxTXID),
          f.key,
        ).toBe(true);
      }
    }
    expect(await verifyAllFiles(store)).toBe(files.length);
    expect([...states.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: head.txid }, (_, i) => i + 1),
    );

    // The first two breaks published what differed, the page size change every page.
    const pages = async (txid: number) => {
      const res = await store.get(levels.get(0)![txid - 1]!.key);
      if (res.notModified) throw new Error("not modified");
      const { header, pages } = decodeLtx(res.body);
      return { pages: pages.length, commit: header.commit };
    };
    for (const txid of [replaced.txid, restarted]) {
      const { pages: n, commit } = await pages(txid);
      expect(n, `TXID ${txid}`).toBeLessThan(commit / 2);
    }
    const full = await pages(resized.txid);
    expect(full.pages).toBe(full.commit);

    // Litestream's plan works for every TXID.
    for (let txid = 1; txid <= head.txid; txid++) litestreamPlan(files, txid);

    // Each chain alone restores: the snapshots (a restore starts from the
    // newest one at or before its target: a chain never spans a page size
    // change), then one level (level 0 alone is what follow mode reads), then
    // level 0 after that level ends.
    const snapshots = levels.get(SNAPSHOT_LEVEL)!;
    for (const level of [0, 1, 2, 3]) {
      const own = levels.get(level)!;
      const end = own[own.length - 1]!.maxTXID;
      const chain = [...snapshots, ...own, ...levels.get(0)!.filter((f) => f.minTXID > end)];
      const only = await storeOf(store, chain);
      for (let txid = 1; txid <= head.txid; txid++) {
        const covered =
          txid > end ||
          own.some((f) => f.maxTXID === txid) ||
          snapshots.some((f) => f.maxTXID === txid);
        if (!covered) continue;
        const out = join(dir, `level${level}-${txid}.db`);
        await restore(only, out, { txid });
        expect(dumpFile(out), `level ${level}, TXID ${txid}`).toBe(states.get(txid));
      }
    }
  }, 60_000);
});
