/** Shared helpers of the replicator tests. */

import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { decodeLtx } from "../../src/format/index.js";
import { listAllLevels } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix = "pagecast-repl-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Opens an "application" connection in WAL mode. */
export function openApp(path: string, timeout = 5000): Database.Database {
  const db = new Database(path, { timeout });
  db.pragma("journal_mode = wal");
  return db;
}

/**
 * A full logical dump (schema, every row of every table, user_version) as a
 * digest: comparing digests equals comparing dumps, without building
 * megabytes of text per recorded TXID.
 */
export function dump(db: Database.Database): string {
  const h = createHash("sha256");
  const objects = db
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
    .all() as { type: string; name: string; sql: string | null }[];
  const summary: string[] = [];
  for (const o of objects) h.update(`${o.type} ${o.name}: ${o.sql ?? ""}\n`);
  for (const o of objects) {
    if (o.type !== "table" || o.name.startsWith("sqlite_")) continue;
    const rows = db
      .prepare(`SELECT * FROM "${o.name.replaceAll('"', '""')}" ORDER BY 1, 2`)
      .raw()
      .iterate() as IterableIterator<unknown[]>;
    let n = 0;
    for (const row of rows) {
      n++;
      for (const v of row) {
        if (v instanceof Uint8Array) h.update("b").update(v);
        else h.update(`${typeof v}:${String(v)}`);
        h.update("\u0000");
      }
      h.update("\n");
    }
    summary.push(`${o.name}=${n}`);
  }
  h.update(`user_version=${db.pragma("user_version", { simple: true })}`);
  return `${summary.join(",")} ${h.digest("hex")}`;
}

/** Dump of a database file (opened read-write briefly so WAL-mode files open without a -shm). */
export function dumpFile(path: string): string {
  const db = new Database(path, { fileMustExist: true });
  try {
    return dump(db);
  } finally {
    db.close();
  }
}

/** `PRAGMA integrity_check` of a file. */
export function integrity(path: string): string {
  const db = new Database(path, { fileMustExist: true });
  try {
    return (db.pragma("integrity_check") as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join("; ");
  } finally {
    db.close();
  }
}

/** Decodes (fully verifying) every LTX file in the store; returns how many. */
export async function verifyAllFiles(store: ObjectStore): Promise<number> {
  const files = await listAllLevels(store);
  for (const f of files) {
    const res = await store.get(f.key);
    if (res.notModified) throw new Error("not modified");
    const d = decodeLtx(res.body);
    if (d.header.minTXID !== f.minTXID || d.header.maxTXID !== f.maxTXID) {
      throw new Error(`${f.key}: header TXIDs ${d.header.minTXID}-${d.header.maxTXID}`);
    }
  }
  return files.length;
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A database of `rows` rows replicated to a MemoryStore as a snapshot and
 * three level-0 files (retention on, compaction only when asked): the shape
 * Litestream leaves until it compacts level 0 and drops those files.
 * Everything it opens is closed by the functions pushed to `cleanups`.
 */
export async function level0History(
  rows: number,
  cleanups: (() => unknown)[],
): Promise<{ dir: string; app: Database.Database; store: MemoryStore; replicator: Replicator }> {
  const { dir, cleanup } = tempDir("pagecast-level0-");
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = app.prepare("INSERT INTO t (v) VALUES (?)");
  app.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run("x".repeat(200));
  })();
  const store = new MemoryStore();
  const replicator = await Replicator.start({
    db: dbPath,
    store,
    syncInterval: 0,
    retention: 0,
    compaction: { l1: 3_600_000, l2: 3_600_000, l3: 3_600_000 },
  });
  cleanups.push(() => replicator.close());
  for (let i = 1; i <= 3; i++) {
    app.prepare("UPDATE t SET v = ? WHERE id = ?").run("y".repeat(200), i * 50);
    await replicator.sync();
  }
  return { dir, app, store, replicator };
}
