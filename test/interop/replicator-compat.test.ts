/**
 * `ltxCompat: "0.5.1"` through the writer (issue 13, point 4): every object
 * a replicator publishes with it (level-0 files, continuity breaks,
 * compactions, periodic snapshots, skeletons) is read by the v0.5.1 reader
 * written from the specification (`ltx-v051-reader.ts`), in process and from
 * `pagecast replicate --ltx-compat 0.5.1` run as users run it. Without the
 * option, that reader refuses the replica's pages (the default encoding is
 * unchanged), and bad values are refused up front.
 */
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { decodeLtx } from "../../src/format/index.js";
import { listAllLevels, SKELETON_PREFIX } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { dump, dumpFile, openApp, tempDir } from "../replicator/helpers.js";
import { ensureBuilt, pagecast, sleep, sqlite3, startDaemon } from "../replicator/processes.js";
import { decodeV051, V051Error } from "./ltx-v051-reader.js";

const tmp = tempDir("pagecast-repl-compat-");
afterAll(() => tmp.cleanup());
beforeAll(() => ensureBuilt());

async function body(store: ObjectStore, key: string): Promise<Uint8Array> {
  const res = await store.get(key);
  if (res.notModified) throw new Error("not modified");
  return res.body;
}

/** Every published object that is an LTX file: level files and skeletons. */
async function ltxObjects(store: ObjectStore): Promise<string[]> {
  const keys = (await listAllLevels(store)).map((f) => f.key);
  const skeletons = await store.list({ prefix: SKELETON_PREFIX });
  return [...keys, ...skeletons.objects.map((o) => o.key)];
}

/** What the v0.5.1 reader says of each object (undefined: read, pages as pagecast reads them). */
async function v051Verdicts(store: ObjectStore): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const key of await ltxObjects(store)) {
    const bytes = await body(store, key);
    try {
      const file = decodeV051(bytes);
      const ours = decodeLtx(bytes);
      const same =
        file.pages.size === ours.pages.length &&
        ours.pages.every((p) => Buffer.compare(file.pages.get(p.pgno)!, p.data) === 0);
      out.set(key, same ? undefined : "pages differ from pagecast's decoder");
    } catch (err) {
      if (!(err instanceof V051Error)) throw err;
      out.set(key, err.message);
    }
  }
  return out;
}

/** A replicator's life touching every producer: syncs, a continuity break, compactions, a periodic snapshot. */
async function replicate(
  name: string,
  ltxCompat?: "0.5.1",
): Promise<{ store: FileStore; expected: string }> {
  const dir = join(tmp.dir, name);
  const dbPath = join(dir, "app.db");
  const store = new FileStore({ root: join(dir, "replica") });
  mkdirSync(dir, { recursive: true });
  let app = openApp(dbPath);
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  app.exec(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
     INSERT INTO t (v) SELECT 'row ' || i || ' ' || hex(randomblob(100)) FROM n`,
  );
  const r = await Replicator.start({
    db: dbPath,
    store,
    syncInterval: 0,
    snapshotInterval: 200,
    ...(ltxCompat ? { ltxCompat } : {}),
  });
  try {
    for (let i = 0; i < 4; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`w${i}`);
      await r.sync();
    }
    // A continuity break: the file replaced by a copy with a change.
    const copy = join(dir, "copy.db");
    await app.backup(copy);
    app.close();
    const other = openApp(copy);
    other.pragma("journal_mode = delete");
    other.prepare("UPDATE t SET v = 'changed' WHERE id = 7").run();
    other.close();
    renameSync(copy, dbPath);
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });
    await r.sync();
    app = openApp(dbPath);
    for (let i = 0; i < 3; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`after ${i}`);
      await r.sync();
    }
    await r.compactNow();
    // The periodic snapshot (with its skeleton) at the current TXID.
    await sleep(250);
    await r.sync();
    expect(r.stats().snapshots).toBeGreaterThanOrEqual(2);
    const expected = dump(app);
    return { store, expected };
  } finally {
    app.close();
    await r.close();
  }
}

describe('the writer with ltxCompat "0.5.1"', () => {
  test("every object it publishes is read by ltx v0.5.1's rules; the replica restores", async () => {
    const { store, expected } = await replicate("compat", "0.5.1");
    const verdicts = await v051Verdicts(store);
    const keys = [...verdicts.keys()];
    // Every producer took part: level 0, a compaction level, snapshots, skeletons.
    for (const prefix of ["0000/", "0001/", "0009/", SKELETON_PREFIX]) {
      expect(keys.filter((k) => k.startsWith(prefix)).length, prefix).toBeGreaterThan(0);
    }
    expect(keys.filter((k) => k.startsWith("0009/")).length).toBeGreaterThanOrEqual(2);
    expect([...verdicts].filter(([, v]) => v !== undefined)).toEqual([]);
    const out = join(tmp.dir, "compat-restored.db");
    await restore(store, out);
    expect(dumpFile(out)).toBe(expected);
  }, 60_000);

  test("by default the pages are LZ4 blocks, which ltx v0.5.1 refuses", async () => {
    const { store } = await replicate("default");
    const verdicts = await v051Verdicts(store);
    const refused = [...verdicts.values()].filter((v) => v !== undefined);
    expect(refused.length).toBe(verdicts.size);
    expect(refused[0]).toMatch(/no flags allowed/);
  }, 60_000);

  test("an unknown value is refused (INVALID_OPTION, naming the valid ones)", async () => {
    await expect(
      Replicator.start({
        db: join(tmp.dir, "none.db"),
        store: new FileStore({ root: join(tmp.dir, "none") }),
        ltxCompat: "0.4" as "0.5.1",
      }),
    ).rejects.toMatchObject({ code: "INVALID_OPTION", message: expect.stringMatching(/0\.5\.1/) });
  });
});

describe("pagecast replicate --ltx-compat", () => {
  test("0.5.1: what the daemon publishes is read by ltx v0.5.1's rules", async () => {
    const db = join(tmp.dir, "cli.db");
    await sqlite3(db, "PRAGMA journal_mode=WAL", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const rep = join(tmp.dir, "cli-replica");
    const daemon = startDaemon(db, pathToFileURL(rep).href, [
      "--sync-interval",
      "50ms",
      "--l1-interval",
      "300ms",
      "--ltx-compat",
      "0.5.1",
    ]);
    await daemon.ready;
    const store = new FileStore({ root: rep });
    // Writes from another process, each reaching the replica before the next
    // (one level-0 file each), until a compaction has run too.
    let compacted = false;
    for (let i = 0; i < 100 && !compacted; i++) {
      await sqlite3(db, `INSERT INTO t (v) VALUES ('cli ${i}')`);
      await sleep(100);
      compacted = (await listAllLevels(store)).some((f) => f.level === 1);
    }
    expect(await daemon.stop("SIGTERM"), daemon.stderr()).toBe(0);
    const verdicts = await v051Verdicts(store);
    const keys = [...verdicts.keys()];
    for (const prefix of ["0000/", "0001/", "0009/", SKELETON_PREFIX]) {
      expect(keys.filter((k) => k.startsWith(prefix)).length, prefix).toBeGreaterThan(0);
    }
    expect(keys.filter((k) => k.startsWith("0000/")).length).toBeGreaterThanOrEqual(3);
    expect([...verdicts].filter(([, v]) => v !== undefined)).toEqual([]);
    await store.close();
  }, 60_000);

  test("an unknown value is a usage error before anything starts", async () => {
    const db = join(tmp.dir, "cli-bad.db");
    await sqlite3(db, "PRAGMA journal_mode=WAL", "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    const rep = join(tmp.dir, "cli-bad-replica");
    const res = await pagecast(["replicate", db, pathToFileURL(rep).href, "--ltx-compat", "0.6"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--ltx-compat must be one of .*0\.5\.1/);
    expect((await listAllLevels(new FileStore({ root: rep }))).length).toBe(0);
  });
});
