import { randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
} from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import { decodeLtx } from "../../src/format/index.js";
import { listAllLevels } from "../../src/layout/index.js";
import type { UploadableLtx } from "../../src/replicator/ltx-builder.js";
import { disposeLtx, putLtx, storedLtxMatches } from "../../src/replicator/ltx-upload.js";
import { PageChecksums } from "../../src/replicator/page-checksums.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { SkeletonCollector } from "../../src/replicator/skeleton.js";
import { buildSnapshot } from "../../src/replicator/snapshotter.js";
import { FileStore } from "../../src/storage/file-store.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { PreconditionFailedError } from "../../src/storage/store-errors.js";
import { dumpFile, tempDir } from "./helpers.js";

const tmp = tempDir("pagecast-spool-");
afterAll(() => tmp.cleanup());

/** A rollback-journal database of about `rows` KiB of incompressible rows. */
function makeDb(name: string, rows: number): string {
  const path = join(tmp.dir, name);
  const db = new Database(path);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(randomBytes(1000));
  })();
  db.close();
  return path;
}

async function snapshotOf(
  path: string,
  extra: { spoolDir?: string; spoolAfter?: number },
): Promise<{
  enc: UploadableLtx;
  checksum: bigint;
  skeleton: ReturnType<SkeletonCollector["finish"]>;
}> {
  const fd = openSync(path, "r");
  try {
    const pageSize = 4096;
    const commit = Math.floor(fstatSync(fd).size / pageSize);
    const checksums = new PageChecksums();
    const collector = new SkeletonCollector({ pageSize, commit, txid: 7, timestamp: 1234 });
    const enc = await buildSnapshot({
      db: fd,
      wal: undefined,
      walPages: new Map(),
      salts: { salt1: 0, salt2: 0 },
      pageSize,
      commit,
      txid: 7,
      timestamp: 1234,
      walOffset: 32,
      walSize: 0,
      checksums,
      onPage: (pgno, page) => collector.add(pgno, page),
      ...extra,
    });
    return { enc, checksum: checksums.value, skeleton: collector.finish() };
  } finally {
    closeSync(fd);
  }
}

async function bytesOf(enc: UploadableLtx): Promise<Uint8Array> {
  if (enc.bytes) return enc.bytes;
  const parts: Uint8Array[] = [];
  for await (const c of enc.spool) parts.push(c.slice());
  return Buffer.concat(parts);
}

describe("snapshots spooled to a temp file", () => {
  test("a spooled snapshot has the same bytes, layout, checksums and skeleton as one in memory", async () => {
    const path = makeDb("a.db", 3000);
    const spoolDir = join(tmp.dir, "spool-a");
    mkdirSync(spoolDir);
    const mem = await snapshotOf(path, {});
    const spooled = await snapshotOf(path, { spoolDir, spoolAfter: 64 * 1024 });
    expect(mem.enc.bytes).toBeDefined();
    expect(spooled.enc.bytes).toBeUndefined();
    expect(spooled.enc.spool).toBeDefined();
    // The temp file has no name while it is in use: nothing is left behind by a crash.
    expect(readdirSync(spoolDir)).toEqual([]);
    const a = await bytesOf(mem.enc);
    const b = await bytesOf(spooled.enc);
    expect(Buffer.compare(a, b)).toBe(0);
    // The spool can be read again (a failed upload is retried with the same bytes).
    expect(Buffer.compare(await bytesOf(spooled.enc), a)).toBe(0);
    if (!spooled.enc.spool) throw new Error("expected a spooled snapshot");
    const trailer = spooled.enc.trailer;
    expect(spooled.enc).toMatchObject({
      header: mem.enc.header,
      size: a.length,
      indexOffset: mem.enc.indexOffset,
      indexSize: mem.enc.indexSize,
      pageCount: mem.enc.pageCount,
      page1: mem.enc.page1,
    });
    expect(Array.from(trailer)).toEqual(Array.from(a.subarray(a.length - 16)));
    expect(spooled.checksum).toBe(mem.checksum);
    expect(spooled.skeleton?.enc.bytes).toEqual(mem.skeleton?.enc.bytes);
    const decoded = decodeLtx(b);
    expect(decoded.pages.length).toBe(mem.enc.pageCount);
    disposeLtx(spooled.enc);
    disposeLtx(spooled.enc);
    await expect(bytesOf(spooled.enc)).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  for (const kind of ["memory", "file"] as const) {
    test(`putLtx streams a spooled snapshot into a ${kind} store; a retry recognises its own object`, async () => {
      const path = makeDb(`${kind}.db`, 12_000);
      const spoolDir = join(tmp.dir, `spool-${kind}`);
      mkdirSync(spoolDir);
      const store: ObjectStore =
        kind === "memory"
          ? new MemoryStore()
          : new FileStore({ root: join(tmp.dir, `store-${kind}`) });
      const { enc } = await snapshotOf(path, { spoolDir, spoolAfter: 1 << 20 });
      expect(enc.spool).toBeDefined();
      expect(enc.size).toBeGreaterThan(9 << 20);
      const key = "0009/0000000000000001-0000000000000007.ltx";
      expect(await storedLtxMatches(store, key, enc)).toBe(false);
      await putLtx(store, key, enc, { ifNoneMatch: "*" });
      const stored = await store.get(key);
      expect(Buffer.compare(stored.body!, await bytesOf(enc))).toBe(0);
      await expect(putLtx(store, key, enc, { ifNoneMatch: "*" })).rejects.toBeInstanceOf(
        PreconditionFailedError,
      );
      expect(await storedLtxMatches(store, key, enc)).toBe(true);
      // Another writer's file under the key is told apart.
      const other = await snapshotOf(path, { spoolDir, spoolAfter: 1 << 20 });
      if (!other.enc.spool) throw new Error("expected a spooled snapshot");
      const foreign: UploadableLtx = { ...other.enc, trailer: other.enc.trailer.map((x) => x ^ 1) };
      expect(await storedLtxMatches(store, key, foreign)).toBe(false);
      disposeLtx(other.enc);
      disposeLtx(enc);
      await store.close();
    });
  }

  test("without a usable spool directory the snapshot stays in memory", async () => {
    const path = makeDb("d.db", 1500);
    const { enc } = await snapshotOf(path, {
      spoolDir: join(tmp.dir, "no-such-directory"),
      spoolAfter: 4096,
    });
    expect(enc.spool).toBeUndefined();
    expect(decodeLtx(enc.bytes!).pages.length).toBe(enc.pageCount);
  });

  test("a failed build releases its temp file", async () => {
    const path = makeDb("c.db", 500);
    const spoolDir = join(tmp.dir, "spool-c");
    mkdirSync(spoolDir);
    const openFds = () => (existsSync("/proc/self/fd") ? readdirSync("/proc/self/fd").length : 0);
    const fd = openSync(path, "r");
    const before = openFds();
    let seen = 0;
    try {
      await expect(
        buildSnapshot({
          db: fd,
          wal: undefined,
          walPages: new Map(),
          salts: { salt1: 0, salt2: 0 },
          pageSize: 4096,
          commit: 100,
          txid: 1,
          timestamp: 0,
          walOffset: 32,
          walSize: 0,
          spoolDir,
          spoolAfter: 4096,
          onPage: () => {
            if (++seen === 50) throw new Error("reader failed");
          },
        }),
      ).rejects.toThrow("reader failed");
    } finally {
      closeSync(fd);
    }
    expect(seen).toBe(50);
    expect(openFds()).toBe(Math.max(0, before - 1));
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  test("the Replicator spools a large snapshot next to the database and restores it", async () => {
    const dir = join(tmp.dir, "replicated");
    mkdirSync(dir);
    const db = join(dir, "big.db");
    const path = makeDb("source.db", 11_000);
    copyFileSync(path, db);
    const store = new FileStore({ root: join(tmp.dir, "replica"), fsync: false });
    const seen: string[] = [];
    const r = await Replicator.start({ db, store, syncInterval: 0, compaction: false });
    try {
      await r.sync();
      expect(r.stats().snapshots).toBe(1);
      // More than one part's worth: this snapshot went through a spool file.
      expect(r.stats().bytesUploaded).toBeGreaterThan(10 << 20);
      for (const name of readdirSync(dir)) seen.push(name);
    } finally {
      await r.close();
    }
    // No spool file is left next to the database.
    expect(seen.filter((n) => n.includes("spool"))).toEqual([]);
    // TXID 1's level-0 file and the snapshot 1-1 came from the same spool: the same body twice.
    const first = (await listAllLevels(store)).filter((f) => f.minTXID === 1 && f.maxTXID === 1);
    expect(first.map((f) => f.level)).toEqual([0, 9]);
    const [a, b] = await Promise.all(first.map(async (f) => (await store.get(f.key)).body!));
    expect(a!.length).toBeGreaterThan(10 << 20);
    expect(Buffer.compare(a!, b!)).toBe(0);
    const out = join(tmp.dir, "restored.db");
    const res = await restore(store, out);
    expect(res.checksumVerified).toBe("head");
    expect(dumpFile(out)).toBe(dumpFile(db));
    await store.close();
  });
});
