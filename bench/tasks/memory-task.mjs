/**
 * Child process (run with --expose-gc): one engine runs a read workload that
 * touches far more pages than the cache holds (range scans at random places
 * plus point lookups); prints RSS before (engine loaded, nothing read), after
 * (GC'd), the peak, and the engine's own cache figures.
 * Args: { engine: pagecast | sql.js-httpvfs | better-sqlite3, cacheBytes,
 *         asyncOnly, store: url | sdk (pagecast), endpoint, bucket, prefix,
 *         url, path, items, scans, lookups, seed }.
 */
import Database from "better-sqlite3";
import { failTask, finishTask, peakRss } from "../lib/child-task.mjs";
import { HttpVfsPeer } from "../lib/httpvfs-client.mjs";
import { benchS3Store, benchS3Url, compileReaderWasm, loadPagecast } from "../lib/pagecast-api.mjs";
import { prng } from "../lib/prng.mjs";
import { CREDENTIALS } from "../lib/servers.mjs";

const args = JSON.parse(process.argv[2]);

function settledRss() {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().rss;
}

// Where the memory goes: every wasm instance's linear memory (SQLite's heap)
// and the V8 breakdown, at each settled point.
const wasmMemories = [];
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...a) {
  const result = await instantiate.apply(this, a);
  const instance = result instanceof WebAssembly.Instance ? result : result.instance;
  const imported = a[1]?.env?.memory ?? a[1]?.a?.memory;
  if (imported instanceof WebAssembly.Memory) wasmMemories.push(imported);
  for (const v of Object.values(instance.exports)) {
    if (v instanceof WebAssembly.Memory) wasmMemories.push(v);
  }
  return result;
};
const { smapsTop } = process.env.PAGECAST_SMAPS ? await import(process.env.PAGECAST_SMAPS) : {};
function breakdown() {
  const m = process.memoryUsage();
  return {
    smaps: smapsTop?.(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    wasmHeaps: wasmMemories.map((w) => w.buffer.byteLength),
  };
}

function workload() {
  const rand = prng(args.seed);
  const ops = [];
  const width = Math.max(100, Math.floor(args.items / 50));
  for (let i = 0; i < args.scans; i++) {
    const a = 1 + Math.floor(rand() * (args.items - width));
    ops.push({
      sql: "SELECT count(*), sum(length(title)) FROM items WHERE id BETWEEN ? AND ?",
      params: [a, a + width],
    });
  }
  for (let i = 0; i < args.lookups; i++) {
    ops.push({
      sql: "SELECT * FROM items WHERE id = ?",
      params: [1 + Math.floor(rand() * args.items)],
    });
  }
  return ops;
}

try {
  const ops = workload();
  let run;
  let close = async () => {};
  let cacheStats = () => undefined;
  let requestStats = () => undefined;
  if (args.engine === "pagecast") {
    // store "url": what a Node reader runs by default: `pagecast` alone, the
    // replica opened by URL (FetchS3Store over node:http with static
    // credentials), the wasm compiled by openReplica itself (so the open
    // cost includes it). Else the AWS SDK's S3Store, the writer side loaded.
    const options = {
      cacheBytes: args.cacheBytes,
      ...(args.asyncOnly ? { syncWasm: false } : {}),
    };
    let openIt;
    if (args.store === "url") {
      const { openReplica } = await import("pagecast");
      openIt = () =>
        openReplica(benchS3Url(args), { storeOptions: { credentials: CREDENTIALS }, ...options });
    } else {
      const api = await loadPagecast();
      const wasm = await compileReaderWasm();
      const store = benchS3Store(api, args);
      openIt = () => api.openReplica({ store, wasm, closeStore: true, ...options });
    }
    let replica;
    run = async (op) => {
      replica ??= await openIt();
      return replica.values(op.sql, op.params);
    };
    close = async () => replica?.close();
    cacheStats = () => replica?.status().cache;
    requestStats = () => replica?.status().requests;
  } else if (args.engine === "sql.js-httpvfs") {
    const peer = await HttpVfsPeer.create();
    let opened = false;
    run = async (op) => {
      if (!opened) {
        await peer.open(args.url);
        opened = true;
      }
      return peer.query(op.sql, op.params);
    };
    close = () => peer.close();
    cacheStats = () => peer.stats();
  } else {
    const db = new Database(args.path, { readonly: true });
    run = async (op) => db.prepare(op.sql).all(...op.params);
    close = async () => db.close();
  }
  const rssBaseline = settledRss();
  const atBaseline = breakdown();
  await run({ sql: "SELECT count(*) FROM users", params: [] });
  const rssOpen = settledRss();
  const atOpen = breakdown();
  let rssMaxSampled = rssOpen;
  const sampler = setInterval(() => {
    rssMaxSampled = Math.max(rssMaxSampled, process.memoryUsage().rss);
  }, 50);
  const t0 = performance.now();
  for (const op of ops) await run(op);
  const ms = performance.now() - t0;
  clearInterval(sampler);
  const cache = await cacheStats();
  const requests = requestStats();
  const rssAfter = settledRss();
  const atAfter = breakdown();
  await close();
  finishTask({
    engine: args.engine,
    cacheBytes: args.cacheBytes,
    asyncOnly: Boolean(args.asyncOnly),
    store: args.store,
    ops: ops.length,
    ms,
    rssBaseline,
    rssOpen,
    rssAfter,
    rssMaxSampled: Math.max(rssMaxSampled, rssAfter),
    peakRss: peakRss(),
    cache,
    requests,
    breakdown: { baseline: atBaseline, open: atOpen, after: atAfter },
  });
} catch (err) {
  failTask(err);
}
