/**
 * Every replica written by the reference LTX implementation the way Litestream
 * writes them (see the fixture README): both layouts (S3 keys in `%04x/`,
 * Litestream's file replica in `ltx/<n>/`), tracked checksums, legacy LZ4-frame
 * pages, and a young replica without a level-9 snapshot. Each is read through
 * a file:// URL, the way users point pagecast at a directory, and compared
 * with the database after each transaction (`states/`):
 * restore latest, at TXID 4 and by time (header times: the files' mtimes are
 * those of the copy); queries through a replica, at the latest state and
 * pinned, and time travel; and the CLI as a process (`ltx list`, `ltx verify`,
 * `query`, `restore`).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { decodeLtxHeader } from "../../src/format/index.js";
import { restore } from "../../src/replicator/restore.js";
import { openNodeStore } from "../../src/storage/open-node-store.js";
import { timeTravel } from "../../src/time-travel/index.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { tempDir } from "../replicator/helpers.js";
import { fixtureReplicas, fixtureState, fixtureStatePath, REPO_ROOT } from "./fixtures.js";

const tmp = tempDir("pagecast-fixtures-");
afterAll(() => tmp.cleanup());

const replicas = fixtureReplicas();
const BIN = join(REPO_ROOT, "bin", "pagecast.js");
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });

beforeAll(() => {
  expect(existsSync(join(REPO_ROOT, "dist", "cli", "main.js")), "run npm run build first").toBe(
    true,
  );
});

/** The queries compared with the states: every row of both tables, and the schema. */
const QUERIES = [
  "SELECT count(*), sum(length(v)), max(id) FROM t",
  "SELECT id, v FROM t ORDER BY id",
  "SELECT k, hex(v) FROM kv ORDER BY k",
  "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
];

function stateRows(txid: number, sql: string): unknown[][] {
  const db = new Database(fixtureStatePath(txid), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).raw().all() as unknown[][];
  } finally {
    db.close();
  }
}

/** Header time (commit time) of the level-0 file of `txid`. */
function commitTime(replica: (typeof replicas)[number], txid: number): number {
  const file = replica.files.find(
    (f) => f.level === 0 && f.minTXID === txid && f.maxTXID === txid,
  )!;
  return decodeLtxHeader(readFileSync(file.path)).timestamp;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

test("the fixture set is complete: five replicas, both layouts, states 1-6", () => {
  expect(replicas.map((r) => r.name)).toEqual([
    "A-s3-litestream",
    "B-file-litestream",
    "C-s3-checksums",
    "D-s3-legacyframe",
    "E-s3-noL9",
  ]);
  expect(replicas.map((r) => r.layout)).toEqual(["s3", "file", "s3", "s3", "s3"]);
  expect(replicas.find((r) => r.name.startsWith("E-"))!.files.every((f) => f.level === 0)).toBe(
    true,
  );
  for (let txid = 1; txid <= 6; txid++) expect(fixtureState(txid).length).toBeGreaterThan(0);
});

describe.each(replicas.map((r) => [r.name, r] as const))("%s", (_name, replica) => {
  const url = pathToFileURL(replica.dir).href;

  test("restore: latest, at TXID 4, and by commit time, byte for byte", async () => {
    const store = await openNodeStore(url);
    try {
      const latest = join(tmp.dir, `${replica.name}-latest.db`);
      expect(await restore(store, latest)).toMatchObject({ txid: 6 });
      expect(same(readFileSync(latest), fixtureState(6))).toBe(true);

      const four = join(tmp.dir, `${replica.name}-4.db`);
      expect(await restore(store, four, { txid: 4 })).toMatchObject({ txid: 4 });
      expect(same(readFileSync(four), fixtureState(4))).toBe(true);

      const two = join(tmp.dir, `${replica.name}-2.db`);
      expect(await restore(store, two, { txid: 2 })).toMatchObject({ txid: 2 });
      expect(same(readFileSync(two), fixtureState(2))).toBe(true);

      // The files' mtimes are the copy's; the commit times are in the headers.
      const t4 = commitTime(replica, 4);
      const t5 = commitTime(replica, 5);
      expect(t5).toBeGreaterThan(t4 + 1);
      for (const [at, txid] of [
        [t4, 4],
        [t4 + Math.floor((t5 - t4) / 2), 4],
        [t4 - 1, 3],
        [t5, 5],
      ] as const) {
        const out = join(tmp.dir, `${replica.name}-at-${at}.db`);
        const result = await restore(store, out, { timestamp: new Date(at) });
        expect(result.txid, `restore at ${new Date(at).toISOString()}`).toBe(txid);
        // The header time of the plan's last file: TXID's commit, or a later snapshot's write.
        expect(result.timestamp).toBeGreaterThanOrEqual(commitTime(replica, txid));
        expect(result.timestamp).toBeLessThanOrEqual(at);
        expect(same(readFileSync(out), fixtureState(txid))).toBe(true);
      }
      await expect(
        restore(store, join(tmp.dir, `${replica.name}-early.db`), {
          timestamp: new Date(commitTime(replica, 1) - 1),
        }),
      ).rejects.toMatchObject({ code: "RESTORE_TARGET_UNAVAILABLE" });
    } finally {
      await store.close();
    }
  });

  test("queries through a replica: latest, pinned at TXID 4 and at a time, time travel", async () => {
    // file:// is Node-only: the store comes from openNodeStore, as in the CLI.
    const open = async (at?: Date | { txid: number }) =>
      openReplica({
        store: await openNodeStore(url),
        closeStore: true,
        wasm: readSqliteWasm,
        ...(at ? { at } : {}),
      });
    const latest = await open();
    // Time travel over a file:// replica needs its store (the reader side opens no files).
    const store = await openNodeStore(url);
    try {
      expect(latest.status().txid).toBe(6);
      for (const sql of QUERIES) expect(await latest.values(sql), sql).toEqual(stateRows(6, sql));
      // Time travel from the open replica, by TXID and by time.
      const sql = "SELECT count(*), sum(length(v)) FROM t";
      const back = await timeTravel(
        latest,
        { txid: 4 },
        { store, replicaOptions: { wasm: readSqliteWasm } },
        async (db) => ({
          txid: db.$at.txid,
          rows: await db.$replica.values(sql),
        }),
      );
      expect(back).toEqual({ txid: 4, rows: stateRows(4, sql) });
      const t2 = commitTime(replica, 2);
      const then = new Date(t2 + 500).toISOString();
      const past = await timeTravel(
        latest,
        then,
        { store, replicaOptions: { wasm: readSqliteWasm } },
        async (db) => ({
          at: db.$at,
          rows: await db.$replica.values(sql),
        }),
      );
      expect(past).toEqual({ at: { txid: 2, commitTime: new Date(t2) }, rows: stateRows(2, sql) });
    } finally {
      await latest.close();
      await store.close();
    }
    const t3 = commitTime(replica, 3);
    for (const [at, txid] of [
      [{ txid: 4 }, 4],
      [new Date(t3 + 1000), 3],
    ] as const) {
      const pinned = await open(at);
      try {
        expect(pinned.status().txid).toBe(txid);
        for (const sql of QUERIES) {
          expect(await pinned.values(sql), sql).toEqual(stateRows(txid, sql));
        }
      } finally {
        await pinned.close();
      }
    }
  });

  test("the CLI as processes: ltx list, ltx verify, query, restore", async () => {
    const sql = "SELECT count(*), sum(length(v)) FROM t";
    const [json, text, queried] = await Promise.all([
      run(["ltx", "list", url, "--json"]),
      run(["ltx", "list", url]),
      run(["query", url, sql, "--json", "--at", "txid:4"]),
    ]);
    const listed = JSON.parse(json.stdout) as {
      level: number;
      minTXID: number;
      maxTXID: number;
      path?: string;
    }[];
    expect(listed.map((f) => [f.level, f.minTXID, f.maxTXID])).toEqual(
      replica.files.map((f) => [f.level, f.minTXID, f.maxTXID]),
    );
    // Where each file is, in whichever layout the directory uses.
    expect(listed.map((f) => f.path)).toEqual(replica.files.map((f) => f.path));
    const l0 = replica.files.filter((f) => f.level === 0).length;
    expect(text.stdout).toContain(`# level 0: ${l0} files`);
    const [[count, sum]] = stateRows(4, sql) as [[number, number]];
    expect(JSON.parse(queried.stdout)).toEqual([{ "count(*)": count, "sum(length(v))": sum }]);

    const verified = await run(["ltx", "verify", ...listed.map((f) => f.path!)]);
    const lines = verified.stdout.trim().split("\n");
    expect(lines).toHaveLength(replica.files.length);
    expect(lines.every((line) => line.startsWith("ok "))).toBe(true);

    // Restore by time through the CLI: once per layout, and on the replica without a snapshot.
    if (replica.name.startsWith("B-") || replica.name.startsWith("E-")) {
      const out = join(tmp.dir, `${replica.name}-cli.db`);
      const at = new Date(commitTime(replica, 5) + 1).toISOString();
      await run(["restore", url, out, "--timestamp", at]);
      expect(same(readFileSync(out), fixtureState(5))).toBe(true);
    }
  });
});
