/**
 * pagecast benchmarks: `npm run bench` (full) or `npm run bench -- --quick`.
 *
 * Measures pagecast (Replicator, replica VFS, restore) side by side with its
 * peers (sql.js-httpvfs over HTTP, restore + better-sqlite3, better-sqlite3 on
 * a local file) on the same bytes, through loopback proxies that add a fixed
 * delay per request and count requests. Prints a table and writes
 * BENCHMARKS.md / BENCHMARKS.json (repository root for a full run,
 * .tmp/bench-quick for a quick one, unless --out says otherwise).
 *
 * Flags: --quick, --delay <ms> (default 20), --throughput-delay <ms>
 * (default 0), --only <figure ids, e.g. 1,2,6>, --out <dir>, --no-write,
 * --from-json <BENCHMARKS.json> (rewrite the reports of an earlier run
 * without measuring anything).
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { ensureMainDatasets } from "./lib/datasets.mjs";
import { httpvfsCold, pagecastCold } from "./lib/engines.mjs";
import { errorInfo, unavailableRow } from "./lib/figure-kit.mjs";
import { withTimeout } from "./lib/measure.mjs";
import { compileReaderWasm, loadPagecast } from "./lib/pagecast-api.mjs";
import { terminalTable, writeReports } from "./lib/report.mjs";
import { BUCKET, CREDENTIALS, startServers } from "./lib/servers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const FIGURES = [
  "f1-cold-lookup",
  "f2-cold-scans",
  "f3-warm-lookups",
  "f4-replication-lag",
  "f5-writer-throughput",
  "f6-idle-requests",
  "f7-restore",
  "f8-time-travel",
  "f9-memory",
  "f10-app-analytics",
  "f11-cold-start",
  "f12-bundle-size",
];

function parseArgs(argv) {
  const opts = {
    quick: false,
    delay: 20,
    throughputDelay: 0,
    only: null,
    out: null,
    write: true,
    fromJson: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") opts.quick = true;
    else if (a === "--delay") opts.delay = Number(value());
    else if (a === "--throughput-delay") opts.throughputDelay = Number(value());
    else if (a === "--only")
      opts.only = new Set(
        value()
          .split(",")
          .map((s) => s.trim()),
      );
    else if (a === "--out") opts.out = value();
    else if (a === "--no-write") opts.write = false;
    else if (a === "--from-json") opts.fromJson = value();
    else if (a === "--help" || a === "-h") {
      console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0]);
      process.exit(0);
    } else throw new Error(`unknown flag ${a}`);
  }
  for (const k of ["delay", "throughputDelay"]) {
    if (!Number.isFinite(opts[k]) || opts[k] < 0) throw new Error(`--${k} must be a number >= 0`);
  }
  return opts;
}

function versionOf(pkg) {
  try {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8"))
      .version;
  } catch {
    return "unknown";
  }
}

function gitDescribe() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT })
      .toString()
      .trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain"], { cwd: ROOT }).toString().trim() !== "";
    return `${head}${dirty ? " + uncommitted changes" : ""}`;
  } catch {
    return "unknown";
  }
}

const opts = parseArgs(process.argv.slice(2));
if (opts.fromJson) {
  const previous = JSON.parse(readFileSync(opts.fromJson, "utf8"));
  const out = opts.out ?? dirname(opts.fromJson);
  writeReports(out, previous);
  console.log(terminalTable(previous.figures.flatMap((f) => f.rows)));
  console.log(`rewrote ${join(out, "BENCHMARKS.md")} and BENCHMARKS.json from ${opts.fromJson}`);
  process.exit(0);
}
const started = performance.now();
const startedAt = new Date();
const log = (msg) =>
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`,
  );

const budgetMs = opts.quick ? 10 * 60_000 : 50 * 60_000;
const figureBudgetMs = opts.quick ? 150_000 : 20 * 60_000;
let servers;
const watchdog = setTimeout(() => {
  log(`run exceeded its ${budgetMs / 60_000} min budget: stopping`);
  servers?.kill();
  process.exit(2);
}, budgetMs);
watchdog.unref();
process.on("exit", () => servers?.kill());

const dataDir = join(ROOT, ".tmp", "bench-data");
const scratch = join(ROOT, ".tmp", "bench-run");
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });

const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? "unknown",
  memoryBytes: os.totalmem(),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: process.version,
  loadAverage: os.loadavg(),
};
const sqliteVersion = (() => {
  const db = new Database(":memory:");
  try {
    return db.prepare("SELECT sqlite_version()").pluck().get();
  } finally {
    db.close();
  }
})();
const versions = {
  pagecast: `${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version} (${gitDescribe()})`,
  httpvfs: versionOf("sql.js-httpvfs"),
  comlink: versionOf("comlink"),
  betterSqlite3: versionOf("better-sqlite3"),
  sqlite: sqliteVersion,
  fauxqs: versionOf("fauxqs"),
};

log(
  `mode ${opts.quick ? "quick" : "full"}, delay ${opts.delay} ms, throughput delay ${opts.throughputDelay} ms`,
);
const api = await loadPagecast();
if (api.missing.length > 0) log(`pagecast APIs not found: ${api.missing.join(", ")}`);
const wasm = await compileReaderWasm();
const main = ensureMainDatasets({ dataDir, quick: opts.quick, log });
servers = await startServers({ delayMs: opts.delay, maxLifetimeMs: budgetMs + 60_000 });

function store(via, prefix) {
  return new api.S3Store({
    bucket: BUCKET,
    prefix,
    endpoint: servers.endpoint(via),
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
}

/** Publishes a copy of `path` with the Replicator (snapshot only), straight to the emulator. */
async function replicate(path, prefix) {
  const copy = join(scratch, `${prefix}.db`);
  copyFileSync(path, copy);
  const s = store("direct", prefix);
  const t0 = performance.now();
  try {
    const rep = await api.Replicator.start({
      db: copy,
      store: s,
      syncInterval: 0,
      compaction: false,
      retention: 0,
    });
    const stats = rep.stats();
    await rep.close();
    return {
      ms: performance.now() - t0,
      txid: stats.txid,
      bytesUploaded: stats.bytesUploaded,
      requests: stats.store?.requests,
    };
  } finally {
    await s.close();
    for (const sfx of ["", "-wal", "-shm"]) rmSync(`${copy}${sfx}`, { force: true });
  }
}

async function dropPrefix(prefix) {
  const s = store("direct", prefix);
  try {
    const keys = [];
    let token;
    do {
      const page = await s.list(token ? { continuationToken: token } : {});
      for (const o of page.objects) keys.push(o.key);
      token = page.continuationToken;
    } while (token);
    if (keys.length > 0) await s.deleteMany(keys);
  } catch (err) {
    log(`could not delete ${prefix}: ${err instanceof Error ? err.message : err}`);
  } finally {
    await s.close();
  }
}

const datasetList = [
  { key: "fresh", label: "(a) fresh, VACUUMed", ...main.fresh },
  { key: "history", label: "(b) long history, not VACUUMed", ...main.history },
].map((d) => ({ ...d, file: d.path.slice(ROOT.length + 1), prefix: d.key }));

const run = {
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
  quick: opts.quick,
  startedAt: startedAt.toISOString(),
  machine,
  versions,
  delayMs: opts.delay,
  throughputDelayMs: opts.throughputDelay,
  pagecastApi: api.where,
  datasets: datasetList.map(({ key, label, file, manifest }) => ({ key, label, file, manifest })),
  publish: [],
  figures: [],
};

// Figures reading the main datasets through pagecast and sql.js-httpvfs.
const needsMain = !opts.only || ["1", "2", "3", "9", "10", "11"].some((id) => opts.only.has(id));

try {
  if (needsMain && api.Replicator && api.S3Store) {
    for (const ds of datasetList) {
      try {
        log(`publishing dataset ${ds.key} with the Replicator`);
        run.publish.push({ dataset: ds.key, ...(await replicate(ds.path, ds.prefix)) });
      } catch (err) {
        run.publish.push({ dataset: ds.key, error: errorInfo(err) });
        log(`publishing ${ds.key} failed: ${err instanceof Error ? err.message : err}`);
      }
    }
  }
  for (const ds of datasetList) ds.url = await servers.serveFile(`${ds.key}.db`, ds.path);

  const ctx = {
    opts,
    quick: opts.quick,
    api,
    wasm,
    servers,
    dataDir,
    scratch,
    params: main.params,
    log,
    store,
    replicate,
    dropPrefix,
    datasetList: () => datasetList,
    timeTravelBase: () =>
      opts.quick ? main.fresh : ensureMainDatasets({ dataDir, quick: true, log }).fresh,
    queryPlan(path, sql) {
      const db = new Database(path, { readonly: true });
      try {
        const n = (sql.match(/\?/g) ?? []).length;
        return db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all(...Array(n).fill(null))
          .map((r) => r.detail);
      } finally {
        db.close();
      }
    },
  };

  // Warm the JIT of both engines' WebAssembly (one throwaway cold run each), so
  // that the first measured sample does not pay for compiling SQLite's functions.
  if (needsMain) {
    const ds = datasetList[0];
    const warm = [
      { sql: "SELECT * FROM items WHERE id = ?", params: [7] },
      { sql: "SELECT count(*) FROM items WHERE created_at BETWEEN ? AND ?", params: [0, 1e12] },
      {
        sql: "SELECT u.country, count(*) FROM users u JOIN items i ON i.user_id = u.id WHERE u.id < 3 GROUP BY 1",
        params: [],
      },
    ];
    await pagecastCold(ctx, ds.prefix, warm).catch((err) =>
      log(`pagecast warm-up failed: ${err.message}`),
    );
    await httpvfsCold(ctx, ds.url, warm).catch((err) =>
      log(`sql.js-httpvfs warm-up failed: ${err.message}`),
    );
  }

  for (const name of FIGURES) {
    const mod = await import(`./figures/${name}.mjs`);
    const { figure } = mod;
    if (opts.only && !opts.only.has(figure.id)) continue;
    log(`figure ${figure.id}: ${figure.title}`);
    const t0 = performance.now();
    const entry = { id: figure.id, title: figure.title, goal: figure.goal, rows: [], details: {} };
    try {
      const res = await withTimeout(mod.run(ctx), figureBudgetMs, `figure ${figure.id}`);
      entry.rows = res.rows;
      entry.details = res.details;
      entry.notes = res.notes;
    } catch (err) {
      entry.error = errorInfo(err);
      entry.rows = [unavailableRow(figure.id, figure.title, figure.goal, err)];
    }
    entry.durationMs = performance.now() - t0;
    run.figures.push(entry);
    log(`figure ${figure.id} done in ${(entry.durationMs / 1000).toFixed(1)} s`);
  }
} finally {
  await servers.stop();
  rmSync(scratch, { recursive: true, force: true });
}

run.finishedAt = new Date().toISOString();
run.durationMs = performance.now() - started;
const rows = run.figures.flatMap((f) => f.rows);
console.log(
  `\npagecast benchmarks (${opts.quick ? "QUICK MODE: small datasets, short windows" : "full run"}; ${machine.cpus} cores, Node ${machine.node}; delay ${opts.delay} ms)\n`,
);
console.log(terminalTable(rows));
const met = rows.filter((r) => r.verdict === "met").length;
const missed = rows.filter((r) => r.verdict === "missed").length;
const na = rows.filter((r) => r.verdict === "n/a").length;
console.log(
  `\n${met} goals met, ${missed} missed, ${na} not measured; ${(run.durationMs / 1000).toFixed(0)} s`,
);
if (opts.write) {
  const out = opts.out ?? (opts.quick ? join(ROOT, ".tmp", "bench-quick") : ROOT);
  writeReports(out, run);
  console.log(`wrote ${join(out, "BENCHMARKS.md")} and BENCHMARKS.json`);
}
clearTimeout(watchdog);
process.exit(0);
