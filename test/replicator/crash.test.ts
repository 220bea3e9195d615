/**
 * Acceptance: a child process writes and calls sync(); it is killed with
 * SIGKILL at >= 20 random moments and restarted each time. After every kill,
 * a restore of the replica holds every transaction whose sync() resolved,
 * and no restore fails. The child runs the built code (dist/), as CI builds
 * before testing; the test builds it when absent.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { integrity, rng, tempDir, verifyAllFiles } from "./helpers.js";

const root = resolve(import.meta.dirname, "../..");
const dist = join(root, "dist");
const fixture = join(import.meta.dirname, "fixtures", "crash-writer.mjs");

beforeAll(() => {
  if (!existsSync(join(dist, "replicator", "replicator.js"))) {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
  }
}, 120_000);

const { dir, cleanup } = tempDir("pagecast-crash-");
afterAll(cleanup);

function startChild(
  dbPath: string,
  replica: string,
  acked: string,
  firstId: number,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fixture, dist, dbPath, replica, acked, String(firstId)], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not start: ${stderr}`)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolvePromise(child);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited early (${code}): ${stderr}`));
    });
  });
}

function readAcked(path: string): number[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map(Number);
}

describe("crash test", () => {
  test("SIGKILL at 20 random moments loses no acknowledged transaction", async () => {
    const rand = rng(4242);
    const dbPath = join(dir, "app.db");
    const replica = join(dir, "replica");
    const acked = join(dir, "acked.txt");
    writeFileSync(acked, "");
    let nextId = 1;
    for (let round = 0; round < 20; round++) {
      const t0 = Date.now();
      const child = await startChild(dbPath, replica, acked, nextId);
      const t1 = Date.now();
      await new Promise((r) => setTimeout(r, 30 + Math.floor(rand() * 400)));
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
      const ids = readAcked(acked);
      nextId = Math.max(nextId, ...ids, 0) + 1000;
      const out = join(dir, `restore-${round}.db`);
      const t2 = Date.now();
      const store = new FileStore({ root: replica });
      await restore(store, out);
      if (process.env.PAGECAST_DEBUG)
        console.log(
          `round ${round}: start ${t1 - t0} ms, run ${t2 - t1} ms, restore ${Date.now() - t2} ms`,
        );
      expect(integrity(out)).toBe("ok");
      const db = new Database(out, { readonly: false });
      const present = new Set(db.prepare("SELECT id FROM acked").pluck().all() as number[]);
      db.close();
      const missing = ids.filter((id) => !present.has(id));
      expect(missing, `round ${round}: acknowledged but missing`).toEqual([]);
      if (round % 5 === 4) expect(await verifyAllFiles(store)).toBeGreaterThan(0);
      await store.close();
    }
    expect(readAcked(acked).length).toBeGreaterThan(20);
    // Restarts resume from the head when the local state provably matches it,
    // instead of re-uploading the database every time.
    const store = new FileStore({ root: replica });
    const { listAllLevels } = await import("../../src/layout/index.js");
    const snapshots = (await listAllLevels(store)).filter((f) => f.level === 9).length;
    await store.close();
    if (process.env.PAGECAST_DEBUG) console.log(`snapshots after 20 restarts: ${snapshots}`);
    expect(snapshots).toBeLessThan(20);
  }, 120_000);
});
