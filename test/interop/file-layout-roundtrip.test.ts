/**
 * pagecast's file replicas in Litestream's file layout, end to end with the
 * real writer: what the Replicator publishes to file:///dir is exactly what
 * Litestream's file replica client finds there (directory structure, names,
 * mtimes; nothing named *.ltx anywhere else) and restores; and a directory
 * an earlier pagecast wrote in the `%04x/` layout keeps working: it is read
 * as is, and a writer continuing it moves its history into the Litestream
 * layout instead of splitting it between the two.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { decodeLtxHeader } from "../../src/format/index.js";
import { HEAD_OBJECT_KEY, listAllLevels, parseHeadObject } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { dump, dumpFile, openApp, tempDir } from "../replicator/helpers.js";
import { applyPlan, litestreamFiles, litestreamPlan } from "./litestream-file-client.js";

const tmp = tempDir("pagecast-file-roundtrip-");
afterAll(() => tmp.cleanup());
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Every file under `dir`, relative, `/`-separated (the store's own `.pagecast/` left out). */
function walk(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (d === dir && entry.name === ".pagecast") continue;
        visit(path);
      } else out.push(relative(dir, path).split(sep).join("/"));
    }
  };
  visit(dir);
  return out.sort();
}

/** Restores what Litestream's client finds and returns the database's dump. */
function litestreamRestore(dir: string, name: string, txid?: number): string {
  const image = applyPlan(litestreamPlan(litestreamFiles(dir), txid));
  const path = join(tmp.dir, name);
  writeFileSync(path, image);
  return dumpFile(path);
}

/** Checks that pagecast's listing and Litestream's client see the same files, and only those. */
async function expectSameFiles(dir: string): Promise<void> {
  const store = new FileStore({ root: dir });
  cleanups.push(() => store.close());
  const ours = (await listAllLevels(store)).map((f) => `${f.level}:${f.minTXID}-${f.maxTXID}`);
  const theirs = litestreamFiles(dir);
  expect(theirs.map((f) => `${f.level}:${f.minTXID}-${f.maxTXID}`)).toEqual(ours);
  for (const f of theirs) {
    // Litestream's file client reads the mtime as the file's creation time: the header's time.
    const header = decodeLtxHeader(readFileSync(f.path).subarray(0, 100));
    expect(Math.abs(f.createdAt - header.timestamp), f.path).toBeLessThan(1);
  }
  // Nothing outside ltx/<n>/ is named like an LTX file (skeletons included).
  const files = walk(dir);
  const ltxNamed = files.filter((p) => p.endsWith(".ltx"));
  expect(ltxNamed.filter((p) => !/^ltx\/\d\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/.test(p))).toEqual([]);
  expect(ltxNamed).toHaveLength(theirs.length);
  // The rest: the head, the lease and skeletons, next to ltx/.
  const others = files.filter((p) => !p.startsWith("ltx/"));
  for (const p of others) {
    expect(p).toMatch(
      /^(pagecast-head\.json|pagecast-lease\.json|pagecast-skeleton\/[0-9a-f]{16}-[0-9a-f]{16}\.skeleton)$/,
    );
  }
}

async function commits(app: ReturnType<typeof openApp>, replicator: Replicator, n: number) {
  const insert = app.prepare("INSERT INTO t (v) VALUES (?)");
  for (let i = 0; i < n; i++) {
    app.transaction(() => {
      for (let j = 0; j < 20; j++) insert.run(`row ${i}-${j} `.repeat(1 + ((i + j) % 9)));
    })();
    await replicator.sync();
  }
}

describe("file:// replicas in Litestream's layout", () => {
  test("what the writer publishes, Litestream's file client finds and restores", async () => {
    const dbPath = join(tmp.dir, "new.db");
    const dir = join(tmp.dir, "new-replica");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v)");
    const replicator = await Replicator.start({
      db: dbPath,
      url: pathToFileURL(dir).href,
      syncInterval: 0,
      compaction: { l1: 1, l2: 1, l3: 1 },
      snapshotInterval: 300,
    });
    await commits(app, replicator, 6);
    await replicator.compactNow();
    const middle = { txid: replicator.stats().txid, dump: dump(app) };
    // A second snapshot (the interval passed), then more levels.
    await new Promise((r) => setTimeout(r, 350));
    await commits(app, replicator, 5);
    await replicator.compactNow();
    await commits(app, replicator, 2);
    await replicator.close();

    expect(readdirSync(join(dir, "ltx")).sort()).toEqual(["0", "1", "2", "3", "9"]);
    await expectSameFiles(dir);
    expect(litestreamFiles(dir).filter((f) => f.level === 9).length).toBeGreaterThanOrEqual(2);
    expect(litestreamRestore(dir, "ls-latest.db")).toBe(dump(app));
    expect(litestreamRestore(dir, "ls-middle.db", middle.txid)).toBe(middle.dump);
    // pagecast itself, through the same URL.
    const out = join(tmp.dir, "pc-latest.db");
    await restore(pathToFileURL(dir).href, out);
    expect(dumpFile(out)).toBe(dump(app));
  });

  test("a directory in the earlier %04x layout is read, and a writer continuing it leaves one layout", async () => {
    const dbPath = join(tmp.dir, "old.db");
    const dir = join(tmp.dir, "old-replica");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    // An earlier pagecast's file store kept every object at its key path: the S3 layout.
    const mem = new MemoryStore({ name: `old-layout-${Math.random().toString(36).slice(2)}` });
    cleanups.push(() => mem.close());
    const before = await Replicator.start({
      db: dbPath,
      store: mem,
      syncInterval: 0,
      compaction: { l1: 1, l2: 1, l3: 1 },
    });
    await commits(app, before, 5);
    await before.compactNow();
    await commits(app, before, 2);
    await before.close();
    for (const { key } of (await mem.list()).objects) {
      const path = join(dir, ...key.split("/"));
      mkdirSync(join(path, ".."), { recursive: true });
      writeFileSync(path, (await mem.get(key)).body!);
    }
    const legacy = walk(dir);
    expect(legacy.some((p) => p.startsWith("0000/"))).toBe(true);
    expect(litestreamFiles(dir)).toEqual([]);
    const url = pathToFileURL(dir).href;
    const oldState = dump(app);
    const txid = parseHeadObject((await mem.get(HEAD_OBJECT_KEY)).body!).txid;

    // Read as is: restore and a replica.
    const restored = join(tmp.dir, "old-restored.db");
    expect(await restore(url, restored)).toMatchObject({ txid });
    expect(dumpFile(restored)).toBe(oldState);
    const store = new FileStore({ root: dir });
    cleanups.push(() => store.close());
    const replica = await openReplica({ store, wasm: readSqliteWasm });
    cleanups.push(() => replica.close());
    expect(replica.status().txid).toBe(txid);
    expect(await replica.values("SELECT count(*) FROM t")).toEqual(
      app.prepare("SELECT count(*) FROM t").raw().all(),
    );
    expect(walk(dir)).toEqual(legacy); // reading changed nothing

    // A writer continues it: the whole history ends up in Litestream's layout.
    const after = await Replicator.start({
      db: dbPath,
      url,
      syncInterval: 0,
      compaction: { l1: 1, l2: 1, l3: 1 },
    });
    await commits(app, after, 4);
    await after.compactNow();
    await after.close();
    const files = walk(dir);
    expect(files.filter((p) => /^[0-9a-f]{4}\//.test(p))).toEqual([]);
    expect(statSync(join(dir, "ltx", "0")).isDirectory()).toBe(true);
    await expectSameFiles(dir);
    // Litestream restores every state from the first TXID on, old and new.
    expect(litestreamRestore(dir, "ls-old.db", txid)).toBe(oldState);
    expect(litestreamRestore(dir, "ls-new.db")).toBe(dump(app));
    const latest = join(tmp.dir, "old-latest.db");
    await restore(url, latest);
    expect(dumpFile(latest)).toBe(dump(app));
    // The open replica follows the writer across the move.
    await replica.poll();
    expect(await replica.values("SELECT count(*) FROM t")).toEqual(
      app.prepare("SELECT count(*) FROM t").raw().all(),
    );
  });
});
