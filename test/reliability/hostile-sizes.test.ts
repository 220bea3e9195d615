/**
 * Hostile sizes in the bucket: the head object, the lease or the skeleton
 * replaced by a 400 MiB object (anyone with write access, or a misconfigured
 * tool, can do it). Each is refused from its size before its body is read:
 * the replica fails with a typed error (head) or reports and carries on
 * (skeleton), restore plans from the listing, a replicator replaces the head
 * or lease by compare-and-swap. Each operation runs in a fresh process whose
 * peak RSS is measured (it was 895-922 MB when sizes were checked after the
 * download). Backends: a file store (sparse 400 MiB files) and S3 through a
 * proxy that streams 400 MiB bodies (announced, and chunked without a length).
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { readHeadObject } from "../../src/layout/head-object.js";
import { LEASE_KEY } from "../../src/replicator/lease.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { FileStore } from "../../src/storage/file-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { type FaultProxy, startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const HOSTILE = 400 * 1024 * 1024;
/** Peak RSS allowed for one operation (a fresh Node process with SQLite's wasm loaded). */
const RSS_BOUND_MB = 300;
/** Bytes a refused read may take in (a chunk or so in flight, never the object). */
const MAX_READ_IN_TEST = 1024 * 1024;
const s3 = inject("s3");
const dist = new URL("../../dist", import.meta.url).pathname;
const child = new URL("./fixtures/hostile-size-child.mjs", import.meta.url).pathname;
const built = existsSync(join(dist, "vfs/replica.js"));
const run = `hostile-${Date.now().toString(36)}`;

type Target = "head" | "lease" | "skeleton" | "none";
type Kind = "replica" | "restore" | "replicator";
interface Outcome {
  kind: string;
  ok: boolean;
  code?: string | null;
  message?: string;
  lastError?: string | null;
  rows?: unknown;
  txid?: number;
  ms: number;
  maxRssMb: number;
}

let work: { dir: string; cleanup: () => void };
const proxies: FaultProxy[] = [];
const measured: string[] = [];
let skeletonKey = "";

function s3Store(prefix: string, endpoint = s3.endpoint): S3Store {
  return new S3Store({
    bucket: s3.bucket,
    prefix,
    endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

/** Replicates the app database to `store` (a snapshot with its skeleton, and a head). */
async function replicateTo(store: ObjectStore, db: string): Promise<void> {
  const r = await Replicator.start({ db, store, syncInterval: 0 });
  await r.sync();
  await r.close();
}

beforeAll(async () => {
  if (!built) return;
  work = tempDir("pagecast-hostile-");
  const db = join(work.dir, "app.db");
  const app = openApp(db);
  app.exec(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, v TEXT); CREATE INDEX t_email ON t(email)",
  );
  const insert = app.prepare("INSERT INTO t (email, v) VALUES (?, ?)");
  app.transaction(() => {
    for (let i = 0; i < 3000; i++) insert.run(`user${i}@example.com`, "x".repeat(100));
  })();
  app.pragma("wal_checkpoint(TRUNCATE)");
  app.close();
  const base = join(work.dir, "file-base");
  const fileStore = new FileStore({ root: base, fsync: false });
  await replicateTo(fileStore, db);
  const head = await readHeadObject(fileStore);
  if (head.notModified || !head.head.skeleton) throw new Error("setup: no skeleton published");
  skeletonKey = head.head.skeleton.key;
  await fileStore.close();
});

afterAll(async () => {
  for (const p of proxies) await p.close();
  work?.cleanup();
});

/** A case directory with its own copy of the database. */
function caseDir(name: string): string {
  const dir = join(work.dir, name);
  mkdirSync(dir, { recursive: true });
  cpSync(join(work.dir, "app.db"), join(dir, "app.db"));
  return dir;
}

function keyOf(target: Target): string {
  return target === "head"
    ? "pagecast-head.json"
    : target === "lease"
      ? LEASE_KEY
      : target === "skeleton"
        ? skeletonKey
        : "";
}

async function runChild(kind: Kind, url: string, dir: string): Promise<Outcome> {
  const { stdout } = await promisify(execFile)(process.execPath, [child, dist, kind, url, dir], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
      NODE_NO_WARNINGS: "1",
    },
    timeout: 90_000,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Outcome;
}

/** A file replica whose `target` object is a sparse 400 MiB file. */
async function fileCase(name: string, target: Target, kind: Kind) {
  const dir = caseDir(name);
  const root = join(dir, "replica");
  cpSync(join(work.dir, "file-base"), root, { recursive: true });
  if (target !== "none") truncateSync(join(root, ...keyOf(target).split("/")), HOSTILE);
  const outcome = await runChild(kind, `file://${root}`, dir);
  return { outcome, store: new FileStore({ root, fsync: false }) };
}

/** An S3 replica whose `target` object is served as 400 MiB by a proxy. */
async function s3Case(name: string, target: Target, kind: Kind, chunked: boolean) {
  const dir = caseDir(name);
  const prefix = `${run}/${name}`;
  const direct = s3Store(prefix);
  await replicateTo(direct, join(dir, "app.db"));
  const path = `/${s3.bucket}/${prefix}/${keyOf(target)}`;
  const proxy = await startFaultProxy(s3.endpoint, (req) =>
    target !== "none" && req.method === "GET" && (req.url ?? "").split("?")[0] === path
      ? { hugeBody: HOSTILE, contentLength: !chunked }
      : undefined,
  );
  proxies.push(proxy);
  const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(proxy.endpoint)}`;
  const outcome = await runChild(kind, url, dir);
  return { outcome, store: direct, proxy };
}

function record(name: string, o: Outcome): void {
  measured.push(
    `${name}: ${o.ok ? "ok" : `error ${o.code}`}${o.lastError ? ` (status lastError ${o.lastError})` : ""}, ${o.ms} ms, peak RSS ${o.maxRssMb} MiB`,
  );
}

afterAll(() => {
  if (measured.length) console.log(`hostile sizes (400 MiB objects):\n  ${measured.join("\n  ")}`);
});

describe.skipIf(!built).each([
  ["file", false],
  ["s3", false],
  ["s3-chunked", true],
] as const)("a 400 MiB object in a %s replica", (backend, chunked) => {
  // The chunked variant (no announced length: bytes are counted) needs only the reads.
  const full = backend !== "s3-chunked";
  const maybe = full ? test.concurrent : test.skip;
  const make = (name: string, target: Target, kind: Kind) =>
    backend === "file"
      ? fileCase(`${backend}-${name}`, target, kind)
      : s3Case(`${backend}-${name}`, target, kind, chunked);

  maybe("baseline: the same replica untouched", async () => {
    const { outcome } = await make("baseline", "none", "replica");
    record(`${backend} baseline open + query`, outcome);
    expect(outcome).toMatchObject({ ok: true, rows: [[3000]] });
  });

  test.concurrent("head: refused unread (HEAD_OBJECT_INVALID); the replica reads its LTX files instead", async () => {
    const result = await make("head-replica", "head", "replica");
    const { outcome } = result;
    const proxy = "proxy" in result ? result.proxy : undefined;
    record(`${backend} head, openReplica + query`, outcome);
    // An unusable head makes the replica list the LTX files (as for a Litestream replica).
    expect(outcome).toMatchObject({ ok: true, rows: [[3000]] });
    expect(outcome.maxRssMb).toBeLessThan(RSS_BOUND_MB);
    if (proxy) expect(proxy.injected.planned).toBeGreaterThan(0);
    // The typed refusal itself, from the size alone.
    const store =
      "proxy" in result && result.proxy
        ? s3Store(result.store.prefix.replace(/\/$/, ""), result.proxy.endpoint)
        : result.store;
    const refused = await readHeadObject(store).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "HEAD_OBJECT_INVALID" });
    expect((refused as Error).message).toMatch(/exceeds the \d+-byte limit \(not downloaded\)/);
    expect(store.counters().bytesIn).toBeLessThan(MAX_READ_IN_TEST);
    await store.close();
    await result.store.close();
  });

  maybe("head: restore plans from the listing and succeeds", async () => {
    const { outcome } = await make("head-restore", "head", "restore");
    record(`${backend} head, restore`, outcome);
    expect(outcome).toMatchObject({ ok: true });
    expect(outcome.maxRssMb).toBeLessThan(RSS_BOUND_MB);
  });

  maybe("head: a replicator replaces it by compare-and-swap", async () => {
    const { outcome, store } = await make("head-replicator", "head", "replicator");
    record(`${backend} head, Replicator.start + sync`, outcome);
    expect(outcome).toMatchObject({ ok: true });
    expect(outcome.maxRssMb).toBeLessThan(RSS_BOUND_MB);
    const head = await readHeadObject(store);
    expect(head.notModified).toBe(false);
    await store.close();
  });

  test.concurrent("lease: a replicator replaces it unread", async () => {
    const { outcome, store } = await make("lease-replicator", "lease", "replicator");
    record(`${backend} lease, Replicator.start + sync`, outcome);
    expect(outcome).toMatchObject({ ok: true });
    expect(outcome.maxRssMb).toBeLessThan(RSS_BOUND_MB);
    expect((await store.head(LEASE_KEY))!.size).toBeLessThan(1024);
    await store.close();
  });

  test.concurrent("skeleton: the replica opens, answers, and reports it in status", async () => {
    const { outcome } = await make("skeleton-replica", "skeleton", "replica");
    record(`${backend} skeleton, openReplica + query`, outcome);
    expect(outcome).toMatchObject({ ok: true, rows: [[3000]], lastError: "SKELETON_INVALID" });
    expect(outcome.maxRssMb).toBeLessThan(RSS_BOUND_MB);
  });
});
