/**
 * In Node, every public entry point accepts every URL the Node store accepts:
 * `openStore`, `openReplica` and `timeTravel` from `pagecast` open file://
 * replicas like the CLI and the Replicator do. Checked in-process through the
 * Node entry's sources, and in a child process importing the built package by
 * name (as users do; needs `npm run build`, which `npm test` runs first).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openReplica, openStore, timeTravel } from "../../src/index.node.js";
import { FileStore, Replicator } from "../../src/node.js";
import { tempDir } from "../replicator/helpers.js";

const run = promisify(execFile);
const repoRoot = resolve(__dirname, "../..");

let dir: string;
let cleanup: () => void;
let url: string;
const txids: number[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = tempDir("pagecast-node-entry-"));
  url = pathToFileURL(join(dir, "replica")).href;
  const db = new Database(join(dir, "app.db"));
  db.pragma("journal_mode = wal");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const replicator = await Replicator.start({
    db: join(dir, "app.db"),
    url,
    syncInterval: 0,
    compaction: false,
  });
  try {
    for (let i = 1; i <= 3; i++) {
      db.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
      txids.push((await replicator.sync()).txid);
    }
  } finally {
    await replicator.close();
    db.close();
  }
}, 60_000);

afterAll(() => cleanup?.());

describe("pagecast's Node entry opens file:// URLs", () => {
  test("openStore, openReplica and timeTravel (in-process, Node entry sources)", async () => {
    const store = await openStore(url);
    try {
      expect(store).toBeInstanceOf(FileStore);
      expect((await store.list({})).objects.length).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
    const replica = await openReplica(url);
    try {
      expect(await replica.values("SELECT count(*) FROM t")).toEqual([[3]]);
      const n = await timeTravel(replica, { txid: txids[0]! }, async (past) =>
        past.$replica.values("SELECT count(*) FROM t"),
      );
      expect(n).toEqual([[1]]);
    } finally {
      await replica.close();
    }
    const pinned = await openReplica(url, { at: { txid: txids[1]! } });
    try {
      expect(await pinned.values("SELECT count(*) FROM t")).toEqual([[2]]);
    } finally {
      await pinned.close();
    }
  });

  test("the built package imported by name in a child process", async () => {
    expect(existsSync(join(repoRoot, "dist", "index.node.js")), "run `npm run build` first").toBe(
      true,
    );
    const script = `
      import { openReplica, openStore, timeTravel } from "pagecast";
      const url = process.argv[1];
      const store = await openStore(url);
      const listed = (await store.list({})).objects.length;
      await store.close();
      const replica = await openReplica(url);
      const latest = await replica.values("SELECT count(*) FROM t");
      const past = await timeTravel(replica, { txid: Number(process.argv[2]) });
      const then = await past.$replica.values("SELECT count(*) FROM t");
      await past.close();
      await replica.close();
      console.log(JSON.stringify({ listed, latest, then }));
    `;
    // Self-reference: "pagecast" resolves to this checkout's package.json exports.
    const { stdout } = await run(
      process.execPath,
      ["--input-type=module", "-e", script, url, String(txids[0])],
      { cwd: repoRoot, timeout: 60_000 },
    );
    const out = JSON.parse(stdout.trim()) as { listed: number; latest: unknown; then: unknown };
    expect(out.listed).toBeGreaterThan(0);
    expect(out.latest).toEqual([[3]]);
    expect(out.then).toEqual([[1]]);
  });
});
