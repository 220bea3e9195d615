/**
 * A replica refuses every write to the replicated database, whatever trick a
 * query uses (DML, DDL, VACUUM, VACUUM INTO a path, writable_schema, ATTACH,
 * journal and locking mode changes, write transactions), never writes to
 * storage or to the local disk, stays correct afterwards, and still offers
 * temporary tables and large sorts (temp storage in memory). Issue 7.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type {
  GetOptions,
  ListOptions,
  ObjectStore,
  PutOptions,
} from "../../src/storage/object-store.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica, type Replica, ReplicaQueryError } from "../../src/vfs/index.js";
import { SCHEMA, seedRows } from "../reliability/helpers.js";
import { primaryValues, readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";

/** A store view that records (and refuses) every attempt to change storage. */
function guarded(inner: ObjectStore) {
  const attempts: string[] = [];
  const store: ObjectStore = {
    get url() {
      return inner.url;
    },
    get: (key: string, options?: GetOptions) => inner.get(key, options),
    head: (key, options) => inner.head(key, options),
    list: (options?: ListOptions) => inner.list(options),
    put: async (key: string, _body: Uint8Array, _options?: PutOptions) => {
      attempts.push(`put ${key}`);
      throw new Error("the replica tried to write to storage");
    },
    deleteMany: async (keys: string[]) => {
      attempts.push(`delete ${keys.join(",")}`);
      throw new Error("the replica tried to delete from storage");
    },
    counters: () => inner.counters(),
    close: async () => {},
  };
  return { store, attempts };
}

let dir = "";
let writer: ScriptedWriter;
let replica: Replica;
let attempts: string[];
let mem: MemoryStore;

const CHECK = "SELECT count(*), sum(score), max(name) FROM users";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pagecast-readonly-"));
  mem = new MemoryStore({ name: "readonly-security" });
  writer = new ScriptedWriter(mem);
  await writer.commit(SCHEMA);
  await writer.commit(() => seedRows(writer.db, prng(3), 400));
  const g = guarded(mem);
  attempts = g.attempts;
  replica = await openReplica({
    store: g.store,
    wasm: readSqliteWasm,
    pollIntervalMs: 0,
    connections: 2,
  });
});

afterAll(async () => {
  await replica?.close();
  writer?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function expectUnchanged(label: string): Promise<void> {
  const primary = writer.primaryAt(writer.txid);
  try {
    expect(await replica.values(CHECK), label).toEqual(primaryValues(primary, CHECK));
    const schema = "SELECT type, name, sql FROM sqlite_schema ORDER BY name";
    expect(await replica.values(schema), label).toEqual(primaryValues(primary, schema));
  } finally {
    primary.close();
  }
  expect(attempts, label).toEqual([]);
  expect(readdirSync(dir), label).toEqual([]);
}

/** Outcome of a statement: its rows, or the SQLite error code. */
async function attempt(sql: string): Promise<{ rows?: unknown[][]; code?: string }> {
  try {
    return { rows: await replica.values(sql) };
  } catch (err) {
    if (!(err instanceof ReplicaQueryError)) throw err;
    return { code: err.code };
  }
}

describe("the replica is read-only", () => {
  const writes: [string, string][] = [
    ["insert", "INSERT INTO users (name, age, score, bio) VALUES ('mallory', 1, 1, '')"],
    [
      "upsert",
      "INSERT INTO users (id, name) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET name = 'x'",
    ],
    ["replace", "REPLACE INTO users (id, name) VALUES (1, 'x')"],
    ["update", "UPDATE users SET score = 0"],
    ["delete", "DELETE FROM users"],
    ["returning", "DELETE FROM users WHERE id = 1 RETURNING *"],
    ["cte write", "WITH x AS (SELECT 1) UPDATE users SET score = 1 WHERE id IN (SELECT * FROM x)"],
    ["create table", "CREATE TABLE evil (x)"],
    ["create index", "CREATE INDEX evil_idx ON users(name)"],
    ["create view", "CREATE VIEW evil_v AS SELECT 1"],
    ["create trigger", "CREATE TRIGGER evil_t AFTER INSERT ON users BEGIN SELECT 1; END"],
    ["drop table", "DROP TABLE users"],
    ["drop index", "DROP INDEX users_age"],
    ["alter rename", "ALTER TABLE users RENAME TO victims"],
    ["alter add column", "ALTER TABLE users ADD COLUMN evil INTEGER"],
    ["vacuum", "VACUUM"],
    ["reindex", "REINDEX"],
    ["analyze", "ANALYZE"],
    ["user_version", "PRAGMA user_version = 42"],
    ["application_id", "PRAGMA application_id = 42"],
    ["schema_version", "PRAGMA schema_version = 9999"],
    ["page_size + vacuum", "PRAGMA page_size = 1024; VACUUM"],
    ["auto_vacuum + vacuum", "PRAGMA auto_vacuum = FULL; VACUUM"],
    ["incremental_vacuum", "PRAGMA incremental_vacuum"],
    [
      "writable_schema",
      "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = 'CREATE TABLE users (x)' WHERE name = 'users'",
    ],
    [
      "writable_schema delete",
      "PRAGMA writable_schema = 1; DELETE FROM sqlite_schema WHERE name = 'orders'",
    ],
    ["begin immediate + write", "BEGIN IMMEDIATE; DELETE FROM users; COMMIT"],
    ["begin exclusive + write", "BEGIN EXCLUSIVE; INSERT INTO users (name) VALUES ('m'); COMMIT"],
    ["savepoint + write", "SAVEPOINT s; UPDATE users SET name = 'm'; RELEASE s"],
    ["wal_checkpoint then write", "PRAGMA wal_checkpoint(TRUNCATE); DELETE FROM users"],
  ];

  test.each(writes)("%s is refused and changes nothing", async (label, sql) => {
    const out = await attempt(sql);
    expect(out.code, `${label}: ${sql} -> ${JSON.stringify(out)}`).toMatch(
      /^SQLITE_(READONLY|ERROR|AUTH|PERM)$/,
    );
    // A statement list that failed after its BEGIN leaves that transaction open
    // (see the BUG test below): end it, as an application would.
    if (/BEGIN|SAVEPOINT/.test(sql)) await attempt("ROLLBACK");
    await expectUnchanged(label);
  });

  test("VACUUM INTO a path never creates a file", async () => {
    for (const target of [
      join(dir, "copy.db"),
      `file:${join(dir, "copy-uri.db")}`,
      `file:${join(dir, "copy-memdb.db")}?vfs=memdb`,
      "copy-relative.db",
    ]) {
      const out = await attempt(`VACUUM INTO '${target}'`);
      expect(out.code, target).toMatch(/^SQLITE_(READONLY|CANTOPEN|ERROR)$/);
    }
    expect(existsSync("copy-relative.db")).toBe(false);
    await expectUnchanged("vacuum into");
  });

  test("ATTACH of another file fails; re-attaching the replica is read-only too", async () => {
    for (const target of [
      join(dir, "other.db"),
      `file:${join(dir, "other-uri.db")}?mode=rwc`,
      "",
    ]) {
      const out = await attempt(
        `ATTACH '${target}' AS other; CREATE TABLE other.t (x); INSERT INTO other.t VALUES (1)`,
      );
      if (target !== "") expect(out.code, target).toMatch(/^SQLITE_(READONLY|CANTOPEN|ERROR)$/);
      await attempt("DETACH other");
    }
    const again = await attempt("ATTACH 'pagecast-replica.db' AS again; DELETE FROM again.users");
    expect(again.code).toMatch(/^SQLITE_(READONLY|CANTOPEN|ERROR)$/);
    await attempt("DETACH again");
    // An in-memory scratch database is private to the connection: allowed, and harmless.
    await attempt(
      "ATTACH ':memory:' AS scratch; CREATE TABLE scratch.t (x); INSERT INTO scratch.t SELECT id FROM users",
    );
    await attempt("DETACH scratch");
    await expectUnchanged("attach");
  });

  test("journal and locking mode changes neither enable writes nor break following the writer", async () => {
    for (const mode of ["WAL", "DELETE", "OFF", "MEMORY", "TRUNCATE", "PERSIST"]) {
      await attempt(`PRAGMA journal_mode = ${mode}`);
      expect((await attempt("DELETE FROM users")).code, mode).toMatch(/^SQLITE_(READONLY|ERROR)$/);
      expect((await attempt("CREATE TABLE j (x)")).code, mode).toMatch(/^SQLITE_(READONLY|ERROR)$/);
    }
    for (const pragma of [
      "PRAGMA locking_mode = NORMAL",
      "PRAGMA locking_mode = EXCLUSIVE",
      "PRAGMA query_only = 0",
      "PRAGMA cache_size = 0",
      "PRAGMA temp_store = FILE",
    ]) {
      await attempt(pragma);
      await attempt(pragma);
      // The writer moves on: the replica must follow, on every connection.
      await writer.commit(`UPDATE users SET score = score + 1 WHERE id % 7 = ${writer.txid % 7}`);
      await replica.poll();
      await Promise.all([expectUnchanged(pragma), expectUnchanged(`${pragma} (2nd connection)`)]);
    }
    expect((await attempt("SELECT load_extension('/tmp/evil.so')")).code).toMatch(/^SQLITE_ERROR$/);
  });

  test("temporary tables, temp indexes and large sorts work, in memory", async () => {
    // Connections start with temp_store = MEMORY (2); the VFS keeps temp files in memory even
    // after a query sets temp_store = FILE (done in the test above on `replica`).
    const fresh = await openReplica({ store: guarded(mem).store, wasm: readSqliteWasm });
    expect(await fresh.values("PRAGMA temp_store")).toEqual([[2]]);
    await fresh.close();
    const result = await replica.transaction(async (tx) => {
      await tx.values(
        "CREATE TEMP TABLE IF NOT EXISTS scratch AS SELECT id, name, score FROM users",
      );
      await tx.values("INSERT INTO scratch SELECT id + 100000, name, score FROM users");
      await tx.values("CREATE INDEX IF NOT EXISTS temp.scratch_score ON scratch(score)");
      await tx.values(
        "CREATE TEMP VIEW IF NOT EXISTS rich AS SELECT * FROM scratch WHERE score > 5000",
      );
      return tx.values(
        "SELECT count(*) FROM scratch WHERE score > 5000 AND id IN (SELECT id FROM rich)",
      );
    });
    const primary = writer.primaryAt(writer.txid);
    const rich = primaryValues(
      primary,
      "SELECT count(*) FROM users WHERE score > 5000",
    )[0]![0] as number;
    primary.close();
    expect(result).toEqual([[rich * 2]]);
    // 200,000 rows through ORDER BY, GROUP BY and DISTINCT: sorter spills stay in memory.
    const big = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) ";
    expect(
      await replica.values(
        `${big}SELECT count(*), min(k), max(k) FROM (SELECT (i * 7919) % 200003 AS k, randomblob(40) AS pad FROM n ORDER BY k, pad)`,
      ),
    ).toEqual([[200000, expect.any(Number), expect.any(Number)]]);
    expect(
      await replica.values(`${big}SELECT count(*) FROM (SELECT DISTINCT i % 150000 FROM n)`),
    ).toEqual([[150000]]);
    expect(
      await replica.values(
        `${big}SELECT count(*) FROM (SELECT i % 1000 AS g, sum(i) FROM n GROUP BY g)`,
      ),
    ).toEqual([[1000]]);
    await replica.values("DROP TABLE temp.scratch");
    await expectUnchanged("temp work");
  });

  test("the query CLI refuses writes with exit code 1 and says SQLITE_READONLY", async () => {
    let stderr = "";
    const io = {
      stdout: () => {},
      stderr: (t: string) => {
        stderr += t;
      },
      isTTY: false,
      env: {},
      signal: new AbortController().signal,
    };
    for (const sql of [
      "DELETE FROM users",
      "DROP TABLE orders",
      `VACUUM INTO '${join(dir, "cli.db")}'`,
    ]) {
      stderr = "";
      expect(await main(["query", "memory://readonly-security", sql], io), sql).toBe(1);
      expect(stderr, sql).toMatch(/SQLITE_(READONLY|CANTOPEN|ERROR)/);
    }
    await expectUnchanged("cli");
  });

  /*
   * A transaction opened by query/values/execute ("BEGIN", "BEGIN IMMEDIATE")
   * ends with that call: the pooled connection is never left pinned to an old
   * version, and transaction() still works on it.
   */
  test("a transaction left open by a query does not pin the connection", async () => {
    const m = new MemoryStore();
    const w = new ScriptedWriter(m);
    await w.commit("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    const r = await openReplica({ store: m, wasm: readSqliteWasm, pollIntervalMs: 0 });
    try {
      await r.values("BEGIN");
      await r.values("BEGIN IMMEDIATE");
      await w.commit("UPDATE t SET x = 2");
      await r.poll();
      expect(r.status().txid).toBe(2);
      expect(await r.values("SELECT x FROM t")).toEqual([[2]]);
      expect(await r.transaction((tx) => tx.values("SELECT x FROM t"))).toEqual([[2]]);
    } finally {
      await r.close();
      w.close();
    }
  });
});
