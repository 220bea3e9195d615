/**
 * A Worker's memory with a replica (issue 14): workerd under miniflare runs a
 * Worker holding one replica (`cacheBytes`, default 16 MiB) over the bench's
 * "fresh" dataset on loopback S3, through a mixed workload (figure 9's range
 * scans and point lookups). Prints the workerd process's RSS (VmRSS) with an
 * idle Worker, after the open, after the workload, and its peak (VmHWM);
 * a Workers isolate is limited to 128 MB (the runtime's own memory is not
 * counted there). Also the isolate's own figure, which is what that limit
 * counts (its JavaScript heap and its ArrayBuffers, wasm memories included),
 * read over workerd's inspector (`Runtime.getHeapUsage`) after a collection,
 * and its largest value between batches of statements.
 *
 *   node --experimental-websocket bench/worker-memory.mjs [--cache-mib 16] [--scans 40] [--lookups 500] [--max-requests 1000]
 *
 * (Node 20 needs the flag for its WebSocket client; Node 22 has it.)
 * Linux only (reads /proc). Uses the dataset cache of `bench/run.mjs`.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { ensureMainDatasets } from "./lib/datasets.mjs";
import { loadPagecast } from "./lib/pagecast-api.mjs";
import { prng } from "./lib/prng.mjs";
import { BUCKET, CREDENTIALS, startServers } from "./lib/servers.mjs";

const { values: flags } = parseArgs({
  options: {
    "cache-mib": { type: "string", default: "16" },
    scans: { type: "string", default: "40" },
    lookups: { type: "string", default: "500" },
    // The scans need ~50-100 range GETs each (Workers paid plans allow 1000 subrequests).
    "max-requests": { type: "string", default: "1000" },
  },
});
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MiB = 1024 * 1024;
const cacheBytes = Number(flags["cache-mib"]) * MiB;

function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The Worker's isolate over workerd's inspector: heap usage, and a full
 * collection. workerd answers inspector calls that need the isolate when it
 * next runs: `wake` sends it a request.
 */
async function isolateInspector(port, wake) {
  if (typeof WebSocket !== "function") {
    throw new Error("no WebSocket client: run with node --experimental-websocket (Node 20)");
  }
  const [target] = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  let id = 0;
  const pending = new Map();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  const call = (method) =>
    new Promise((resolve) => {
      const i = ++id;
      pending.set(i, resolve);
      ws.send(JSON.stringify({ id: i, method, params: {} }));
    });
  return {
    /** JS heap used + ArrayBuffer backing stores (wasm memories included), bytes. */
    async usage({ collect = false } = {}) {
      if (collect) {
        const collected = call("HeapProfiler.collectGarbage");
        await wake();
        await collected;
      }
      const { result } = await call("Runtime.getHeapUsage");
      return {
        heap: result.usedSize,
        buffers: result.backingStorageSize ?? 0,
        total: result.usedSize + (result.backingStorageSize ?? 0),
      };
    },
    close: () => ws.close(),
  };
}

function workerdPid() {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], {
    encoding: "utf8",
  });
  const line = out.split("\n").find((l) => l.includes("workerd"));
  if (!line) throw new Error("no workerd child process found");
  return Number(line.trim().split(/\s+/)[0]);
}

function workload(items, scans, lookups) {
  const rand = prng(99);
  const ops = [];
  const width = Math.max(100, Math.floor(items / 50));
  for (let i = 0; i < scans; i++) {
    const a = 1 + Math.floor(rand() * (items - width));
    ops.push({
      sql: "SELECT count(*), sum(length(title)) FROM items WHERE id BETWEEN ? AND ?",
      params: [a, a + width],
    });
  }
  for (let i = 0; i < lookups; i++) {
    ops.push({ sql: "SELECT * FROM items WHERE id = ?", params: [1 + Math.floor(rand() * items)] });
  }
  return ops;
}

const api = await loadPagecast();
const main = ensureMainDatasets({
  dataDir: join(ROOT, ".tmp", "bench-data"),
  quick: false,
  log: (m) => console.error(m),
});
const servers = await startServers({ delayMs: 0, maxLifetimeMs: 30 * 60_000 });
let mf;
try {
  // Publish the dataset (snapshot only) with the Replicator.
  const scratch = join(ROOT, ".tmp", "worker-memory");
  mkdirSync(scratch, { recursive: true });
  const copy = join(scratch, "fresh.db");
  copyFileSync(main.fresh.path, copy);
  const prefix = `worker-memory-${Date.now().toString(36)}`;
  const store = new api.S3Store({
    bucket: BUCKET,
    prefix,
    endpoint: servers.endpoint("direct"),
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
  const rep = await api.Replicator.start({
    db: copy,
    store,
    syncInterval: 0,
    compaction: false,
    retention: 0,
  });
  await rep.close();
  await store.close();
  rmSync(scratch, { recursive: true, force: true });

  const bundle = await build({
    entryPoints: [join(ROOT, "bench", "worker", "memory-worker.ts")],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    external: ["./wa-sqlite-async.wasm"],
    logLevel: "silent",
  });
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm"));
  const inspectorPort = await freePort();
  mf = new Miniflare({
    modules: [
      { type: "ESModule", path: "index.mjs", contents: bundle.outputFiles[0].text },
      { type: "CompiledWasm", path: "wa-sqlite-async.wasm", contents: wasm },
    ],
    compatibilityDate: "2025-09-01",
    inspectorPort,
  });
  const url = `s3://${BUCKET}/${prefix}?endpoint=${encodeURIComponent(servers.endpoint("s3"))}&region=us-east-1`;
  const ask = async (ops) => {
    const res = await mf.dispatchFetch("http://worker/", {
      method: "POST",
      body: JSON.stringify({
        url,
        credentials: CREDENTIALS,
        cacheBytes,
        maxRequestsPerQuery: Number(flags["max-requests"]),
        ops,
      }),
    });
    const out = await res.json();
    if (out.error) throw new Error(`worker: ${out.error} (${out.code})`);
    return out;
  };
  await mf.ready;
  const inspector = await isolateInspector(inspectorPort, async () => {
    await (await mf.dispatchFetch("http://worker/")).text();
  });
  const pid = workerdPid();
  const idle = procStatus(pid).rss;
  const isoIdle = await inspector.usage({ collect: true });
  await ask([{ sql: "SELECT count(*) FROM users", params: [] }]);
  const open = procStatus(pid).rss;
  const isoOpen = await inspector.usage({ collect: true });
  const ops = workload(main.params.items, Number(flags.scans), Number(flags.lookups));
  const t0 = performance.now();
  let last;
  let isoPeak = isoOpen;
  for (let i = 0; i < ops.length; i += 20) {
    last = await ask(ops.slice(i, i + 20));
    const u = await inspector.usage();
    if (u.total > isoPeak.total) isoPeak = u;
  }
  const ms = performance.now() - t0;
  const after = procStatus(pid);
  const isoAfter = await inspector.usage({ collect: true });
  inspector.close();
  const f = (b) => `${(b / MiB).toFixed(1)} MiB`;
  console.log(
    `workerd with a replica (cacheBytes ${flags["cache-mib"]} MiB), ${ops.length} statements in ${(ms / 1000).toFixed(1)} s:`,
  );
  console.log(`  idle Worker RSS ${f(idle)}`);
  console.log(`  after open      ${f(open)} (+${f(open - idle)})`);
  console.log(`  after workload  ${f(after.rss)} (+${f(after.rss - idle)} over idle)`);
  console.log(`  peak (VmHWM)    ${f(after.hwm)} (+${f(after.hwm - idle)} over idle)`);
  console.log(`  cache: ${f(last.cache.bytes)} in ${last.cache.entries} pages`);
  const iso = (u) => `${f(u.total)} (JS heap ${f(u.heap)}, ArrayBuffers and wasm ${f(u.buffers)})`;
  console.log("isolate (what the 128 MB limit counts), after a full collection:");
  console.log(`  idle            ${iso(isoIdle)}`);
  console.log(`  after open      ${iso(isoOpen)}`);
  console.log(`  after workload  ${iso(isoAfter)}`);
  console.log(`  largest seen    ${iso(isoPeak)} (between batches, not collected)`);
} finally {
  await mf?.dispose();
  servers.kill();
}
process.exit(0);
