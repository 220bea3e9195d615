/**
 * The database changing behind the replicator's back, with the application
 * in other processes (Debian's sqlite3):
 * - issue 18's backup swap: app closed, a backup copied over the database,
 *   `-wal`/`-shm` deleted, app reopened. The app's writes must succeed (the
 *   replicator must not keep locks on the swapped file), and the replica
 *   must follow with a snapshot, the divergence counted and published;
 * - a page of the database file rewritten in place (no WAL, page 1 intact):
 *   only the divergence check can see it; it must, publish `diverged` in the
 *   head while the repair is pending (`pagecast status` shows it), and repair it.
 *
 * The test process never opens the database file itself while the
 * replicator runs in it (closing a descriptor would drop the replicator's
 * locks): every file operation runs in a child process.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HEAD_OBJECT_KEY, parseHeadObject } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { dumpFile, integrity, tempDir } from "./helpers.js";
import { ensureBuilt, pagecast, sleep, sqlite3, startReplicatorChild } from "./processes.js";

beforeAll(ensureBuilt, 180_000);
const { dir, cleanup } = tempDir("pagecast-swap-");
afterAll(cleanup);

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function head(store: ObjectStore) {
  return parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
}

async function expectRestoreEquals(store: ObjectStore, db: string, name: string) {
  const out = join(dir, `${name}-restored.db`);
  await restore(store, out);
  expect(integrity(out)).toBe("ok");
  // The replicator is closed by now: reading the primary in this process is safe.
  expect(dumpFile(out)).toBe(dumpFile(db));
}

describe("the database changed behind the replicator", () => {
  for (const kind of ["rollback-mode backup (VACUUM INTO)", "WAL-mode backup (.backup)"]) {
    test(`backup swap, ${kind}: the app's writes succeed and the replica follows`, async () => {
      const name = kind.startsWith("rollback") ? "swap-rollback" : "swap-wal";
      const db = join(dir, `${name}.db`);
      const backup = join(dir, `${name}-backup.db`);
      await sqlite3(
        db,
        "PRAGMA journal_mode=WAL",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO t (v) VALUES ('before backup')",
      );
      const rep = join(dir, `${name}-replica`);
      // The replicator in a process of its own, beside the application's.
      const r = await startReplicatorChild(db, pathToFileURL(rep).href, { syncInterval: 50 });
      const store = new FileStore({ root: rep });
      try {
        await sqlite3(
          db,
          kind.startsWith("rollback") ? `VACUUM INTO '${backup}'` : `.backup '${backup}'`,
        );
        for (let i = 0; i < 5; i++) await sqlite3(db, `INSERT INTO t (v) VALUES ('later ${i}')`);
        await r.ask("sync");
        // The app is closed (each sqlite3 process was); the backup goes back in place.
        execFileSync("cp", [backup, db]);
        rmSync(`${db}-wal`, { force: true });
        rmSync(`${db}-shm`, { force: true });
        // The app reopens and writes: each write must succeed within its busy timeout.
        const started = Date.now();
        for (let i = 0; i < 9; i++) {
          await sqlite3(db, `INSERT INTO t (v) VALUES ('after swap ${i}')`);
        }
        expect(Date.now() - started).toBeLessThan(20_000);
        const expected = dumpFile(db);
        let restores = 0;
        await until("the replica to equal the database", async () => {
          await r.ask("sync");
          const out = join(dir, `${name}-follow-${++restores}.db`);
          await restore(store, out);
          return dumpFile(out) === expected;
        });
        const s = await r.stats();
        expect(s.health).toBe("healthy");
        expect(s.divergences).toBeGreaterThanOrEqual(1);
        expect((s.lastDivergence as { reason: string }).reason).toMatch(
          /WAL file deleted|-shm file deleted|changed outside/,
        );
        const h = await head(store);
        expect(h.writer).toMatchObject({ health: "ok", divergences: s.divergences });
      } finally {
        await r.ask("close");
      }
      await expectRestoreEquals(store, db, name);
      await store.close();
    }, 60_000);
  }

  // "while a head write is in flight": the divergence is found while the
  // head of an earlier commit is being written (a slow store, a loaded
  // machine); that write must not count as showing it.
  for (const when of ["between syncs", "while a head write is in flight"]) {
    test(`a page rewritten in place (${when}) is found by the divergence check, shown as diverged, then repaired`, async () => {
      const inFlight = when.startsWith("while");
      const name = inFlight ? "diverge-head" : "diverge";
      const db = join(dir, `${name}.db`);
      await sqlite3(
        db,
        "PRAGMA journal_mode=WAL",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400) INSERT INTO t (v) SELECT printf('row-%04d-%s', i, hex(randomblob(40))) FROM c",
        "UPDATE t SET v = 'needle-aaaaaaaaaaaa' WHERE id = 250",
        "CREATE TABLE more (id INTEGER PRIMARY KEY, v BLOB)",
      );
      const rep = join(dir, `${name}-replica`);
      const files = new FileStore({ root: rep });
      // The repair (the next TXID's level-0 file, published while the writer
      // is diverged) waits while `hold` is set: it stays pending long enough to be seen.
      let hold: Promise<void> | undefined;
      let release = () => {};
      // With `headGate` set, the next head write waits for it (`headWaiting` tells when it does).
      let headGate: Promise<void> | undefined;
      let openHead = () => {};
      let headWaiting = false;
      let r: Replicator | undefined;
      const store = new Proxy(files, {
        get(target, prop) {
          if (prop === "put") {
            return async (key: string, ...rest: unknown[]) => {
              if (key === HEAD_OBJECT_KEY && headGate) {
                const gate = headGate;
                headGate = undefined;
                headWaiting = true;
                await gate;
              }
              if (key.startsWith("0000/") && hold && r?.stats().health === "diverged") await hold;
              return (target.put as (...a: unknown[]) => unknown)(key, ...rest);
            };
          }
          const v = Reflect.get(target, prop, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }) as ObjectStore;
      r = await Replicator.start({
        db,
        store,
        syncInterval: 30,
        checkpointPages: 5,
        truncatePages: 10,
        verifyPages: 16,
      });
      try {
        if (!inFlight) {
          await sqlite3(db, "INSERT INTO more (v) SELECT randomblob(3000) FROM t LIMIT 20");
          // The replicator's own TRUNCATE checkpoint moves every page into the database file.
          await until("a TRUNCATE checkpoint", () => r.stats().checkpoints.truncate > 0);
        } else {
          // Everything published, then one small commit (table `more` only: the
          // page rewritten below stays in the database file) whose head waits.
          // Nothing commits after it: the divergence check runs only with
          // nothing captured and unpublished.
          await until("the first snapshot", () => {
            const st = r.stats();
            return st.txid >= 1 && st.pending.transactions === 0 && !st.pending.snapshotDue;
          });
          headGate = new Promise((res) => {
            openHead = res;
          });
          await sqlite3(db, "INSERT INTO more (v) VALUES (x'00')");
          await until("the commit's head write", () => headWaiting);
        }
        hold = new Promise((res) => {
          release = res;
        });
        // Outside SQLite: the same bytes length, another value, page 1 untouched.
        execFileSync("python3", [
          "-c",
          "import sys\np=sys.argv[1]\nb=open(p,'rb').read()\ni=b.index(b'needle-aaaaaaaaaaaa')\nf=open(p,'r+b')\nf.seek(i)\nf.write(b'needle-bbbbbbbbbbbb')\nf.close()",
          db,
        ]);
        await until("the divergence", () => r.stats().divergences > 0, 30_000);
        openHead();
        const s = r.stats();
        expect(s.health).toBe("diverged");
        expect(s.lastDivergence?.reason).toMatch(/replica diverged from the database \(page \d+\)/);
        await until(
          "the diverged head",
          async () => (await head(files)).writer?.health === "diverged",
        );
        const status = await pagecast(["status", pathToFileURL(rep).href, "--json"]);
        const st = JSON.parse(status.stdout)[0];
        expect(st.health).toBe("diverged");
        expect(st.writer).toMatchObject({ health: "diverged", divergences: 1 });
        release();
        hold = undefined;
        await until("the repair", async () => (await head(files)).writer?.health === "ok");
        expect(r.stats().health).toBe("healthy");
        expect(r.stats().continuityBreaks).toMatchObject({
          [s.lastDivergence!.reason]: 1,
        });
        const after = JSON.parse(
          (await pagecast(["status", pathToFileURL(rep).href, "--json"])).stdout,
        )[0];
        expect(after.health).toBe("healthy");
        expect(after.writer).toMatchObject({ health: "ok", divergences: 1 });
      } finally {
        // Whatever failed above, nothing held may keep close() (its final sync) waiting.
        openHead();
        headGate = undefined;
        release();
        hold = undefined;
        await r.close();
      }
      await expectRestoreEquals(files, db, name);
      await files.close();
    }, 90_000);
  }
});
