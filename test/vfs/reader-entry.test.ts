/**
 * `pagecast/reader` (src/reader.ts): the replica reader without URL opening
 * and without the plain build. It opens a replica over a given store and
 * answers like the primary, runs every statement on the async build (hybrid
 * options ignored, nothing crashes), and refuses a URL with a typed error
 * pointing to `store` / `pagecast`. The full `openReplica` keeps both.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { openReplica as openFullReplica } from "../../src/index.js";
import {
  openReplica,
  prefixedStore,
  type Replica,
  ReplicaError,
  ReplicaQueryError,
} from "../../src/reader.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { ReplicaConnection } from "../../src/vfs/replica-connection.js";
import { readSyncSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { primaryValues, readSqliteWasm, ScriptedWriter } from "./helpers.js";

const open: Replica[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((r) => r.close()));
});

async function published(name?: string) {
  const mem = new MemoryStore(name === undefined ? {} : { name });
  const writer = new ScriptedWriter(prefixedStore(mem, "app"), { head: true });
  await writer.commit(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, pad TEXT); CREATE INDEX t_k ON t(k);",
  );
  await writer.commit(() => {
    const ins = writer.db.prepare("INSERT INTO t (k, pad) VALUES (?, ?)");
    for (let i = 0; i < 3000; i++) ins.run(`key-${(i * 7919) % 3000}`, "p".repeat(300));
  });
  return { mem, writer };
}

/** `ReplicaConnection.execute` calls by build from now on. */
function countBuilds(): () => { sync: number; async: number } {
  const spy = vi.spyOn(ReplicaConnection.prototype, "execute");
  return () => {
    const counts = { sync: 0, async: 0 };
    for (const conn of spy.mock.contexts) counts[(conn as ReplicaConnection).build]++;
    return counts;
  };
}

describe("pagecast/reader openReplica", () => {
  test("opens over a given store, answers like the primary, follows commits, on the async build only", async () => {
    const { mem, writer } = await published();
    const builds = countBuilds();
    // Hybrid options a `pagecast` caller may pass: the plain build (explicit,
    // and paired with readSqliteWasm) is not used, and nothing fails.
    const replica = await openReplica({
      store: prefixedStore(mem, "app"),
      wasm: readSqliteWasm,
      syncWasm: readSyncSqliteWasm,
      connections: 2,
      pollIntervalMs: 0,
    });
    open.push(replica);
    const queries: [string, unknown[]][] = [
      ["SELECT count(*), sum(length(pad)) FROM t", []],
      ["SELECT id, k FROM t WHERE k = ?", ["key-42"]],
      ["SELECT k FROM t WHERE id BETWEEN ? AND ? ORDER BY k", [100, 140]],
    ];
    for (const [sql, params] of queries) {
      // Twice: cold, then warm (the warm path is where `pagecast` uses the plain build).
      for (let round = 0; round < 2; round++) {
        expect(await replica.values(sql, params as never)).toEqual(
          primaryValues(writer.db, sql, params),
        );
      }
    }
    const inTx = await replica.transaction(async (tx) => [
      await tx.values("SELECT count(*) FROM t"),
      await tx.query("SELECT k FROM t WHERE id = 7"),
    ]);
    expect(inTx).toEqual([
      [[3000]],
      [{ k: primaryValues(writer.db, "SELECT k FROM t WHERE id = 7")[0]![0] }],
    ]);
    // State-changing SQL (runs where the async build keeps it) and a BEGIN passed to query.
    await replica.values("CREATE TEMP TABLE seen (id INTEGER)");
    expect(await replica.values("BEGIN; SELECT count(*) FROM t")).toEqual([[3000]]);

    await writer.commit("DELETE FROM t WHERE id > 1000");
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[1000]]);
    expect(builds()).toMatchObject({ sync: 0 });
    expect(builds().async).toBeGreaterThan(0);
    await expect(replica.values("DELETE FROM t")).rejects.toBeInstanceOf(ReplicaQueryError);
  });

  test("the full openReplica still runs warm statements on the plain build", async () => {
    const { mem } = await published();
    const replica = await openFullReplica({
      store: prefixedStore(mem, "app"),
      wasm: readSqliteWasm,
      pollIntervalMs: 60_000,
    });
    open.push(replica);
    await replica.values("SELECT count(*) FROM t");
    const builds = countBuilds();
    await replica.values("SELECT count(*) FROM t");
    expect(builds()).toEqual({ sync: 1, async: 0 });
  });

  test("a URL, or no store, is a typed REPLICA_INVALID_ARGUMENT naming store and pagecast", async () => {
    const name = `reader-entry-${Date.now().toString(36)}`;
    await published(name);
    // A memory:// URL the full entry opens: refused here.
    const full = await openFullReplica(`memory://${name}/app`, { wasm: readSqliteWasm });
    open.push(full);
    const err = await openReplica(`memory://${name}/app` as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicaError);
    expect(err).toMatchObject({ code: "REPLICA_INVALID_ARGUMENT" });
    expect((err as Error).message).toMatch(/\{ store \}/);
    expect((err as Error).message).toMatch(/from "pagecast"/);
    for (const bad of [undefined, null, {}, { store: "s3://b/p" }, 42]) {
      await expect(openReplica(bad as never)).rejects.toMatchObject({
        code: "REPLICA_INVALID_ARGUMENT",
      });
    }
    // The full entry refuses a missing store with the same typed error (it used to crash on it).
    await expect(openFullReplica({} as never)).rejects.toMatchObject({
      code: "REPLICA_INVALID_ARGUMENT",
    });
  });
});
