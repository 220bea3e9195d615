/**
 * Restarts of `pagecast replicate` (a real process each time, stopped with
 * SIGTERM) continue from the replica's position without a snapshot whenever
 * the database is still there: after restarts without writes, and with an
 * application writing in between (while the replicator runs and while it is
 * stopped: it keeps its connection open, so SQLite keeps those writes in the
 * WAL). A database changed behind the writer's back (writes checkpointed
 * while nobody replicated, an offline VACUUM, a backup copied over the file)
 * takes exactly one snapshot, and the log says why: the next TXID's level-0
 * file, holding only what changed (the replica's state is rebuilt from its
 * files to diff against), with no new level-9 snapshot.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { decodeLtx, formatLtxFilename } from "../../src/format/index.js";
import { HEAD_OBJECT_KEY, listAllLevels, parseHeadObject } from "../../src/layout/index.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { dumpFile, integrity, tempDir } from "./helpers.js";
import { ensureBuilt, root, sqlite3, startDaemon } from "./processes.js";

beforeAll(ensureBuilt, 180_000);
const { dir, cleanup } = tempDir("pagecast-resume-");
afterAll(cleanup);

/** An application process holding one connection; `run(sql)` resolves once it ran. */
function appProcess(db: string) {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(import.meta.dirname, "fixtures", "app-connection.mjs"), db],
    { cwd: root, stdio: ["pipe", "pipe", "inherit"] },
  );
  const answers: ((line: string) => void)[] = [];
  let ready!: () => void;
  const started = new Promise<void>((r) => {
    ready = r;
  });
  createInterface({ input: child.stdout! }).on("line", (l) => {
    if (l === "ready") ready();
    else answers.shift()?.(l);
  });
  return {
    started,
    run: (sql: string) =>
      new Promise<void>((res, rej) => {
        answers.push((l) => (l === "ok" ? res() : rej(new Error(l))));
        child.stdin!.write(`${sql}\n`);
      }),
    close: () =>
      new Promise<void>((res) => {
        child.on("exit", () => res());
        child.stdin!.end();
      }),
  };
}

describe("restart and resume", () => {
  test("restarts continue at the next TXID without a snapshot; a file changed behind the writer's back takes exactly one, with its reason", async () => {
    const db = join(dir, "app.db");
    await sqlite3(
      db,
      "PRAGMA journal_mode=WAL",
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) INSERT INTO t (v) SELECT hex(randomblob(100)) FROM c",
    );
    const rep = join(dir, "replica");
    const url = pathToFileURL(rep).href;
    const store = new FileStore({ root: rep });
    const snapshots = async () => (await listAllLevels(store)).filter((f) => f.level === 9).length;
    const cycle = async (during?: () => Promise<void>) => {
      const d = startDaemon(db, url, ["--sync-interval", "100ms", "--no-compaction"]);
      await d.ready;
      await during?.();
      expect(await d.stop("SIGTERM"), d.stderr()).toBe(0);
      return d.stderr();
    };

    await cycle();
    expect(await snapshots()).toBe(1);

    // 10 restarts without writes: no new snapshot.
    for (let i = 0; i < 10; i++) {
      const log = await cycle();
      expect(log).toMatch(/resuming from the replica's head without a snapshot/);
      expect(log).not.toMatch(/publishing snapshot/);
    }
    expect(await snapshots()).toBe(1);

    // 10 restarts with an application writing while it runs and while it is stopped.
    const app = appProcess(db);
    await app.started;
    let n = 0;
    const write = () => app.run(`INSERT INTO t (v) VALUES ('app ${++n}')`);
    for (let i = 0; i < 10; i++) {
      const log = await cycle(async () => {
        await write();
        await write();
        await new Promise((r) => setTimeout(r, 300));
      });
      expect(log).not.toMatch(/publishing snapshot/);
      await write();
    }
    await cycle();
    expect(await snapshots()).toBe(1);
    const files = await listAllLevels(store);
    const head = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
    const l0 = files.filter((f) => f.level === 0).map((f) => f.maxTXID);
    // Contiguous TXIDs: every one has its L0 file, the first (the start's snapshot) included.
    expect(l0).toEqual(Array.from({ length: head.txid }, (_, i) => i + 1));
    const backup = join(dir, "backup.db");
    await sqlite3(db, `VACUUM INTO '${backup}'`);

    // The application closes (the last connection checkpoints and deletes the
    // WAL), then writes while nobody replicates: the file changed behind the writer.
    await write();
    await app.close();
    await sqlite3(db, "INSERT INTO t (v) VALUES ('offline')");
    const changes: [string, () => Promise<unknown>][] = [
      ["offline VACUUM", () => sqlite3(db, "DELETE FROM t WHERE id % 3 = 0", "VACUUM")],
      [
        "backup copied over the file",
        async () => {
          copyFileSync(backup, db);
          await sqlite3(db, "PRAGMA journal_mode=WAL");
        },
      ],
    ];
    for (const [what, change] of [["writes checkpointed", async () => {}] as const, ...changes]) {
      await change();
      const before = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!).txid;
      const log = await cycle();
      expect(log, what).toMatch(
        /INFO publishing a snapshot at start reason="database changed while not replicated/,
      );
      // The replica's state is rebuilt from its files, so the next TXID's
      // level-0 file holds what changed, and no level-9 snapshot is needed.
      expect(log, what).toMatch(/rebuilt the replica's state/);
      expect(await snapshots(), what).toBe(1);
      const level0 = decodeLtx(
        (await store.get(`0000/${formatLtxFilename(before + 1, before + 1)}`)).body!,
      );
      if (what === "writes checkpointed") {
        expect(level0.pages.length, what).toBeLessThan(level0.header.commit / 4);
      }
      // ...and the next restart resumes again.
      expect(await cycle(), what).toMatch(/resuming from the replica's head without a snapshot/);
      expect(await snapshots(), what).toBe(1);
    }
    const level0 = (await listAllLevels(store)).filter((f) => f.level === 0).map((f) => f.maxTXID);
    expect(level0).toEqual(Array.from({ length: level0.length }, (_, i) => i + 1));
    const out = join(dir, "restored.db");
    await restore(store, out);
    expect(integrity(out)).toBe("ok");
    expect(dumpFile(out)).toBe(dumpFile(db));
    await store.close();
  }, 150_000);
});
