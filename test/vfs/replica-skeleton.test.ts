/**
 * The B-tree skeleton sidecar (writer and reader) and the cold-open round
 * trips it buys, counted as requests and sequential depth (never timed):
 * opening takes 2 sequential round trips (head; page indexes + skeleton in
 * parallel) and a cold point lookup then needs only its leaf (rowid) or its
 * two leaves (secondary index).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, test } from "vitest";
import { decodeLtx } from "../../src/format/index.js";
import {
  HEAD_OBJECT_KEY,
  type HeadObject,
  legacySkeletonKey,
  parseHeadObject,
  parseReplicaKey,
  parseSkeletonKey,
  SKELETON_PREFIX,
  serializeHeadObject,
  skeletonHeaderTXID,
  skeletonKey,
} from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { buildSkeleton, SkeletonCollector } from "../../src/replicator/skeleton.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { isInteriorPage } from "../../src/vfs/btree-page.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import {
  primaryValues,
  type RecordedCall,
  RecordingStore,
  readSqliteWasm,
  ScriptedWriter,
} from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function track(replica: Replica): Promise<Replica> {
  cleanups.push(() => replica.close());
  return replica;
}

const ROWS = 3000;
const ROWID_SQL = "SELECT id, email, v FROM t WHERE id = ?";
const EMAIL_SQL = "SELECT id, v FROM t WHERE email = ?";

/** Fills a table deep enough (page size 1024) that lookups descend two interior levels. */
function fill(db: Database.Database, rows = ROWS): void {
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT NOT NULL, v TEXT)");
  const ins = db.prepare("INSERT INTO t (id, email, v) VALUES (?, ?, ?)");
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) {
      ins.run(i, `user${(i * 7919) % 100003}-${i}@example.com`, `${i}`.padEnd(180, "v"));
    }
  })();
  // UNIQUE: an equality lookup is one row (a non-unique index may step to the next leaf).
  db.exec("CREATE UNIQUE INDEX t_email ON t (email)");
}

function email(i: number): string {
  return `user${(i * 7919) % 100003}-${i}@example.com`;
}

const isPageRead = (c: RecordedCall) => c.range !== undefined && "offset" in c.range;

/** The b-tree depth SQLite uses for `pgno`'s tree (1 = the root is a leaf). */
function depthOf(image: Uint8Array, pageSize: number, root: number): number {
  let depth = 1;
  let pgno = root;
  for (;;) {
    const page = image.subarray((pgno - 1) * pageSize, pgno * pageSize);
    if (!isInteriorPage(page, pgno)) return depth;
    pgno = new DataView(page.buffer, page.byteOffset).getUint32(8);
    depth++;
  }
}

describe("skeleton builder", () => {
  test("keeps page 1, every interior page and nothing else; a valid LTX file", () => {
    const db = new Database(":memory:");
    db.pragma("page_size = 1024");
    fill(db);
    const image = new Uint8Array(db.serialize());
    const pageSize = 1024;
    const commit = image.length / pageSize;
    const pages = Array.from({ length: commit }, (_, i) => ({
      pgno: i + 1,
      data: image.subarray(i * pageSize, (i + 1) * pageSize),
    }));
    const built = buildSkeleton({ pageSize, commit, txid: 7, timestamp: 1234 }, pages)!;
    expect(built.key).toBe(skeletonKey(7));
    expect(built.key.startsWith(SKELETON_PREFIX)).toBe(true);
    const decoded = decodeLtx(built.enc.bytes);
    expect(decoded.header).toMatchObject({
      pageSize,
      commit,
      minTXID: skeletonHeaderTXID(7),
      maxTXID: skeletonHeaderTXID(7),
      timestamp: 1234,
    });
    const interior = pages.filter((p) => isInteriorPage(p.data, p.pgno)).map((p) => p.pgno);
    expect(interior.length).toBeGreaterThan(10);
    expect(decoded.pages.map((p) => p.pgno)).toEqual([1, ...interior.filter((p) => p !== 1)]);
    for (const p of decoded.pages) expect(p.data).toEqual(pages[p.pgno - 1]!.data);
    // Both trees are deep enough for the round-trip tests below.
    const roots = db.prepare("SELECT rootpage FROM sqlite_schema").pluck().all() as number[];
    for (const r of roots) expect(depthOf(image, pageSize, r)).toBe(3);
    db.close();
  });

  test("keeps the schema's pages when sqlite_schema spills out of page 1", () => {
    const db = new Database(":memory:");
    db.pragma("page_size = 512");
    for (let i = 0; i < 60; i++) db.exec(`CREATE TABLE t${i} (a INTEGER, b TEXT, c BLOB)`);
    const image = new Uint8Array(db.serialize());
    const commit = image.length / 512;
    const collector = new SkeletonCollector({ pageSize: 512, commit, txid: 1, timestamp: 0 });
    for (let p = 1; p <= commit; p++) collector.add(p, image.subarray((p - 1) * 512, p * 512));
    const kept = decodeLtx(collector.finish()!.enc.bytes).pages.map((p) => p.pgno);
    // Page 1 is the schema's interior root; every schema leaf it names is kept.
    const page1 = image.subarray(0, 512);
    expect(isInteriorPage(page1, 1)).toBe(true);
    const schemaPages = new Set<number>([1]);
    const cells = new DataView(page1.buffer, page1.byteOffset).getUint16(103);
    for (let i = 0; i < cells; i++) {
      const cell = new DataView(page1.buffer, page1.byteOffset).getUint16(112 + i * 2);
      schemaPages.add(new DataView(page1.buffer, page1.byteOffset).getUint32(cell));
    }
    schemaPages.add(new DataView(page1.buffer, page1.byteOffset).getUint32(108));
    for (const p of schemaPages) expect(kept).toContain(p);
    db.close();
  });

  test("abandons rather than guesses: over its size cap, or pages out of order", () => {
    const page = new Uint8Array(1024);
    page[0] = 0x05;
    const capped = new SkeletonCollector({
      pageSize: 1024,
      commit: 10,
      txid: 3,
      timestamp: 0,
      maxPageBytes: 2048,
    });
    for (let p = 1; p <= 10; p++) capped.add(p, page);
    expect(capped.finish()).toBeUndefined();
    const unordered = new SkeletonCollector({ pageSize: 1024, commit: 10, txid: 3, timestamp: 0 });
    unordered.add(1, page);
    unordered.add(3, page);
    unordered.add(2, page);
    expect(unordered.finish()).toBeUndefined();
  });
});

describe("head object: optional skeleton and page1", () => {
  const base: HeadObject = {
    format: "pagecast-head",
    version: 1,
    writerId: "w",
    generation: "g",
    txid: 5,
    timestamp: 1,
    pageSize: 4096,
    commit: 3,
    postApplyChecksum: null,
    files: [
      {
        level: 9,
        minTXID: 1,
        maxTXID: 5,
        key: "0009/0000000000000001-0000000000000005.ltx",
        size: 10_000,
        indexOffset: 9_000,
        indexSize: 984,
        timestamp: 1,
      },
    ],
  };

  test("skeleton keys: never an LTX file name; the legacy .ltx name still parses in heads", () => {
    const txid = 0x1c;
    expect(skeletonKey(txid)).toBe("pagecast-skeleton/0000000000000001-000000000000001c.skeleton");
    expect(legacySkeletonKey(txid)).toBe("pagecast-skeleton/0000000000000001-000000000000001c.ltx");
    // Nothing that collects *.ltx names (or LTX keys) picks the current name up.
    expect(skeletonKey(txid).endsWith(".ltx")).toBe(false);
    expect(parseReplicaKey(skeletonKey(txid))).toBeUndefined();
    expect(parseSkeletonKey(skeletonKey(txid))).toBe(txid);
    expect(parseSkeletonKey(legacySkeletonKey(txid))).toBe(txid);
    expect(parseSkeletonKey("0009/0000000000000001-000000000000001c.ltx")).toBeUndefined();
    const legacy: HeadObject = {
      ...base,
      skeleton: { key: legacySkeletonKey(5), size: 2000, txid: 5 },
    };
    expect(parseHeadObject(serializeHeadObject(legacy)).skeleton?.key).toBe(legacySkeletonKey(5));
  });

  test("older heads still parse; new fields round-trip", () => {
    expect(parseHeadObject(serializeHeadObject(base))).toEqual(base);
    const full: HeadObject = {
      ...base,
      skeleton: { key: skeletonKey(5), size: 2000, txid: 5 },
      page1: { key: base.files[0]!.key, offset: 100, size: 900 },
    };
    expect(parseHeadObject(serializeHeadObject(full))).toEqual(full);
  });

  test.each([
    [
      "skeleton key not derived from its txid",
      { skeleton: { key: skeletonKey(4), size: 2000, txid: 5 } },
    ],
    [
      "legacy skeleton key of another txid",
      { skeleton: { key: legacySkeletonKey(4), size: 2000, txid: 5 } },
    ],
    ["skeleton too large", { skeleton: { key: skeletonKey(5), size: 2 ** 40, txid: 5 } }],
    [
      "page1 in an unknown file",
      { page1: { key: "0000/0000000000000002-0000000000000002.ltx", offset: 100, size: 900 } },
    ],
    ["page1 over the page index", { page1: { key: base.files[0]!.key, offset: 8_900, size: 900 } }],
  ])("rejects %s", (_name, extra) => {
    const doc = { ...JSON.parse(new TextDecoder().decode(serializeHeadObject(base))), ...extra };
    expect(() => parseHeadObject(new TextEncoder().encode(JSON.stringify(doc)))).toThrow(
      expect.objectContaining({ code: "HEAD_OBJECT_INVALID" }),
    );
  });
});

async function skeletonReplica(options: { snapshotOnly?: boolean } = {}) {
  const mem = new MemoryStore();
  const writer = new ScriptedWriter(mem, { pageSize: 1024, skeleton: true });
  cleanups.push(() => writer.close());
  await writer.commit(() => fill(writer.db));
  if (!options.snapshotOnly) {
    // A small change after the snapshot: page 1 and one leaf in a small L0 file.
    await writer.commit("UPDATE t SET v = 'changed' WHERE id = 17");
  }
  return { mem, writer, store: new RecordingStore(mem) };
}

describe("cold open with a skeleton (request counts)", () => {
  test("open = 2 sequential round trips; a rowid lookup needs exactly 1 more request, an index lookup 2", async () => {
    const { store, writer } = await skeletonReplica();
    expect(writer.skeleton).toBeDefined();
    const replica = await track(
      await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 0, pollIntervalMs: 60_000 }),
    );
    const open = store.calls;
    expect(open.filter((c) => c.op === "list")).toEqual([]);
    expect(open.filter(isPageRead)).toEqual([]);
    // Head; then every page index (the small L0 file whole) and the skeleton, in parallel.
    expect(open.map((c) => c.key).sort()).toEqual(
      [HEAD_OBJECT_KEY, writer.skeleton!.key, ...writer.plan.map((f) => f.key)].sort(),
    );
    expect(store.depth(open)).toBe(2);
    expect(replica.status().requests.skeleton.requests).toBe(1);

    const primary = writer.primaryAt(writer.txid);
    store.reset();
    expect(await replica.values(ROWID_SQL, [1234])).toEqual(
      primaryValues(primary, ROWID_SQL, [1234]),
    );
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]).toMatchObject({ key: writer.plan[0]!.key });
    // The row changed after the snapshot comes from the small L0 file read while opening.
    store.reset();
    expect(await replica.values(ROWID_SQL, [17])).toEqual(primaryValues(primary, ROWID_SQL, [17]));
    expect(store.calls).toHaveLength(0);

    store.reset();
    const key = email(2345);
    expect(await replica.values(EMAIL_SQL, [key])).toEqual(
      primaryValues(primary, EMAIL_SQL, [key]),
    );
    expect(store.calls).toHaveLength(2);
    expect(store.depth()).toBe(2);
  });

  test("with default read-ahead and prefetch, a cold lookup still waits on one round trip", async () => {
    const { store, writer } = await skeletonReplica({ snapshotOnly: true });
    const replica = await track(await openReplica({ store, wasm: readSqliteWasm }));
    expect(store.depth()).toBe(2);
    const primary = writer.primaryAt(writer.txid);
    store.reset();
    expect(await replica.values(ROWID_SQL, [2999])).toEqual(
      primaryValues(primary, ROWID_SQL, [2999]),
    );
    expect(store.depth()).toBe(1);
    store.reset();
    const key = email(77);
    expect(await replica.values(EMAIL_SQL, [key])).toEqual(
      primaryValues(primary, EMAIL_SQL, [key]),
    );
    expect(store.depth()).toBe(2);
  });

  test("skeleton pages that newer files override are never served", async () => {
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem, { pageSize: 1024, skeleton: true });
    cleanups.push(() => writer.close());
    await writer.commit(() => fill(writer.db));
    // Renumbers every page: each skeleton page's image is stale (large L0 files, read by index).
    await writer.commit("DELETE FROM t WHERE id % 3 = 0; VACUUM");
    await writer.commit("INSERT INTO t (id, email, v) VALUES (5000, 'late@example.com', 'late')");
    const store = new RecordingStore(mem);
    const replica = await track(await openReplica({ store, wasm: readSqliteWasm }));
    const primary = writer.primaryAt(writer.txid);
    for (const id of [1, 2, 3, 1500, 2998, 5000]) {
      expect(await replica.values(ROWID_SQL, [id])).toEqual(
        primaryValues(primary, ROWID_SQL, [id]),
      );
    }
    for (const i of [4, 5, 2000]) {
      expect(await replica.values(EMAIL_SQL, [email(i)])).toEqual(
        primaryValues(primary, EMAIL_SQL, [email(i)]),
      );
    }
    const all = "SELECT id, email FROM t ORDER BY email";
    expect(await replica.values(all)).toEqual(primaryValues(primary, all));
  });

  test("a skeleton stored under the legacy name (earlier writers) is still fetched and used", async () => {
    const { mem, store, writer } = await skeletonReplica();
    const current = writer.skeleton!;
    const legacy = legacySkeletonKey(current.txid);
    await mem.put(legacy, (await mem.get(current.key)).body!);
    await mem.deleteMany([current.key]);
    writer.skeleton = { ...current, key: legacy };
    await writer.writeHead();
    const replica = await track(
      await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 0, pollIntervalMs: 60_000 }),
    );
    expect(store.calls.map((c) => c.key)).toContain(legacy);
    expect(replica.status().requests.skeleton.requests).toBe(1);
    // Seeded from it: a cold rowid lookup reads just its leaf.
    const primary = writer.primaryAt(writer.txid);
    store.reset();
    expect(await replica.values(ROWID_SQL, [1234])).toEqual(
      primaryValues(primary, ROWID_SQL, [1234]),
    );
    expect(store.calls).toHaveLength(1);
  });

  test("a skeleton that does not describe the snapshot is ignored", async () => {
    const { mem, store, writer } = await skeletonReplica({ snapshotOnly: true });
    // Another database's skeleton under this snapshot's key.
    const other = new ScriptedWriter(new MemoryStore(), { pageSize: 1024, skeleton: true });
    cleanups.push(() => other.close());
    await other.commit(() => {
      fill(other.db, 2000);
      other.db.exec("UPDATE t SET v = upper(v)");
    });
    const foreign = buildSkeleton(
      { pageSize: 1024, commit: other.image().length / 1024, txid: 1, timestamp: 0 },
      Array.from({ length: other.image().length / 1024 }, (_, i) => ({
        pgno: i + 1,
        data: other.image().subarray(i * 1024, (i + 1) * 1024),
      })),
    )!;
    await mem.put(writer.skeleton!.key, foreign.enc.bytes);
    await writer.writeHead();
    const replica = await track(await openReplica({ store, wasm: readSqliteWasm }));
    const primary = writer.primaryAt(writer.txid);
    const sql = "SELECT count(*), sum(length(v)), max(email) FROM t";
    expect(await replica.values(sql)).toEqual(primaryValues(primary, sql));
    expect(await replica.values(ROWID_SQL, [42])).toEqual(primaryValues(primary, ROWID_SQL, [42]));

    // Garbage bytes: same outcome.
    await mem.put(writer.skeleton!.key, new Uint8Array(3000).fill(7));
    const again = await track(
      await openReplica({ store: new RecordingStore(mem), wasm: readSqliteWasm }),
    );
    expect(await again.values(sql)).toEqual(primaryValues(primary, sql));
    // A missing one too.
    await mem.deleteMany([writer.skeleton!.key]);
    const third = await track(await openReplica({ store: mem, wasm: readSqliteWasm }));
    expect(await third.values(sql)).toEqual(primaryValues(primary, sql));
    expect(third.status().requests.skeleton.errors).toBe(1);
  });

  test("without a skeleton, a head naming page 1's frame gets it fetched with the indexes", async () => {
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem, { pageSize: 1024, page1: true });
    cleanups.push(() => writer.close());
    await writer.commit(() => fill(writer.db));
    // A large delta holding page 1 (the schema changes): never read whole.
    await writer.commit("UPDATE t SET v = upper(v) WHERE id % 2 = 0; CREATE TABLE u (x)");
    const head = parseHeadObject((await mem.get(HEAD_OBJECT_KEY)).body!);
    expect(head.page1?.key).toBe(writer.plan[1]!.key);
    const store = new RecordingStore(mem);
    const replica = await track(
      await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 60_000 }),
    );
    expect(store.depth()).toBe(2);
    const page1Read = store.calls.filter(isPageRead);
    expect(page1Read).toEqual([
      expect.objectContaining({
        key: head.page1!.key,
        range: { offset: head.page1!.offset, length: head.page1!.size },
      }),
    ]);
    store.reset();
    // Page 1 alone answers this: nothing more to fetch.
    expect(await replica.values("SELECT name FROM sqlite_schema ORDER BY name")).toEqual([
      ["t"],
      ["t_email"],
      ["u"],
    ]);
    expect(store.calls).toHaveLength(0);
  });
});

describe("Replicator publishes skeletons", () => {
  function tempDb() {
    const dir = mkdtempSync(join(tmpdir(), "pagecast-skeleton-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "app.db");
    const app = new Database(path);
    app.pragma("page_size = 1024");
    app.pragma("journal_mode = wal");
    cleanups.push(() => app.close());
    return { path, app };
  }

  test("with each snapshot, named by the head; a cold replica opens in 2 round trips and looks up in 1 more", async () => {
    const { path, app } = tempDb();
    fill(app);
    const mem = new MemoryStore();
    const r = await Replicator.start({ db: path, store: mem, syncInterval: 0 });
    cleanups.push(() => r.close());
    const head = parseHeadObject((await mem.get(HEAD_OBJECT_KEY)).body!);
    expect(head.skeleton).toMatchObject({
      key: skeletonKey(head.files[0]!.maxTXID),
      txid: head.files[0]!.maxTXID,
    });
    const skeleton = decodeLtx((await mem.get(head.skeleton!.key)).body!);
    expect(skeleton.pages[0]!.pgno).toBe(1);
    expect(head.page1).toMatchObject({ key: head.files[0]!.key, offset: 100 });

    const store = new RecordingStore(mem);
    const replica = await track(
      await openReplica({ store, wasm: readSqliteWasm, readAheadPages: 0, pollIntervalMs: 60_000 }),
    );
    expect(store.depth()).toBe(2);
    store.reset();
    const want = app.prepare(ROWID_SQL).raw(true).get(2222);
    expect(await replica.values(ROWID_SQL, [2222])).toEqual([want]);
    expect(store.calls).toHaveLength(1);
    store.reset();
    const wantEmail = app.prepare(EMAIL_SQL).raw(true).get(email(1111));
    expect(await replica.values(EMAIL_SQL, [email(1111)])).toEqual([wantEmail]);
    expect(store.depth()).toBe(2);
  });

  test("retention deletes a snapshot's skeleton with it; the head's skeleton always exists", async () => {
    const { path, app } = tempDb();
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const mem = new MemoryStore();
    const r = await Replicator.start({
      db: path,
      store: mem,
      syncInterval: 0,
      retention: 150,
      retentionGrace: 50,
      snapshotInterval: 100,
    });
    cleanups.push(() => r.close());
    for (let i = 0; i < 24; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`.padEnd(400, "r"));
      await r.sync();
      if (i % 4 === 3) await r.compactNow();
      await new Promise((res) => setTimeout(res, 20));
    }
    await r.compactNow();
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await mem.list(token ? { continuationToken: token } : {});
      keys.push(...page.objects.map((o) => o.key));
      token = page.continuationToken;
    } while (token);
    const skeletons = keys.filter((k) => k.startsWith(SKELETON_PREFIX));
    const snapshots = new Set(keys.filter((k) => k.startsWith("0009/")));
    expect(snapshots.size).toBeGreaterThan(0);
    expect(r.stats().retentionDeletes).toBeGreaterThan(0);
    for (const k of skeletons) {
      const txid = parseSkeletonKey(k)!;
      expect(
        snapshots.has(`0009/0000000000000001-${txid.toString(16).padStart(16, "0")}.ltx`),
      ).toBe(true);
    }
    const head = parseHeadObject((await mem.get(HEAD_OBJECT_KEY)).body!);
    expect(head.skeleton).toBeDefined();
    expect(skeletons).toContain(head.skeleton!.key);
  });
});

describe("warm path", () => {
  test("while the version is unchanged, repeated lookups never reach the VFS; a new version is seen next", async () => {
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem, { pageSize: 1024 });
    cleanups.push(() => writer.close());
    await writer.commit(() => fill(writer.db, 600));
    const replica = await track(
      await openReplica({ store: mem, wasm: readSqliteWasm, pollIntervalMs: 0 }),
    );
    for (let i = 1; i <= 600; i += 7) await replica.values(ROWID_SQL, [i]);
    const reads = () => replica.status().cache.hits + replica.status().cache.misses;
    const before = reads();
    const polls = replica.status().requests.poll.requests;
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 600; i += 7) {
        expect(await replica.values(ROWID_SQL, [i])).toEqual(
          primaryValues(writer.primaryAt(writer.txid), ROWID_SQL, [i]),
        );
      }
    }
    // Every query polled (interval 0) and found nothing new: SQLite kept its cache.
    expect(replica.status().requests.poll.requests - polls).toBe(3 * 86);
    expect(reads()).toBe(before);
    await writer.commit("UPDATE t SET v = 'new' WHERE id = 8");
    expect(await replica.values(ROWID_SQL, [8])).toEqual(
      primaryValues(writer.primaryAt(writer.txid), ROWID_SQL, [8]),
    );
    expect(reads()).toBeGreaterThan(before);
  });

  test("a tiny SQLite cache serves every page from the replica's cache, synchronously and correctly", async () => {
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem, { pageSize: 1024 });
    cleanups.push(() => writer.close());
    await writer.commit(() => fill(writer.db));
    const replica = await track(
      // Not hydrated: the pages are to come from the replica's page cache.
      await openReplica({
        store: mem,
        wasm: readSqliteWasm,
        sqliteCacheBytes: 65536,
        hydrate: false,
      }),
    );
    const primary = writer.primaryAt(writer.txid);
    const all = "SELECT id, email, v FROM t ORDER BY email";
    expect(await replica.values(all)).toEqual(primaryValues(primary, all));
    const misses = replica.status().cache.misses;
    const hits = replica.status().cache.hits;
    for (let i = 1; i <= ROWS; i += 13) {
      expect(await replica.values(EMAIL_SQL, [email(i)])).toEqual(
        primaryValues(primary, EMAIL_SQL, [email(i)]),
      );
    }
    expect(replica.status().cache.misses).toBe(misses);
    expect(replica.status().cache.hits).toBeGreaterThan(hits + ROWS / 13);
  });
});
