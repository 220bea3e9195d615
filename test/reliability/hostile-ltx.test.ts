/**
 * Hostile LTX content in the bucket (anyone with write access, or a
 * misconfigured tool), against a healthy pagecast replica on disk:
 * - a ~174-byte L0 file naming page 4294967294 (commit 4294967294): opening
 *   a replica and restoring fail with a typed error, in bounded memory and
 *   time, before anything is sized by that page number (no page index of
 *   4 Gi entries, no 16 TiB sparse temp file), and leave no temp file;
 * - a head naming files that are gone: restore and open fail with a typed
 *   error instead of silently going back to an older TXID;
 * - an L0 whose name and header disagree on its TXIDs: the header decides,
 *   and the disagreement is an error.
 * Plus the CLI's restore, a real process killed by SIGINT or SIGTERM mid-way,
 * removes its temp file.
 *
 * Library operations run in a fresh child process (built `dist/`: run
 * `npm run build` first) so that its peak RSS is its own.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { databaseChecksum, encodeLtx, ltxKey } from "../../src/format/index.js";
import { HEAD_OBJECT_KEY, listAllLevels } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { FileStore } from "../../src/storage/file-store.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import { openApp, tempDir } from "../replicator/helpers.js";
import { readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";
import { testS3Store } from "./helpers.js";

const dist = new URL("../../dist", import.meta.url).pathname;
const bin = new URL("../../bin/pagecast.js", import.meta.url).pathname;
const child = new URL("./fixtures/hostile-size-child.mjs", import.meta.url).pathname;
const built = existsSync(join(dist, "vfs/replica.js"));
const s3 = inject("s3");
/** Peak RSS allowed for one operation (a fresh Node process with SQLite's wasm loaded). */
const RSS_BOUND_MB = 300;
const PAGE_SIZE = 4096;
const HOSTILE_PGNO = 4294967294;

interface Outcome {
  ok: boolean;
  code?: string | null;
  name?: string | null;
  message?: string;
  txid?: number;
  ms: number;
  maxRssMb: number;
}

let work: { dir: string; cleanup: () => void };
beforeAll(() => {
  work = tempDir("pagecast-hostile-ltx-");
});
afterAll(() => work.cleanup());

async function runChild(kind: "replica" | "restore", url: string, dir: string): Promise<Outcome> {
  const { stdout } = await promisify(execFile)(process.execPath, [child, dist, kind, url, dir], {
    env: { ...process.env, NODE_NO_WARNINGS: "1" },
    timeout: 120_000,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Outcome;
}

/** A file replica of a small app database at TXID `txids` (one sync per TXID); returns its dir and the database. */
async function replicaOnDisk(name: string, txids: number) {
  const dir = join(work.dir, name);
  const db = join(dir, "app.db");
  const storeDir = join(dir, "store");
  mkdirSync(storeDir, { recursive: true });
  const store = new FileStore({ root: storeDir });
  const app = openApp(`${db}`);
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const r = await Replicator.start({ db, store, syncInterval: 0 });
  let txid = (await r.sync()).txid;
  while (txid < txids) {
    app.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${txid}`);
    txid = (await r.sync()).txid;
  }
  await r.close();
  app.close();
  await store.close();
  return { dir, db, storeDir, url: `file://${storeDir}`, txid };
}

async function withStore(root: string, fn: (store: FileStore) => Promise<void>): Promise<void> {
  const store = new FileStore({ root });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** Files left in `dir` by a restore (its temp file is `.<name>.pagecast-restore-*.tmp`). */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes("pagecast-restore") || f.startsWith("restored"));
}

/** The ~174-byte L0 file of TXID `txid` that grows the database to 4294967294 pages. */
function hostileL0(db: string, txid: number): Uint8Array {
  const image = new Uint8Array(
    new Database(db, { readonly: true }).serialize() as unknown as ArrayBufferLike,
  );
  return encodeLtx({
    header: {
      pageSize: PAGE_SIZE,
      commit: HOSTILE_PGNO,
      minTXID: txid,
      maxTXID: txid,
      timestamp: Date.now(),
      // As a careful attacker would: the pre-apply checksum matches the database.
      preApplyChecksum: databaseChecksum(image, PAGE_SIZE),
    },
    pages: [{ pgno: HOSTILE_PGNO, data: new Uint8Array(PAGE_SIZE) }],
    postApplyChecksum: databaseChecksum(image, PAGE_SIZE),
  });
}

describe.skipIf(!built)("hostile LTX content (needs npm run build)", () => {
  test("an L0 naming page 4294967294: typed errors from open and restore, bounded RSS, no temp file", async () => {
    const c = await replicaOnDisk("huge-pgno", 3);
    const bytes = hostileL0(c.db, c.txid + 1);
    console.log(`hostile L0: ${bytes.length} bytes`);
    expect(bytes.length).toBeLessThan(200);
    // Without the head, the listing (Litestream's layout) finds the file.
    await withStore(c.storeDir, async (store) => {
      await store.put(ltxKey(0, c.txid + 1, c.txid + 1), bytes);
      await store.deleteMany([HEAD_OBJECT_KEY]);
    });
    const out = join(c.dir, "out");
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    for (const kind of ["replica", "restore"] as const) {
      const o = await runChild(kind, c.url, out);
      console.log(
        `hostile L0, ${kind}: ${o.ok ? "ok" : `${o.name} ${o.code}: ${o.message}`}; ${o.ms} ms, peak RSS ${o.maxRssMb} MiB`,
      );
      expect(o.ok).toBe(false);
      expect(o.name).not.toBe("RangeError");
      expect(o.code).toMatch(/^(REPLICA_INDEX_INVALID|LTX_CORRUPT|RESTORE_FAILED)$/);
      expect(o.maxRssMb).toBeLessThan(RSS_BOUND_MB);
      expect(leftovers(out)).toEqual([]);
    }
  }, 180_000);

  test("ltx apply of a snapshot, its L0 files and the hostile L0: typed error, no output", async () => {
    const c = await replicaOnDisk("huge-pgno-apply", 3);
    const dir = join(c.dir, "files");
    mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    await withStore(c.storeDir, async (store) => {
      const all = await listAllLevels(store);
      const snapshot = all.find((f) => f.level === 9)!;
      const rest = all.filter((f) => f.level === 0 && f.minTXID > snapshot.maxTXID);
      for (const f of [snapshot, ...rest]) {
        const path = join(dir, `${files.length}.ltx`);
        writeFileSync(path, (await store.get(f.key)).body!);
        files.push(path);
      }
    });
    const hostile = join(dir, "hostile.ltx");
    writeFileSync(hostile, hostileL0(c.db, c.txid + 1));
    const out = join(dir, "out.db");
    const t0 = Date.now();
    const r = await promisify(execFile)(
      process.execPath,
      [bin, "ltx", "apply", out, ...files, hostile],
      {
        timeout: 60_000,
      },
    ).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code?: number; stderr?: string; killed?: boolean }) => ({
        code: e.killed ? "timeout" : e.code,
        stderr: e.stderr ?? "",
      }),
    );
    console.log(
      `ltx apply with the hostile L0: exit ${r.code} after ${Date.now() - t0} ms; ${r.stderr.trim()}`,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("more than its");
    expect(readdirSync(dir).filter((f) => f.startsWith("out.db"))).toEqual([]);
  }, 120_000);

  test("a head naming files that are gone: restore and open fail, never an older restore", async () => {
    const c = await replicaOnDisk("missing-files", 4);
    // Every file past the snapshot is gone; the head still names them.
    await withStore(c.storeDir, async (store) => {
      const gone = (await listAllLevels(store)).filter((f) => f.level !== 9).map((f) => f.key);
      expect(gone.length).toBeGreaterThan(0);
      await store.deleteMany(gone);
    });
    const out = join(c.dir, "out");
    mkdirSync(out, { recursive: true });
    for (const kind of ["restore", "replica"] as const) {
      const o = await runChild(kind, c.url, out);
      console.log(
        `head naming missing files, ${kind}: ${o.ok ? `ok txid ${o.txid}` : `${o.code}: ${o.message}`}`,
      );
      expect(o.ok).toBe(false);
      expect(o.code).toMatch(/^(RESTORE_FAILED|STORE_NOT_FOUND)$/);
      expect(leftovers(out)).toEqual([]);
    }
  }, 120_000);

  test("an L0 whose header names other TXIDs than its name: restore fails", async () => {
    const c = await replicaOnDisk("txid-mismatch", 3);
    // The file of TXID 3 also published under the name of TXID 4 (a tool copying files around).
    await withStore(c.storeDir, async (store) => {
      await store.put(ltxKey(0, 4, 4), (await store.get(ltxKey(0, 3, 3))).body!);
      await store.deleteMany([HEAD_OBJECT_KEY]);
    });
    const out = join(c.dir, "out");
    mkdirSync(out, { recursive: true });
    const o = await runChild("restore", c.url, out);
    console.log(
      `name/header TXID mismatch, restore: ${o.ok ? `ok txid ${o.txid}` : `${o.code}: ${o.message}`}`,
    );
    expect(o.ok).toBe(false);
    expect(o.code).toBeTruthy();
    expect(leftovers(out)).toEqual([]);
  }, 120_000);
});

describe.skipIf(!built)("CLI restore killed mid-way", () => {
  test.each(["SIGINT", "SIGTERM", "SIGINT twice"] as const)(
    "%s: the process exits and removes its temp file",
    async (how) => {
      const signal = how.replace(" ", "-");
      const prefix = `hostile-ltx-kill-${Date.now().toString(36)}-${signal}`;
      const direct = testS3Store(s3, prefix);
      const { dir, cleanup } = tempDir("pagecast-restore-kill-");
      let proc: ChildProcess | undefined;
      const proxy = await startFaultProxy({
        target: s3.endpoint,
        // Every object body drips in slowly: the restore is mid-way for long.
        plan: (req) =>
          req.method === "GET" && /\.ltx/.test(req.url ?? "")
            ? { drip: { bytes: 4096, everyMs: 100 } }
            : undefined,
      });
      try {
        const db = join(dir, "app.db");
        const app = openApp(db);
        app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
        const insert = app.prepare("INSERT INTO t (v) VALUES (randomblob(2000))");
        app.transaction(() => {
          for (let i = 0; i < 500; i++) insert.run();
        })();
        const r = await Replicator.start({ db, store: direct, syncInterval: 0 });
        await r.sync();
        await r.close();
        app.close();
        const outDir = join(dir, "out");
        mkdirSync(outDir);
        const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(proxy.endpoint)}&region=${s3.region}`;
        const p = spawn(process.execPath, [bin, "restore", url, join(outDir, "restored.db")], {
          env: {
            ...process.env,
            AWS_ACCESS_KEY_ID: s3.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
            AWS_REGION: s3.region,
            NODE_NO_WARNINGS: "1",
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        proc = p;
        let stderr = "";
        p.stderr?.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        const exited = new Promise<number | null>((resolve) =>
          p.on("exit", (code) => resolve(code)),
        );
        // Wait for the temp file: the restore is under way.
        const deadline = Date.now() + 30_000;
        while (!readdirSync(outDir).some((f) => f.endsWith(".tmp"))) {
          if (Date.now() > deadline) throw new Error(`no temp file appeared; stderr: ${stderr}`);
          await new Promise((res) => setTimeout(res, 50));
        }
        const killedAt = Date.now();
        if (how === "SIGINT twice") {
          // A second Ctrl-C while the first one's clean stop is under way
          // stops at once, and still removes the temp file.
          p.kill("SIGINT");
          await new Promise((res) => setTimeout(res, 10));
          p.kill("SIGINT");
        } else {
          p.kill(how);
        }
        const code = await Promise.race([
          exited,
          new Promise<"hung">((res) => setTimeout(() => res("hung"), 20_000)),
        ]);
        console.log(
          `restore ${signal}: exit ${code} after ${Date.now() - killedAt} ms; ${stderr.trim().split("\n").at(-1)}`,
        );
        expect(code).not.toBe("hung");
        expect(code).not.toBe(0);
        // Exited by itself (a code), not killed by the signal's default action
        // (a second signal may land while the process is already exiting).
        if (how !== "SIGINT twice") expect(code).not.toBeNull();
        expect(readdirSync(outDir)).toEqual([]);
      } finally {
        proc?.kill("SIGKILL");
        await proxy.close();
        await direct.close();
        cleanup();
      }
    },
    90_000,
  );
});

test("a replica polling a hostile L0 refuses it with a typed error and keeps serving its version", async () => {
  const store = new MemoryStore();
  const w = new ScriptedWriter(store, { head: false, pageSize: PAGE_SIZE });
  await w.commit("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a')");
  await w.commit("INSERT INTO t VALUES ('b')");
  const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
  try {
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2]]);
    const image = w.images.get(w.txid)!;
    await store.put(
      ltxKey(0, w.txid + 1, w.txid + 1),
      encodeLtx({
        header: {
          pageSize: PAGE_SIZE,
          commit: HOSTILE_PGNO,
          minTXID: w.txid + 1,
          maxTXID: w.txid + 1,
          timestamp: Date.now(),
          preApplyChecksum: databaseChecksum(image, PAGE_SIZE),
        },
        pages: [{ pgno: HOSTILE_PGNO, data: new Uint8Array(PAGE_SIZE) }],
        postApplyChecksum: databaseChecksum(image, PAGE_SIZE),
      }),
    );
    const err = await replica.poll().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "REPLICA_INDEX_INVALID" });
    expect(replica.status().lastError?.code).toBe("REPLICA_INDEX_INVALID");
    expect(await replica.values("SELECT count(*) FROM t")).toEqual([[2]]);
  } finally {
    await replica.close();
    w.close();
  }
});
