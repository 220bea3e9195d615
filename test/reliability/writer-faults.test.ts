/**
 * The writer under injected faults (issue 7): at a 10% fault rate nothing
 * acknowledged is lost and storage holds no duplicate, overlapping or
 * out-of-order TXIDs; while storage is down the WAL stays bounded (changes
 * are kept in memory, up to a budget) and the writer catches up when it
 * returns; a writer whose lease was taken over during an outage stops
 * without writing anything.
 *
 * Faults come from `faultyStore` around the store, i.e. after the store's
 * own retries: every injected fault reaches the replicator.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach, describe, expect, test } from "vitest";
import { PagecastError } from "../../src/errors.js";
import { decodeLtx } from "../../src/format/index.js";
import {
  HEAD_OBJECT_KEY,
  listAllLevels,
  parseHeadObject,
  SNAPSHOT_LEVEL,
} from "../../src/layout/index.js";
import { Replicator, type ReplicatorOptions } from "../../src/replicator/replicator.js";
import { LeaseLostError } from "../../src/replicator/replicator-error.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import {
  FAULT_KINDS,
  type FaultKind,
  type FaultyStore,
  faultyStore,
} from "../../src/testing/faulty-store.js";
import { type Prng, prng } from "../../src/testing/prng.js";
import { dump, dumpFile, integrity, openApp, tempDir } from "../replicator/helpers.js";

const SEED = Number(process.env.PAGECAST_SEED ?? 7007);
const PAGE_SIZE = 4096;
const FRAME = PAGE_SIZE + 24;

/**
 * Every fault a writer can meet except `precondition`: a 412 means another
 * writer got there first, and the right answer to that is to stop (the
 * lease tests below and in test/replicator/lease.test.ts cover it).
 */
const WRITER_FAULTS: FaultKind[] = FAULT_KINDS.filter((k) => k !== "precondition");
/** Storage is down: every request fails before reaching it. */
const DOWN: FaultKind[] = ["error500", "slowDown", "reset", "timeout"];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

interface Setup {
  dir: string;
  dbPath: string;
  app: Database.Database;
  inner: ObjectStore;
  faulty: FaultyStore;
}

function setup(kinds: FaultKind[], makeStore?: (dir: string) => ObjectStore): Setup {
  const { dir, cleanup } = tempDir("pagecast-writer-faults-");
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath, 5000);
  cleanups.push(() => app.close());
  app.exec(
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER);" +
      "CREATE INDEX items_n ON items (n);" +
      "CREATE TABLE marks (step INTEGER PRIMARY KEY, at INTEGER)",
  );
  const inner = makeStore ? makeStore(dir) : new MemoryStore();
  cleanups.push(() => inner.close());
  const faulty = faultyStore(inner, { rate: 0, kinds, seed: SEED, timeoutMs: 5, slowMs: 2 });
  return { dir, dbPath, app, inner, faulty };
}

async function start(options: ReplicatorOptions): Promise<Replicator> {
  const r = await Replicator.start(options);
  cleanups.push(() => r.close().catch(() => {}));
  return r;
}

/** One random application transaction (or VACUUM / an app checkpoint), marked with `step`. */
function randomWrite(app: Database.Database, r: Prng, step: number): void {
  const kind = r.int(0, 99);
  const mark = app.prepare("INSERT INTO marks (step, at) VALUES (?, ?)");
  if (kind < 3) {
    app.exec("VACUUM");
    mark.run(step, Date.now());
    return;
  }
  if (kind < 6) {
    app.pragma(`wal_checkpoint(${r.chance(0.5) ? "TRUNCATE" : "PASSIVE"})`);
    mark.run(step, Date.now());
    return;
  }
  app.transaction(() => {
    if (kind < 50) {
      const ins = app.prepare("INSERT INTO items (name, body, n) VALUES (?, ?, ?)");
      const rows = kind < 10 ? 200 : r.int(1, 20);
      for (let i = 0; i < rows; i++) {
        ins.run(`item-${step}-${i}`, Buffer.alloc(r.int(0, 1500), r.int(0, 255)), r.int(0, 999));
      }
    } else if (kind < 70) {
      app
        .prepare("UPDATE items SET n = n + 1, name = ? WHERE id % ? = ?")
        .run(`u${step}`, r.int(2, 9), r.int(0, 1));
    } else if (kind < 85) {
      const lo = r.int(1, 400 + step * 5);
      app.prepare("DELETE FROM items WHERE id BETWEEN ? AND ?").run(lo, lo + r.int(0, 30));
    } else if (kind < 90) {
      app.exec(`CREATE TABLE IF NOT EXISTS side_${step % 5} (k INTEGER PRIMARY KEY, v TEXT)`);
    } else {
      app.prepare("UPDATE items SET body = zeroblob(?) WHERE id % 11 = ?").run(r.int(0, 900), 3);
    }
    mark.run(step, Date.now());
  })();
}

/** `key -> etag + body` of every object in a store. */
async function objects(store: ObjectStore): Promise<Map<string, { etag: string; body: string }>> {
  const out = new Map<string, { etag: string; body: string }>();
  let token: string | undefined;
  do {
    const page = await store.list(token ? { continuationToken: token } : {});
    for (const o of page.objects) {
      const res = await store.get(o.key);
      if (res.notModified) throw new Error("unexpected not-modified");
      out.set(o.key, { etag: res.meta.etag, body: Buffer.from(res.body).toString("base64") });
    }
    token = page.continuationToken;
  } while (token);
  return out;
}

/**
 * Storage-wide invariants: every file decodes and verifies, with the TXIDs
 * its key names; per level no TXID range overlaps another (no duplicates);
 * every TXID from 1 to the newest has an L0 file or a snapshot ending there
 * (contiguous); along TXIDs, commit times never go back (in order).
 */
async function checkLayout(store: ObjectStore): Promise<{ files: number; maxTXID: number }> {
  const files = await listAllLevels(store);
  const byLevel = new Map<number, typeof files>();
  const times = new Map<number, number>();
  for (const f of files) {
    const res = await store.get(f.key);
    if (res.notModified) throw new Error("unexpected not-modified");
    const d = decodeLtx(res.body);
    expect([d.header.minTXID, d.header.maxTXID], f.key).toEqual([f.minTXID, f.maxTXID]);
    if (f.level === 0 || f.level === SNAPSHOT_LEVEL) {
      const prev = times.get(f.maxTXID);
      times.set(f.maxTXID, Math.max(prev ?? 0, d.header.timestamp));
    }
    byLevel.set(f.level, [...(byLevel.get(f.level) ?? []), f]);
  }
  for (const [level, list] of byLevel) {
    const sorted = [...list].sort((a, b) => a.maxTXID - b.maxTXID);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      // Snapshots all start at TXID 1; only their ends must differ.
      if (level === SNAPSHOT_LEVEL) expect(cur.maxTXID, cur.key).toBeGreaterThan(prev.maxTXID);
      // Every other level is contiguous (as Litestream's restore requires): no overlap, no hole.
      else expect(cur.minTXID, `${prev.key} then ${cur.key}`).toBe(prev.maxTXID + 1);
    }
  }
  const maxTXID = Math.max(0, ...files.map((f) => f.maxTXID));
  let lastTime = 0;
  for (let t = 1; t <= maxTXID; t++) {
    const at = times.get(t);
    expect(at, `TXID ${t} has neither an L0 file nor a snapshot`).toBeDefined();
    expect(at!, `commit time of TXID ${t} goes back`).toBeGreaterThanOrEqual(lastTime);
    lastTime = at!;
  }
  return { files: files.length, maxTXID };
}

async function expectRestoreEquals(
  store: ObjectStore,
  dir: string,
  want: string,
  txid?: number,
): Promise<void> {
  const out = join(dir, `restored-${txid ?? "latest"}-${Math.random().toString(36).slice(2)}.db`);
  await restore(store, out, txid !== undefined ? { txid } : {});
  expect(integrity(out)).toBe("ok");
  expect(dumpFile(out), `restore at ${txid ?? "latest"}`).toBe(want);
}

function expectUnavailable(err: unknown): void {
  expect(err).toBeInstanceOf(PagecastError);
  expect((err as PagecastError).code).toBe("STORAGE_UNAVAILABLE");
}

function walBytes(dbPath: string): number {
  try {
    return statSync(`${dbPath}-wal`).size;
  } catch {
    return 0;
  }
}

function faultSummary(f: FaultyStore): string {
  const counts = Object.entries(f.injected)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}=${n}`)
    .join(" ");
  return `${f.faults} faults in ${f.requests} requests (${counts})`;
}

describe("writer under faults", () => {
  const stores: [string, ((dir: string) => ObjectStore) | undefined, number][] = [
    ["memory store", undefined, 130],
    ["file store", (dir) => new FileStore({ root: join(dir, "replica"), fsync: false }), 60],
  ];
  for (const [name, makeStore, steps] of stores) {
    test(`10% faults, ${name}: every acknowledged transaction restorable, TXIDs contiguous and unique`, async () => {
      const s = setup(WRITER_FAULTS, makeStore);
      const r = await start({
        db: s.dbPath,
        store: s.faulty,
        syncInterval: 15,
        checkpointPages: 40,
        truncatePages: 250,
        compaction: { l1: 150, l2: 450, l3: 1200 },
        // Compaction inputs are downloaded again (through the faults) instead of cached.
        compactionCacheBytes: 0,
        retention: 0,
        // Renewed every ~0.5 s, through the faults too.
        leaseTtl: 1000,
        outageRetryMaxDelay: 100,
      });
      const errors: unknown[] = [];
      r.on("error", (e) => errors.push(e));
      const rand = prng(SEED + steps);
      s.faulty.rate = 0.1;
      const acked = new Map<number, string>();
      let rejected = 0;
      for (let step = 0; step < steps; step++) {
        randomWrite(s.app, rand, step);
        if (rand.chance(0.4)) {
          try {
            const pos = await r.sync();
            acked.set(pos.txid, dump(s.app));
          } catch (err) {
            expectUnavailable(err);
            rejected++;
          }
        } else {
          await sleep(rand.int(0, 4));
        }
      }
      s.faulty.rate = 0;
      const final = await r.sync();
      const finalDump = dump(s.app);
      acked.set(final.txid, finalDump);
      const stats = r.stats();
      console.info(
        `[writer-faults ${name}] ${faultSummary(s.faulty)}; ${acked.size} acknowledged syncs, ` +
          `${rejected} rejected, ${stats.syncs} syncs, ${stats.publishedSyncs} published, ` +
          `${stats.snapshots} snapshots, checkpoints ${JSON.stringify(stats.checkpoints)}, ` +
          `compactions ${JSON.stringify(stats.compactions)}, ${stats.errors} errors`,
      );
      expect(s.faulty.faults).toBeGreaterThan(steps / 10);
      expect(s.faulty.injected.lostResponse).toBeGreaterThan(0);
      expect(rejected).toBeGreaterThan(0);
      expect(stats.publishedSyncs).toBeLessThanOrEqual(stats.syncs);
      // Compaction kept working, although it downloads its inputs through the faults.
      expect(stats.compactions[1]).toBeGreaterThan(0);
      // Fencing held: nobody else wrote, so the writer never stopped and the head is its own.
      expect(errors.filter((e) => e instanceof LeaseLostError)).toEqual([]);
      // Quiescent storage before it is checked: a background sync after the last
      // one can still publish the replicator's own checkpoint bump (a commit that
      // changes no data) as one more TXID.
      await r.close();
      const head = parseHeadObject((await s.inner.get(HEAD_OBJECT_KEY)).body!);
      expect(head.writerId).toBe(stats.writerId);
      expect(head.txid).toBeGreaterThanOrEqual(final.txid);

      const layout = await checkLayout(s.inner);
      expect(layout.maxTXID).toBe(head.txid);
      await expectRestoreEquals(s.inner, s.dir, finalDump);
      const past = [...acked.keys()].filter((t) => t !== final.txid);
      for (let i = 0; i < 8 && past.length > 0; i++) {
        const txid = past.splice(rand.int(0, past.length - 1), 1)[0]!;
        await expectRestoreEquals(s.inner, s.dir, acked.get(txid)!, txid);
      }
    });
  }

  test("storage down: WAL stays bounded, sync() rejects, the writer catches up when it returns", async () => {
    const s = setup(DOWN);
    const checkpointPages = 30;
    const truncatePages = 150;
    const r = await start({
      db: s.dbPath,
      store: s.faulty,
      syncInterval: 20,
      checkpointPages,
      truncatePages,
      compaction: false,
      outageRetryMaxDelay: 200,
    });
    const rand = prng(SEED + 1);
    randomWrite(s.app, rand, 0);
    const before = await r.sync();
    const snapshotsBefore = r.stats().snapshots;
    const checkpointsBefore = r.stats().checkpoints;

    s.faulty.rate = 1;
    let maxWal = 0;
    let written = 0;
    let rejected = 0;
    const bound = (truncatePages + 100) * FRAME + 32;
    const ins = s.app.prepare("INSERT INTO items (name, body, n) VALUES (?, ?, ?)");
    // Far more than the bound allows (and at least a second of outage).
    const until = Date.now() + 20_000;
    const from = Date.now();
    for (
      let step = 1;
      (written * 4000 < 3 * bound || Date.now() < from + 1000) && Date.now() < until;
      step++
    ) {
      s.app.transaction(() => {
        for (let i = 0; i < 4; i++) ins.run(`o${step}`, Buffer.alloc(1000, step & 255), step);
      })();
      written++;
      maxWal = Math.max(maxWal, walBytes(s.dbPath));
      if (step % 200 === 0) {
        await r.sync().then(
          () => expect.unreachable("sync() resolved while storage was down"),
          (err: unknown) => {
            expectUnavailable(err);
            rejected++;
          },
        );
      } else if (step % 2 === 0) await sleep(1);
    }
    const during = r.stats();
    expect(during.storageFailingSince).not.toBeNull();
    expect(during.pending.transactions).toBeGreaterThan(0);
    expect(during.pending.snapshotDue).toBe(false);
    expect(during.checkpoints.passive + during.checkpoints.truncate).toBeGreaterThan(
      checkpointsBefore.passive + checkpointsBefore.truncate,
    );
    const appBytes = (Number(s.app.pragma("page_count", { simple: true })) * PAGE_SIZE) | 0;
    console.info(
      `[writer-faults outage] ${written} transactions (database ${appBytes} bytes) while down, ` +
        `max WAL ${maxWal} bytes (bound ${bound}), ${rejected} syncs rejected, ` +
        `${faultSummary(s.faulty)}, ${during.pending.bytes} bytes pending`,
    );
    expect(rejected).toBeGreaterThan(0);
    expect(maxWal).toBeLessThanOrEqual(bound);
    // The bound means something: far more was written than it allows.
    expect(written * 4000).toBeGreaterThanOrEqual(3 * bound);

    s.faulty.rate = 0;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const st = r.stats();
      if (st.storageFailingSince === null && st.pending.transactions === 0) break;
      await sleep(20);
    }
    const after = r.stats();
    expect(after.storageFailingSince).toBeNull();
    expect(after.pending).toEqual({ transactions: 0, bytes: 0, snapshotDue: false });
    expect(after.txid).toBeGreaterThan(before.txid);
    // Caught up from memory: no snapshot was needed, and the outage became a few L0 files.
    expect(after.snapshots).toBe(snapshotsBefore);
    const l0 = (await listAllLevels(s.inner)).filter(
      (f) => f.level === 0 && f.minTXID > before.txid,
    );
    expect(l0.length).toBeLessThanOrEqual(3);
    // A file merged across WAL generations names no WAL range: a restart never resumes from it.
    const last = l0[l0.length - 1]!;
    const header = decodeLtx((await s.inner.get(last.key)).body!).header;
    expect([header.walSalt1, header.walSalt2, header.walOffset]).toEqual([0, 0, 0]);

    const pos = await r.sync();
    // Nothing was committed since; only the replicator's own checkpoint bump (a
    // commit that changes no data) may still be published as one more TXID.
    expect(pos.txid).toBeGreaterThanOrEqual(after.txid);
    expect(pos.txid).toBeLessThanOrEqual(after.txid + 1);
    await checkLayout(s.inner);
    await expectRestoreEquals(s.inner, s.dir, dump(s.app));
  });

  test("an outage longer than the buffer budget ends in a snapshot; the WAL stays bounded", async () => {
    const s = setup(DOWN);
    const truncatePages = 300;
    const budget = 200_000;
    const r = await start({
      db: s.dbPath,
      store: s.faulty,
      syncInterval: 20,
      checkpointPages: 50,
      truncatePages,
      compaction: false,
      outageBufferBytes: budget,
      outageRetryMaxDelay: 200,
    });
    await r.sync();
    const snapshotsBefore = r.stats().snapshots;
    s.faulty.rate = 1;
    let maxWal = 0;
    let maxPending = 0;
    let written = 0;
    const ins = s.app.prepare("INSERT INTO items (name, body, n) VALUES (?, ?, ?)");
    const until = Date.now() + 2000;
    for (let step = 1; Date.now() < until; step++) {
      s.app.transaction(() => {
        for (let i = 0; i < 4; i++) ins.run(`o${step}`, Buffer.alloc(1000, step & 255), step);
      })();
      written++;
      maxWal = Math.max(maxWal, walBytes(s.dbPath));
      maxPending = Math.max(maxPending, r.stats().pending.bytes);
      await sleep(1);
    }
    const during = r.stats();
    console.info(
      `[writer-faults overflow] ${written} transactions while down, max WAL ${maxWal} bytes, ` +
        `max pending ${maxPending} bytes (budget ${budget}), ${during.bufferOverflows} overflows`,
    );
    expect(during.bufferOverflows).toBeGreaterThan(0);
    expect(during.pending.snapshotDue).toBe(true);
    // Memory: the buffer never passes the budget by more than one capture, plus the one frozen upload.
    expect(maxPending).toBeLessThan(budget + 1_000_000);
    expect(maxWal).toBeLessThanOrEqual((truncatePages + 100) * FRAME + 32);

    s.faulty.rate = 0;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && r.stats().storageFailingSince !== null) await sleep(20);
    await r.sync();
    const after = r.stats();
    expect(after.continuityBreaks["storage unavailable too long"]).toBeGreaterThan(0);
    // The break is a level-0 file with what changed since the published state (no level-9 snapshot needed).
    expect(after.snapshots).toBe(snapshotsBefore);
    await checkLayout(s.inner);
    await expectRestoreEquals(s.inner, s.dir, dump(s.app));
  });

  test("a writer whose lease was taken over during an outage stops with LeaseLostError and writes nothing", async () => {
    const s = setup(DOWN);
    const a = await start({
      db: s.dbPath,
      store: s.faulty,
      syncInterval: 20,
      leaseTtl: 600,
      compaction: false,
      outageRetryMaxDelay: 100,
      writerId: "writer-a",
    });
    const rand = prng(SEED + 4);
    randomWrite(s.app, rand, 0);
    const published = await a.sync();

    // A's storage goes down while its application keeps writing.
    s.faulty.rate = 1;
    for (let step = 1; step < 30; step++) {
      randomWrite(s.app, rand, step);
      await sleep(5);
    }
    expect(a.stats().storageFailingSince).not.toBeNull();
    // A's lease runs out; B (say, a standby) restores the replica and takes over.
    await sleep(700);
    const bPath = join(s.dir, "standby.db");
    const b = await start({
      db: bPath,
      store: s.inner,
      syncInterval: 0,
      autoRestore: true,
      compaction: false,
      writerId: "writer-b",
    });
    const bApp = openApp(bPath);
    cleanups.push(() => bApp.close());
    bApp.prepare("INSERT INTO marks (step, at) VALUES (?, ?)").run(1_000_000, 1);
    const bPos = await b.sync();
    // B's TXIDs continue right after A's last published one: exactly what A's buffered upload would name.
    expect(bPos.txid).toBeGreaterThan(published.txid);
    const stored = await objects(s.inner);

    // A's storage returns: it must learn of B before writing anything.
    s.faulty.rate = 0;
    let stopped: unknown;
    const deadline = Date.now() + 5000;
    while (!stopped && Date.now() < deadline) {
      try {
        await a.sync();
      } catch (err) {
        if (err instanceof LeaseLostError) stopped = err;
        else if (err instanceof PagecastError && err.code === "REPLICATOR_CLOSED") {
          expect(err.cause).toBeInstanceOf(LeaseLostError);
          stopped = err.cause;
        } else expectUnavailable(err);
      }
      await sleep(20);
    }
    expect(stopped).toBeInstanceOf(LeaseLostError);
    await expect(a.sync()).rejects.toMatchObject({ code: "REPLICATOR_CLOSED" });
    expect(await objects(s.inner)).toEqual(stored);

    // B carries on; the replica is B's database.
    bApp.prepare("INSERT INTO marks (step, at) VALUES (?, ?)").run(1_000_001, 2);
    await b.sync();
    await checkLayout(s.inner);
    await expectRestoreEquals(s.inner, s.dir, dump(bApp));
  });

  test("writes whose answer was lost are recognised on retry (through a damaged read-back too)", async () => {
    const { dir, cleanup } = tempDir("pagecast-writer-faults-");
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const inner = new MemoryStore();
    let target: "ltx-put" | "ltx-get" | "head-put" | undefined;
    const faulty = faultyStore(inner, {
      rate: 1,
      kinds: ["lostResponse", "bitflip"],
      match: (op, key) =>
        (target === "ltx-put" && op === "put" && !!key?.endsWith(".ltx")) ||
        (target === "ltx-get" && op === "get" && !!key?.endsWith(".ltx")) ||
        (target === "head-put" && op === "put" && key === HEAD_OBJECT_KEY),
    });
    const r = await start({ db: dbPath, store: faulty, syncInterval: 0, compaction: false });
    const first = await r.sync();
    const insert = app.prepare("INSERT INTO t (v) VALUES (?)");

    // The L0 upload lands but its answer is lost: the next sync finds the key taken...
    insert.run("a");
    target = "ltx-put";
    await r.sync().then(() => expect.unreachable(), expectUnavailable);
    const l0 = (await listAllLevels(inner)).filter((f) => f.level === 0 && f.maxTXID > first.txid);
    expect(l0.map((f) => f.maxTXID)).toEqual([first.txid + 1]);
    // ...and reads it back damaged: not proof of another writer, just try again later...
    target = "ltx-get";
    await r.sync().then(() => expect.unreachable(), expectUnavailable);
    // ...then intact: it is this writer's own file, published under the same TXID.
    target = undefined;
    expect((await r.sync()).txid).toBe(first.txid + 1);

    // The head write lands but its answer is lost: the next CAS fails, the head is still ours.
    insert.run("b");
    target = "head-put";
    await r.sync().then(() => expect.unreachable(), expectUnavailable);
    target = undefined;
    const pos = await r.sync();
    expect(pos.txid).toBe(first.txid + 2);
    expect(parseHeadObject((await inner.get(HEAD_OBJECT_KEY)).body!).txid).toBe(pos.txid);
    expect(faulty.injected.lostResponse).toBe(2);
    expect(faulty.injected.bitflip).toBe(1);
    await checkLayout(inner);
    await expectRestoreEquals(inner, dir, dump(app));
  });

  test("a writer stopped during an outage loses nothing: the next start publishes a snapshot", async () => {
    const s = setup(DOWN);
    const options: ReplicatorOptions = {
      db: s.dbPath,
      store: s.faulty,
      syncInterval: 20,
      checkpointPages: 30,
      truncatePages: 200,
      leaseTtl: 400,
      compaction: false,
      outageRetryMaxDelay: 100,
    };
    const a = await start(options);
    const rand = prng(SEED + 5);
    randomWrite(s.app, rand, 0);
    const published = await a.sync();
    const checkpointsBefore = a.stats().checkpoints.passive + a.stats().checkpoints.truncate;
    s.faulty.rate = 1;
    const ins = s.app.prepare("INSERT INTO items (name, body, n) VALUES (?, ?, ?)");
    for (let step = 1; step < 300; step++) {
      s.app.transaction(() => {
        for (let i = 0; i < 3; i++) ins.run(`c${step}`, Buffer.alloc(900, step & 255), step);
      })();
      await sleep(1);
    }
    const during = a.stats();
    // The buffered frames left the WAL: checkpoints ran during the outage.
    expect(during.checkpoints.passive + during.checkpoints.truncate).toBeGreaterThan(
      checkpointsBefore,
    );
    expect(during.pending.transactions).toBeGreaterThan(0);
    // Like a crash: what was buffered in memory is gone.
    await a
      .close()
      .then(() => expect.unreachable("close() resolved while storage was down"), expectUnavailable);
    s.faulty.rate = 0;
    await sleep(500);
    const again = await start({ ...options, store: s.inner });
    const st = again.stats();
    // The WAL position of the last published file is gone: no resume, a continuity break (the
    // next TXID's level-0 file, with what differs from the replica's state rebuilt from its files).
    expect(Object.values(st.continuityBreaks)).toEqual([1]);
    expect(st.snapshots).toBe(0);
    expect(st.txid).toBe(published.txid + 1);
    await checkLayout(s.inner);
    await expectRestoreEquals(s.inner, s.dir, dump(s.app));
  });
});
