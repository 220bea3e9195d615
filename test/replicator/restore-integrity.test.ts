/**
 * Restore's SQLite check, in Litestream's `-integrity-check` modes: `quick`
 * (the default) catches a broken B-tree, `full` also an index that disagrees
 * with its table, `none` checks nothing beyond the LTX checksums (which pass
 * here: the writer's own file is what is broken). A failed check leaves no file.
 */
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openApp, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;

beforeAll(() => {
  ({ dir, cleanup } = tempDir("pagecast-restore-integrity-"));
});
afterAll(() => cleanup?.());

/** Replicates the database at `path` (as it is) into a fresh store, runs `use` on it, closes it. */
async function withReplica(
  path: string,
  use: (store: MemoryStore) => Promise<void>,
): Promise<void> {
  const store = new MemoryStore();
  try {
    const replicator = await Replicator.start({
      db: path,
      store,
      syncInterval: 0,
      compaction: false,
    });
    await replicator.close();
    await use(store);
  } finally {
    await store.close();
  }
}

/** A database whose index `t_a` lists column b's values: integrity_check fails, quick_check passes. */
function indexMismatch(path: string): void {
  const app = openApp(path);
  app.exec(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER); CREATE INDEX t_a ON t(a)",
  );
  const ins = app.prepare("INSERT INTO t (a, b) VALUES (?, ?)");
  app.transaction(() => {
    for (let i = 0; i < 500; i++) ins.run(i, 1000 - i);
  })();
  app.close();
  const raw = new Database(path);
  raw.unsafeMode(true);
  raw.pragma("writable_schema = ON");
  raw.prepare("UPDATE sqlite_schema SET sql = 'CREATE INDEX t_a ON t(b)' WHERE name = 't_a'").run();
  raw.close();
}

/** A database with a table page whose cell count is impossible: both checks fail. */
function brokenPage(path: string): void {
  const app = openApp(path);
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const ins = app.prepare("INSERT INTO t (v) VALUES (?)");
  app.transaction(() => {
    for (let i = 0; i < 2000; i++) ins.run(`row ${i} `.repeat(5));
  })();
  app.pragma("wal_checkpoint(TRUNCATE)");
  const root = (
    app.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 't'").get() as {
      rootpage: number;
    }
  ).rootpage;
  app.close();
  const raw = new Database(path);
  raw.pragma("journal_mode = DELETE");
  raw.close();
  // Page `root` is an interior page of t: point its rightmost child past the end of the file.
  const fd = openSync(path, "r+");
  try {
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(0x7fff_fff0);
    writeSync(fd, buf, 0, 4, (root - 1) * 4096 + 8);
  } finally {
    closeSync(fd);
  }
}

describe("restore -integrity-check modes", () => {
  test("an index that disagrees with its table: full fails, quick and none restore", async () => {
    const path = join(dir, "mismatch.db");
    indexMismatch(path);
    await withReplica(path, async (store) => {
      const out = join(dir, "mismatch-full.db");
      await expect(restore(store, out, { integrityCheck: "full" })).rejects.toMatchObject({
        code: "RESTORE_FAILED",
        message: expect.stringMatching(/failed integrity_check: .*t_a/),
      });
      expect(existsSync(out)).toBe(false);
      // `true` is full, as it always was.
      await expect(restore(store, out, { integrityCheck: true })).rejects.toMatchObject({
        code: "RESTORE_FAILED",
      });
      const quick = await restore(store, join(dir, "mismatch-quick.db"));
      expect(quick.integrityCheck).toBe("quick");
      expect(quick.checksumVerified).toBe("head");
      const none = await restore(store, join(dir, "mismatch-none.db"), { integrityCheck: false });
      expect(none.integrityCheck).toBe("none");
    });
  });

  test("a broken B-tree: the default quick check fails the restore and leaves no file", async () => {
    const path = join(dir, "broken.db");
    brokenPage(path);
    await withReplica(path, async (store) => {
      const out = join(dir, "broken-quick.db");
      await expect(restore(store, out)).rejects.toMatchObject({
        code: "RESTORE_FAILED",
        message: expect.stringMatching(/failed quick_check: /),
      });
      expect(existsSync(out)).toBe(false);
      const none = await restore(store, join(dir, "broken-none.db"), { integrityCheck: "none" });
      expect(none.integrityCheck).toBe("none");
    });
  });

  test("an unknown mode is a typed error", async () => {
    const store = new MemoryStore();
    try {
      await expect(
        restore(store, join(dir, "x.db"), { integrityCheck: "fast" as never }),
      ).rejects.toMatchObject({ code: "INVALID_OPTION", message: expect.stringMatching(/"fast"/) });
    } finally {
      await store.close();
    }
  });
});
