/**
 * The persistent page cache in a directory (`cacheDir`): a rerun reads from
 * it what an earlier run fetched (pages, page indexes, the skeleton), so only
 * the head object and what changed come from storage; a corrupt entry is
 * detected by its checksum and fetched again; several processes (real child
 * processes) share one directory, evicting concurrently, without a wrong
 * answer. Counted, never timed.
 */
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { FileStore } from "../../src/storage/file-store.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import {
  openReplica,
  PersistentCache,
  type Replica,
  type ReplicaOptions,
} from "../../src/vfs/index.js";
import { directoryCacheBackend } from "../../src/vfs-node/directory-cache.js";
import {
  primaryValues,
  publishScattered,
  RecordingStore,
  readSqliteWasm,
  SCATTERED_QUERIES,
  type ScriptedWriter,
} from "./helpers.js";

const root = resolve(import.meta.dirname, "../..");
const dist = join(root, "dist");
const fixture = join(import.meta.dirname, "fixtures", "cache-dir-reader.mjs");
const scratch = mkdtempSync(join(tmpdir(), "pagecast-cachedir-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let dirs = 0;
function cacheDir(): string {
  return join(scratch, `cache-${++dirs}`);
}

async function published(store: ObjectStore = new MemoryStore()): Promise<ScriptedWriter> {
  const writer = await publishScattered(store);
  cleanups.push(() => writer.close());
  return writer;
}

/** A run of every query on a new replica (as a new process would), then closed. */
async function run(
  store: ObjectStore,
  dir: string,
  writer: ScriptedWriter,
  options: ReplicaOptions = {},
): Promise<{ requests: Replica["status"] extends () => infer S ? S : never }> {
  const recording = new RecordingStore(store);
  // A fresh PersistentCache over the directory: nothing shared in memory with earlier runs.
  const replica = await openReplica({
    store: recording,
    wasm: readSqliteWasm,
    persistentCache: new PersistentCache(directoryCacheBackend(dir)),
    hydrate: false,
    // No timed polls: under load a run may outlast a poll interval, and a
    // poll's request is not what these tests count.
    pollIntervalMs: 3_600_000,
    ...options,
  });
  try {
    const primary = writer.primaryAt(writer.txid);
    for (const q of SCATTERED_QUERIES) {
      expect(await replica.values(q.sql, q.params as never), q.name).toEqual(
        primaryValues(primary, q.sql, q.params),
      );
    }
    return { requests: replica.status() };
  } finally {
    await replica.close();
  }
}

const fetched = (st: { requests: Record<string, { requests: number }> }) =>
  st.requests.page!.requests + st.requests.bulk!.requests + st.requests.hydrate!.requests;

describe("cacheDir", () => {
  test("a rerun reads pages, page indexes and the skeleton from the directory", async () => {
    const mem = new MemoryStore();
    const writer = await published(mem);
    const dir = cacheDir();
    const first = (await run(mem, dir, writer)).requests;
    expect(fetched(first)).toBeGreaterThan(10);
    expect(first.persistentCache!.bytesWritten).toBeGreaterThan(0);
    const second = (await run(mem, dir, writer)).requests;
    expect(second.requests.head.requests).toBe(1);
    expect(second.requests.index.requests).toBe(0);
    expect(second.requests.skeleton.requests).toBe(0);
    expect(fetched(second)).toBeLessThanOrEqual(Math.ceil(fetched(first) * 0.05));
    expect(second.persistentCache!.hits).toBeGreaterThan(0);
    // Hydration reads from it too.
    const third = (await run(mem, dir, writer, { hydrate: true })).requests;
    expect(third.requests.hydrate.requests).toBeLessThanOrEqual(2);
  });

  test("after a small change, a rerun fetches only what changed", async () => {
    const mem = new MemoryStore();
    const writer = await published(mem);
    const dir = cacheDir();
    const first = (await run(mem, dir, writer)).requests;
    await writer.commit("UPDATE orders SET total = total + 1 WHERE id % 400 = 0");
    const rerun = (await run(mem, dir, writer)).requests;
    const all = Object.values(rerun.requests).reduce((n, t) => n + t.requests, 0);
    const firstAll = Object.values(first.requests).reduce((n, t) => n + t.requests, 0);
    // The head, the new file (read whole while opening: small), what it names.
    expect(all).toBeLessThanOrEqual(Math.max(3, Math.ceil(firstAll * 0.05)));
  });

  test("a corrupt entry is detected by its checksum, fetched again, and repaired", async () => {
    const mem = new MemoryStore();
    const writer = await published(mem);
    const dir = cacheDir();
    await run(mem, dir, writer);
    // Flip a byte in the middle of every entry's data.
    const layout = join(dir, "pagecast-cache-v1");
    let damaged = 0;
    for (const sub of readdirSync(layout)) {
      for (const name of readdirSync(join(layout, sub))) {
        const path = join(layout, sub, name);
        const bytes = readFileSync(path);
        if (bytes.length < 200) continue;
        bytes[Math.floor(bytes.length * 0.7)]! ^= 0x5a;
        writeFileSync(path, bytes);
        damaged++;
      }
    }
    expect(damaged).toBeGreaterThan(0);
    const repaired = (await run(mem, dir, writer)).requests;
    expect(repaired.persistentCache!.corrupt).toBeGreaterThan(0);
    expect(fetched(repaired) + repaired.requests.index.requests).toBeGreaterThan(0);
    const clean = (await run(mem, dir, writer)).requests;
    expect(clean.persistentCache!.corrupt).toBe(0);
  });

  test("the directory stays within its bound", async () => {
    const mem = new MemoryStore();
    await published(mem);
    const dir = cacheDir();
    const maxBytes = 96 * 1024;
    const recording = new RecordingStore(mem);
    const replica = await openReplica({
      store: recording,
      wasm: readSqliteWasm,
      persistentCache: new PersistentCache(directoryCacheBackend(dir, { maxBytes })),
      hydrate: true,
    });
    await replica.hydrate();
    await replica.close();
    const size = (d: string): number =>
      readdirSync(d, { withFileTypes: true }).reduce(
        (n, e) => n + (e.isDirectory() ? size(join(d, e.name)) : statSync(join(d, e.name)).size),
        0,
      );
    expect(size(dir)).toBeLessThanOrEqual(maxBytes);
    expect(replica.status().persistentCache!.evictions).toBeGreaterThan(0);
  });

  test("cacheDir without a registered file system backend is a clear error", async () => {
    const { openCacheDir, setCacheDirBackendFactory } = await import("../../src/vfs/cache-dir.js");
    setCacheDirBackendFactory(undefined);
    expect(() => openCacheDir(cacheDir())).toThrow(/cacheDir needs a file system/);
  });
});

describe("cacheDir shared by processes", () => {
  beforeAll(() => {
    if (!existsSync(join(dist, "index.node.js"))) {
      execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
    }
  }, 180_000);

  function child(storeRoot: string, dir: string, maxBytes: number, rounds: number) {
    const queries = SCATTERED_QUERIES.map(({ sql, params }) => ({ sql, params }));
    return new Promise<{
      answers: unknown[][][];
      requests: Record<string, number>[];
      corrupt: number;
    }>((resolvePromise, reject) => {
      const p = spawn(
        process.execPath,
        [fixture, dist, storeRoot, dir, String(maxBytes), String(rounds), JSON.stringify(queries)],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      let err = "";
      p.stdout.on("data", (c) => {
        out += c;
      });
      p.stderr.on("data", (c) => {
        err += c;
      });
      p.on("exit", (code) => {
        if (code !== 0) reject(new Error(`reader exited ${code}: ${err.slice(-2000)}`));
        else resolvePromise(JSON.parse(out.trim().split("\n").pop()!));
      });
    });
  }

  test("readers in several processes share one directory and always answer right", async () => {
    const storeRoot = join(scratch, "store");
    const writer = await published(new FileStore({ root: storeRoot, fsync: false }));
    const primary = writer.primaryAt(writer.txid);
    const want = SCATTERED_QUERIES.map((q) =>
      // JSON round trip: what the child prints.
      JSON.parse(JSON.stringify(primaryValues(primary, q.sql, q.params))),
    );
    const dir = cacheDir();
    // Three processes at once, a bound small enough that they evict each other's entries.
    const tight = await Promise.all([0, 1, 2].map(() => child(storeRoot, dir, 160 * 1024, 2)));
    for (const r of tight) {
      for (const answers of r.answers) expect(answers).toEqual(want);
      expect(r.corrupt).toBe(0);
    }
    // Then two with room: the second finds what the first left.
    const roomy = join(scratch, "roomy");
    const [a] = await Promise.all([child(storeRoot, roomy, 64 << 20, 1)]);
    const b = await child(storeRoot, roomy, 64 << 20, 1);
    expect(a.answers[0]).toEqual(want);
    expect(b.answers[0]).toEqual(want);
    const pages = (r: Record<string, number>) => r.page! + r.bulk! + r.index! + r.skeleton!;
    expect(pages(a.requests[0]!)).toBeGreaterThan(5);
    expect(pages(b.requests[0]!)).toBeLessThanOrEqual(1);
  });
});
