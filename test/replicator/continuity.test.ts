/**
 * Continuity: a database replaced under the replicator, a restart of the
 * replicator after the WAL moved on without it, autoRestore of a missing
 * database, and periodic snapshots. Each ends with a restore that must equal
 * the primary.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { HEAD_OBJECT_KEY, listAllLevels, parseHeadObject } from "../../src/layout/index.js";
import { Capture } from "../../src/replicator/capture.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { SqliteConnections } from "../../src/replicator/sqlite-connections.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { dump, dumpFile, integrity, openApp, tempDir, verifyAllFiles } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A temporary database with table t (id, v BLOB), open in an application connection. */
function blobApp() {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  return { dir, dbPath, app, insert: app.prepare("INSERT INTO t (v) VALUES (?)") };
}

/**
 * Runs `then` right after the next call of `proto[name]` once armed (the
 * interleaving under test); the method is restored after the test.
 */
function afterNextCall<T extends object>(proto: T, name: keyof T, then: () => void) {
  const methods = proto as Record<keyof T, unknown>;
  const real = methods[name] as (...args: unknown[]) => unknown;
  let armed = false;
  methods[name] = function (this: unknown, ...args: unknown[]) {
    const out = real.apply(this, args);
    if (armed) {
      armed = false;
      then();
    }
    return out;
  };
  cleanups.push(() => {
    methods[name] = real;
  });
  return {
    arm: () => {
      armed = true;
    },
  };
}

async function expectRestoreEquals(
  store: MemoryStore,
  dir: string,
  expected: string,
  name: string,
) {
  const out = join(dir, `${name}.db`);
  await restore(store, out);
  expect(dumpFile(out)).toBe(expected);
  expect(integrity(out)).toBe("ok");
}

describe("continuity", () => {
  test("a database file replaced under the replicator is republished as a snapshot", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    let app = openApp(dbPath);
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    app.prepare("INSERT INTO t (v) VALUES ('old')").run();
    const store = new MemoryStore();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    cleanups.push(() => r.close());
    await r.sync();
    app.close();

    const otherPath = join(dir, "other.db");
    const other = openApp(otherPath);
    other.exec("CREATE TABLE u (k TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID");
    other.prepare("INSERT INTO u VALUES ('replaced', 42)").run();
    other.pragma("journal_mode = delete");
    other.close();
    renameSync(otherPath, dbPath);
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });

    const pos = await r.sync();
    expect(r.stats().continuityBreaks["database file replaced"]).toBe(1);
    app = openApp(dbPath);
    cleanups.push(() => app.close());
    // The new TXID is a level-0 file holding what differs from the replica's
    // state (the writer knows it page by page): no level-9 snapshot needed.
    const files = await listAllLevels(store);
    expect(files.some((f) => f.level === 0 && f.maxTXID === pos.txid)).toBe(true);
    expect(files.filter((f) => f.level === 9).map((f) => f.maxTXID)).toEqual([1]);
    await expectRestoreEquals(store, dir, dump(app), "replaced");
    app.prepare("INSERT INTO u VALUES ('after', 1)").run();
    await r.sync();
    await expectRestoreEquals(store, dir, dump(app), "after");
  });

  test("a restart after the WAL was checkpointed and truncated without the replicator", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const store = new MemoryStore();
    let r = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    app.prepare("INSERT INTO t (v) VALUES ('a')").run();
    await r.sync();
    await r.close();
    // While nobody replicates: writes, a full checkpoint, more writes.
    for (let i = 0; i < 50; i++) app.prepare("INSERT INTO t (v) VALUES (?)").run(`while down ${i}`);
    expect(app.pragma("wal_checkpoint(TRUNCATE)")).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    app.prepare("INSERT INTO t (v) VALUES ('after truncate')").run();
    r = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    cleanups.push(() => r.close());
    await expectRestoreEquals(store, dir, dump(app), "restart");
    app.prepare("INSERT INTO t (v) VALUES ('more')").run();
    await r.sync();
    await expectRestoreEquals(store, dir, dump(app), "restart2");
    expect(await verifyAllFiles(store)).toBeGreaterThan(3);
  });

  test("autoRestore brings a missing database back from the replica, then replication resumes", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const store = new MemoryStore();
    const r1 = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    for (let i = 0; i < 20; i++) app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
    await r1.sync();
    const expected = dump(app);
    await r1.close();
    app.close();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${dbPath}${suffix}`, { force: true });
    expect(existsSync(dbPath)).toBe(false);
    await expect(Replicator.start({ db: dbPath, store, syncInterval: 0 })).rejects.toMatchObject({
      code: "DB_MISSING",
    });

    const r2 = await Replicator.start({ db: dbPath, store, syncInterval: 0, autoRestore: true });
    cleanups.push(() => r2.close());
    const app2 = openApp(dbPath);
    cleanups.push(() => app2.close());
    expect(dump(app2)).toBe(expected);
    app2.prepare("INSERT INTO t (v) VALUES ('new')").run();
    await r2.sync();
    await expectRestoreEquals(store, dir, dump(app2), "auto");

    const emptyDir = tempDir();
    cleanups.push(emptyDir.cleanup);
    await expect(
      Replicator.start({
        db: join(emptyDir.dir, "x.db"),
        store: new MemoryStore(),
        autoRestore: true,
        syncInterval: 0,
      }),
    ).rejects.toMatchObject({ code: "DB_MISSING" });
  });

  test("periodic snapshots at the current TXID move the head's plan forward", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const store = new MemoryStore();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, snapshotInterval: 1 });
    cleanups.push(() => r.close());
    for (let i = 0; i < 3; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
      await new Promise((res) => setTimeout(res, 5));
      await r.sync();
    }
    const head = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
    expect(head.files.length).toBe(1);
    expect(head.files[0]!.key).toBe(
      `0009/0000000000000001-${head.txid.toString(16).padStart(16, "0")}.ltx`,
    );
    await expectRestoreEquals(store, dir, dump(app), "periodic");
  });

  test("an in-process application writing while background syncs checkpoint", async () => {
    const { dir, dbPath, app, insert } = blobApp();
    const store = new MemoryStore();
    const r = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 5,
      checkpointPages: 30,
      truncatePages: 120,
      compaction: { l1: 50, l2: 100, l3: 200 },
    });
    cleanups.push(() => r.close());
    const end = Date.now() + 1500;
    let n = 0;
    while (Date.now() < end) {
      app.transaction(() => {
        for (let i = 0; i < 5; i++) insert.run(Buffer.alloc(700, n++ & 255));
      })();
      if (n % 50 === 0) app.prepare("DELETE FROM t WHERE id % 7 = 0").run();
      await new Promise((res) => setImmediate(res));
    }
    await r.sync();
    const s = r.stats();
    expect(s.errors).toBe(0);
    expect(s.checkpoints.passive + s.checkpoints.truncate).toBeGreaterThan(0);
    expect(s.continuityBreaks).toEqual({ "no replicated position (start)": 1 });
    await expectRestoreEquals(store, dir, dump(app), "background");
  });

  test("another connection committing right after our PASSIVE checkpoint unlocks continues the replica", async () => {
    // The race the multi-process torture test hit now and then: between the
    // unlock after PASSIVE and our bump, another writer restarts the fully
    // checkpointed WAL. Its frames are all in the new WAL, so no snapshot is due.
    const { dir, dbPath, app, insert } = blobApp();
    const walSalt1 = () => {
      const h = readFileSync(`${dbPath}-wal`).subarray(0, 32);
      return h.length === 32 ? h.readUInt32BE(16) : undefined;
    };
    let saltsAtInjection: [number | undefined, number | undefined] | undefined;
    const injection = afterNextCall(SqliteConnections.prototype, "unlock", () => {
      const before = walSalt1();
      insert.run(Buffer.alloc(500, 7));
      saltsAtInjection = [before, walSalt1()];
    });
    const store = new MemoryStore();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, checkpointPages: 30 });
    cleanups.push(() => r.close());
    for (let i = 0; i < 60; i++) insert.run(Buffer.alloc(900, i));
    injection.arm();
    await r.sync();
    expect(saltsAtInjection, "the injected commit ran inside the checkpoint").toBeDefined();
    // The injected commit restarted the WAL (salt-1 moves on by one at a restart).
    expect(saltsAtInjection![1]).toBe((saltsAtInjection![0]! + 1) >>> 0);
    for (let i = 0; i < 10; i++) insert.run(Buffer.alloc(900, 100 + i));
    await r.sync();
    const s = r.stats();
    expect(s.checkpoints.passive).toBeGreaterThan(0);
    expect(s.errors).toBe(0);
    expect(s.continuityBreaks).toEqual({ "no replicated position (start)": 1 });
    await expectRestoreEquals(store, dir, dump(app), "race");
  });

  test("after our PASSIVE checkpoint another connection may truncate the WAL once, but never checkpoint frames we have not read", async () => {
    const { dir, dbPath, app, insert } = blobApp();
    // Another application's connection with a short busy timeout, for its checkpoints.
    const other = openApp(dbPath, 50);
    cleanups.push(() => other.close());
    let truncated: unknown;
    const injection = afterNextCall(SqliteConnections.prototype, "unlock", () => {
      truncated = other.pragma("wal_checkpoint(TRUNCATE)");
    });
    const store = new MemoryStore();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, checkpointPages: 30 });
    cleanups.push(() => r.close());
    for (let i = 0; i < 60; i++) insert.run(Buffer.alloc(900, i));
    injection.arm();
    await r.sync();
    // Fully copied back already: the TRUNCATE went through, in the window.
    expect(truncated).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    for (let i = 0; i < 20; i++) insert.run(Buffer.alloc(900, 100 + i));
    // Frames not yet read by the replicator: nobody may restart the WAL, and
    // only our bump's frame, under the pin's read mark, may be copied back.
    const [restart] = other.pragma("wal_checkpoint(RESTART)") as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    expect(restart!.busy).toBe(1);
    expect(restart!.log).toBeGreaterThanOrEqual(20);
    expect(restart!.checkpointed).toBeLessThanOrEqual(1);
    for (let i = 0; i < 5; i++) insert.run(Buffer.alloc(900, 200 + i));
    await r.sync();
    const s = r.stats();
    expect(s.errors).toBe(0);
    expect(s.continuityBreaks).toEqual({ "no replicated position (start)": 1 });
    await expectRestoreEquals(store, dir, dump(app), "truncated");
  });

  test.each([
    ["TRUNCATE", { checkpointPages: 10, truncatePages: 30 }],
    ["PASSIVE", { checkpointPages: 30 }],
  ] as const)(
    "a commit and a full checkpoint by others right after the bump of our %s checkpoint are not lost",
    async (_mode, policy) => {
      // Between the bump's commit and the pin (as the pin was taken before),
      // another commit and a checkpoint copying it back let a later write
      // restart the WAL with that commit never read: the replica lost it.
      const { dir, dbPath, app, insert } = blobApp();
      const other = openApp(dbPath, 50);
      cleanups.push(() => other.close());
      let copied: unknown;
      const injection = afterNextCall(SqliteConnections.prototype, "bumpAndUnlock", () => {
        insert.run(Buffer.alloc(900, 0xaa));
        copied = other.pragma("wal_checkpoint(PASSIVE)");
      });
      const store = new MemoryStore();
      const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, ...policy });
      cleanups.push(() => r.close());
      for (let i = 0; i < 60; i++) insert.run(Buffer.alloc(900, i));
      await r.sync();
      for (let i = 0; i < 60; i++) insert.run(Buffer.alloc(900, i));
      injection.arm();
      await r.sync();
      expect(copied, "the injected commit and checkpoint ran").toBeDefined();
      // Nothing the replicator has not read may be copied back.
      expect(copied).toEqual([{ busy: 0, log: expect.any(Number), checkpointed: 0 }]);
      app.pragma("user_version = 7");
      await r.sync();
      for (let i = 0; i < 3; i++) insert.run(Buffer.alloc(900, 0xcc));
      await r.sync();
      expect(r.stats().errors).toBe(0);
      await expectRestoreEquals(store, dir, dump(app), "bump");
    },
  );

  test("a WAL restarted over the frames the divergence check points at does not stall background syncs", async () => {
    // Our PASSIVE copied the whole WAL back and the pin reads the database
    // file alone; the application holds the write lock past our busy
    // timeout, so no bump; its commit then restarts the WAL, over frames the
    // position still points at. The check read them before the scan followed
    // (WAL_CHANGED on every tick: replication stopped until a manual sync).
    const { dir, dbPath, app, insert } = blobApp();
    let held = false;
    const injection = afterNextCall(SqliteConnections.prototype, "unlock", () => {
      app.exec("BEGIN IMMEDIATE");
      held = true;
    });
    const store = new MemoryStore();
    const r = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 40,
      checkpointPages: 30,
      verifyPages: 100_000,
    });
    cleanups.push(() => r.close());
    for (let i = 0; i < 40; i++) insert.run(Buffer.alloc(900, i));
    injection.arm();
    const until = async (what: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !what() && Date.now() < end; ) await sleep(20);
    };
    await until(() => held, 5000);
    expect(held, "the application took the lock inside our checkpoint").toBe(true);
    await sleep(300); // background syncs with nothing new
    for (let i = 0; i < 40; i++) insert.run(Buffer.alloc(900, 100 + i));
    app.exec("COMMIT");
    const committedAt = r.position.txid;
    await until(() => r.position.txid > committedAt, 5000);
    expect(r.position.txid, "background syncs carried on").toBeGreaterThan(committedAt);
    expect(r.stats().errors).toBe(0);
    await r.sync();
    await expectRestoreEquals(store, dir, dump(app), "verify");
  });

  test("a start resuming while another process keeps restarting the WAL does not fail", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
    app.transaction(() => {
      const ins = app.prepare("INSERT INTO t (v) VALUES (randomblob(900))");
      for (let i = 0; i < 20_000; i++) ins.run();
    })();
    app.close();
    const store = new MemoryStore();
    const first = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    await first.sync();
    await first.close();
    const stop = join(dir, "stop");
    const restarter = spawn(
      "python3",
      [join(import.meta.dirname, "fixtures", "wal-restarter.py"), dbPath, stop],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise((res) => restarter.on("exit", res));
    cleanups.push(async () => {
      writeFileSync(stop, "");
      await exited;
    });
    await sleep(300);
    // Each start reads the resume point unpinned while the WAL restarts:
    // before, about half of them threw WAL_CHANGED out of start().
    const failures: string[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        const r = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
        await r.close();
      } catch (err) {
        failures.push(String((err as Error).message));
      }
    }
    writeFileSync(stop, "");
    await exited;
    expect(failures).toEqual([]);
    const last = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    await last.close();
    const check = openApp(dbPath);
    cleanups.push(() => check.close());
    await expectRestoreEquals(store, dir, dump(check), "resumed");
  });

  test("after our checkpoint the pin holds a read mark, so the application's checkpoints are not blocked outright", async () => {
    // A pin begun on a fully checkpointed WAL reads the database file alone
    // and stops every checkpointer: the application's automatic checkpoint
    // then sorted the whole WAL on each commit for nothing (figure 5 fell to
    // 0.55x). The pin moves to the bump's read mark.
    const { dir, dbPath, app, insert } = blobApp();
    const store = new MemoryStore();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, checkpointPages: 30 });
    cleanups.push(() => r.close());
    for (let i = 0; i < 60; i++) insert.run(Buffer.alloc(900, i));
    await r.sync();
    expect(r.stats().checkpoints.passive).toBe(1);
    for (let i = 0; i < 5; i++) insert.run(Buffer.alloc(900, i));
    const [passive] = app.pragma("wal_checkpoint(PASSIVE)") as { checkpointed: number }[];
    expect(passive!.checkpointed).toBeGreaterThanOrEqual(1);
    await r.sync();
    await expectRestoreEquals(store, dir, dump(app), "mark");
  });

  test("a WAL truncated between the resume read and the first scan at start is a snapshot, not a lost commit", async () => {
    // The database file alone matched the replica's head, a commit sat in the
    // WAL unread; another connection copied it back and truncated the WAL
    // before the first scan, then held the write lock (so no bump): the scan
    // saw no WAL and took it for nothing lost.
    const { dir, dbPath, app, insert } = blobApp();
    for (let i = 0; i < 50; i++) insert.run(Buffer.alloc(500, i));
    const store = new MemoryStore();
    const first = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    await first.sync();
    await first.close();
    app.prepare("UPDATE t SET v = ? WHERE id = 3").run(Buffer.alloc(500, 0xee));
    const want = dump(app);
    let armed = true;
    const realScan = Capture.prototype.scan;
    Capture.prototype.scan = function (this: Capture, options = {}) {
      if (armed && options.pin === false && !options.sealing) {
        armed = false;
        app.pragma("wal_checkpoint(TRUNCATE)");
        app.exec("BEGIN IMMEDIATE");
      }
      return realScan.call(this, options);
    };
    cleanups.push(() => {
      Capture.prototype.scan = realScan;
    });
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    cleanups.push(() => r.close());
    expect(armed, "the truncation ran before the first scan").toBe(false);
    app.exec("ROLLBACK");
    await r.sync();
    await expectRestoreEquals(store, dir, want, "truncated-at-start");
  });
});
