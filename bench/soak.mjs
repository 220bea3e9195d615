/**
 * Soak (issue 7; not part of CI): a writer at steady load plus replicas
 * querying, for `--minutes` (default 20). Reports per minute the RSS of every
 * process (should stay flat), the replication lag p50/p99 (should stay
 * steady), queries/s and errors (should be 0), then a verdict.
 *
 *   npm run build && node bench/soak.mjs [--minutes 20] [--out .tmp/soak.md --out .tmp/soak.json]
 *
 * Processes: this one (orchestrator, store monitor), the writer
 * (lib/soak-writer.mjs: better-sqlite3 app + Replicator, steady commits) and
 * one process per replica (lib/soak-replica.mjs: lag probe + checked query
 * workload), each reporting its own RSS once a second.
 *
 * Store: Ceph RGW when PAGECAST_RGW_ENDPOINT is set, else fauxqs in the
 * bench's server-host process (lib/servers.mjs); `--store file` uses a
 * directory. fauxqs keeps objects in memory, so the replicator runs with short
 * snapshot / retention intervals that keep the bucket bounded (the table's
 * `store` column shows it).
 *
 * Flags: --minutes N, --out FILE (.md or .json; repeatable), --replicas N (4),
 * --rate TX_PER_S (50), --sync-ms (1000), --poll-ms (1000), --replica-qps
 * (workload transactions per second per replica, 10; 0 = back to back),
 * --probe-ms (100), --keep-rows (20000), --cache-mib (8), --window-s (60),
 * --snapshot-s (30), --retention-s (60), --store auto|fauxqs|rgw|file,
 * --rss-growth-pct (10). Exit code 0 when the verdict passes, 1 otherwise.
 * The defaults keep a 2-core machine well below saturation, so that lag
 * reflects replication rather than CPU queueing.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { fork } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BUCKET, CREDENTIALS, startServers } from "./lib/servers.mjs";
import { buildRows, fmtMiB, fmtMs, markdown, textTable, verdict } from "./lib/soak-report.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const LIB = join(ROOT, "bench", "lib");

function parseArgs(argv) {
  const o = {
    minutes: 20,
    out: [],
    replicas: 4,
    rate: 50,
    syncMs: 1000,
    pollMs: 1000,
    replicaQps: 10,
    probeMs: 100,
    keepRows: 20_000,
    cacheMiB: 8,
    windowS: 60,
    snapshotS: 30,
    retentionS: 60,
    store: "auto",
    rssGrowthPct: 10,
  };
  const numeric = {
    "--minutes": "minutes",
    "--replicas": "replicas",
    "--rate": "rate",
    "--sync-ms": "syncMs",
    "--poll-ms": "pollMs",
    "--replica-qps": "replicaQps",
    "--probe-ms": "probeMs",
    "--keep-rows": "keepRows",
    "--cache-mib": "cacheMiB",
    "--window-s": "windowS",
    "--snapshot-s": "snapshotS",
    "--retention-s": "retentionS",
    "--rss-growth-pct": "rssGrowthPct",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a in numeric) {
      const n = Number(value());
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a non-negative number`);
      o[numeric[a]] = n;
    } else if (a === "--out") o.out.push(resolve(value()));
    else if (a === "--store") o.store = value();
    else if (a === "--help" || a === "-h") {
      console.log(
        "usage: node bench/soak.mjs [--minutes N] [--out FILE.md|FILE.json]... (see the file header)",
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${a}`);
  }
  if (!["auto", "fauxqs", "rgw", "file"].includes(o.store))
    throw new Error("--store auto|fauxqs|rgw|file");
  if (o.store === "auto") o.store = process.env.PAGECAST_RGW_ENDPOINT ? "rgw" : "fauxqs";
  if (o.minutes <= 0 || o.rate <= 0 || o.windowS <= 0)
    throw new Error("--minutes, --rate and --window-s must be > 0");
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const runId = `soak-${Date.now().toString(36)}`;
const scratch = join(ROOT, ".tmp", runId);
mkdirSync(scratch, { recursive: true });
const { openNodeStore } = await import(pathToFileURL(join(ROOT, "dist", "node.js")).href);

/** The store every process uses: its URL, credentials, and how to stop it. */
async function setUpStore() {
  if (opts.store === "rgw") {
    const endpoint = process.env.PAGECAST_RGW_ENDPOINT;
    if (!endpoint) throw new Error("--store rgw needs PAGECAST_RGW_ENDPOINT");
    const credentials = {
      accessKeyId: process.env.PAGECAST_RGW_ACCESS_KEY ?? "S3RVER",
      secretAccessKey: process.env.PAGECAST_RGW_SECRET_KEY ?? "S3RVER",
    };
    const bucket = `pagecast-${runId}`;
    const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
    const client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials,
    });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    return {
      kind: `Ceph RGW (${endpoint})`,
      url: `s3://${bucket}/soak?endpoint=${encodeURIComponent(endpoint)}`,
      credentials,
      serverRss: async () => null,
      stop: async () => {},
    };
  }
  if (opts.store === "file") {
    const dir = join(scratch, "store");
    mkdirSync(dir, { recursive: true });
    return {
      kind: `file (${dir})`,
      url: pathToFileURL(dir).href,
      credentials: undefined,
      serverRss: async () => null,
      stop: async () => {},
    };
  }
  const servers = await startServers({ delayMs: 0, maxLifetimeMs: (opts.minutes + 10) * 60_000 });
  const endpoint = servers.endpoint("direct");
  return {
    kind: "fauxqs (in the bench's server host process)",
    url: `s3://${BUCKET}/${runId}?endpoint=${encodeURIComponent(endpoint)}`,
    credentials: CREDENTIALS,
    serverRss: async () => (await servers.memory()).rss,
    stop: () => servers.stop(),
    kill: () => servers.kill(),
  };
}

/** Starts a child; resolves once it reports ready. Samples land in `samples`. */
function startChild(name, script, config, samples, crashes) {
  const child = fork(join(LIB, script), [JSON.stringify(config)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  let stopping = false;
  let doneResolve;
  const done = new Promise((r) => {
    doneResolve = r;
  });
  const ready = new Promise((resolveReady, rejectReady) => {
    child.on("message", (msg) => {
      if (msg.type === "ready") resolveReady(msg);
      else if (msg.type === "sample") samples.push(msg);
      else if (msg.type === "done") {
        samples.push(msg);
        doneResolve(msg);
      }
    });
    child.on("exit", (code, signal) => {
      if (!stopping) {
        crashes.push(`${name} exited (${code ?? signal})`);
        rejectReady(new Error(`${name} exited before it was ready (${code ?? signal})`));
      }
      doneResolve(undefined);
    });
  });
  return {
    name,
    child,
    ready,
    async stop(timeoutMs = 30_000) {
      stopping = true;
      if (child.exitCode !== null) return undefined;
      child.send({ type: "stop" });
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const result = await done;
      clearTimeout(timer);
      return result;
    },
    kill() {
      stopping = true;
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

async function measureStore(store) {
  const s = await openNodeStore(
    store.url,
    store.credentials ? { credentials: store.credentials } : {},
  );
  try {
    let objects = 0;
    let bytes = 0;
    let token;
    do {
      const page = await s.list(token ? { continuationToken: token } : {});
      for (const o of page.objects) {
        objects++;
        bytes += o.size;
      }
      token = page.continuationToken;
    } while (token);
    return { at: Date.now(), objects, bytes, serverRss: await store.serverRss() };
  } finally {
    await s.close();
  }
}

const store = await setUpStore();
const children = [];
const killAll = () => {
  for (const c of children) c.kill();
  store.kill?.();
};
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

const writerSamples = [];
const replicaSamples = Array.from({ length: opts.replicas }, () => []);
const storeSamples = [];
const crashes = [];
console.log(
  `soak ${runId}: ${opts.minutes} min, writer ${opts.rate} tx/s (sync ${opts.syncMs} ms), ` +
    `${opts.replicas} replicas (poll ${opts.pollMs} ms, ${opts.replicaQps || "max"} q/s + lag probe), store ${store.kind}`,
);

const writer = startChild(
  "writer",
  "soak-writer.mjs",
  {
    url: store.url,
    credentials: store.credentials,
    dbPath: join(scratch, "primary.db"),
    rate: opts.rate,
    keepRows: opts.keepRows,
    syncMs: opts.syncMs,
    // Short cycles so that snapshots, compaction and retention all run many
    // times in the soak (deleting files while replicas read), and the bucket
    // stays bounded.
    snapshotMs: opts.snapshotS * 1000,
    retentionMs: opts.retentionS * 1000,
    retentionGraceMs: Math.min(15_000, opts.retentionS * 500),
    compaction: { l1: 10_000, l2: 60_000, l3: 300_000 },
  },
  writerSamples,
  crashes,
);
children.push(writer);
await writer.ready;
const replicas = replicaSamples.map((samples, i) => {
  const r = startChild(
    `replica ${i + 1}`,
    "soak-replica.mjs",
    {
      url: store.url,
      credentials: store.credentials,
      pollMs: opts.pollMs,
      probeMs: opts.probeMs,
      qps: opts.replicaQps,
      cacheBytes: opts.cacheMiB * 1024 * 1024,
      seed: 1000 + i,
    },
    samples,
    crashes,
  );
  children.push(r);
  return r;
});
await Promise.all(replicas.map((r) => r.ready));

const startedAt = Date.now();
const endAt = startedAt + opts.minutes * 60_000;
storeSamples.push(await measureStore(store));
const windowMs = opts.windowS * 1000;
let printed = 0;
while (Date.now() < endAt && !crashes.some((c) => c.startsWith("writer"))) {
  await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(0, endAt - Date.now()))));
  if (Date.now() - storeSamples[storeSamples.length - 1].at >= Math.min(windowMs, 30_000) - 500) {
    storeSamples.push(await measureStore(store).catch(() => storeSamples[storeSamples.length - 1]));
  }
  // Progress: each completed window as it ends.
  const rows = buildRows({
    startedAt,
    endedAt: Date.now(),
    windowMs,
    writer: writerSamples,
    replicas: replicaSamples,
    store: storeSamples,
  }).filter((r) => r.to - r.from >= opts.windowS - 1);
  for (const r of rows.slice(printed)) {
    const rss = r.replicaRss.map((x) => fmtMiB(x)).join(", ");
    console.log(
      `  [${r.to}s] writer ${fmtMiB(r.writerRss)}, replicas ${rss}; ${r.commitsPerSecond.toFixed(1)} tx/s, ` +
        `${r.queriesPerSecond.toFixed(0)} q/s, lag p50 ${fmtMs(r.lagP50)} p99 ${fmtMs(r.lagP99)}, ` +
        `${r.errors} errors, ${r.wrong} wrong; store ${r.storeObjects ?? "-"} objects`,
    );
  }
  printed = Math.max(printed, rows.length);
}
const endedAt = Date.now();
storeSamples.push(await measureStore(store).catch(() => storeSamples[storeSamples.length - 1]));

const finals = await Promise.all(replicas.map((r) => r.stop()));
const writerFinal = await writer.stop();
await store.stop();

const rows = buildRows({
  startedAt,
  endedAt,
  windowMs,
  writer: writerSamples.filter((s) => s.type === "sample"),
  replicas: replicaSamples.map((s) => s.filter((x) => x.type === "sample")),
  store: storeSamples,
});
// Errors that surfaced only while stopping (closing) count too.
const lateErrors =
  (writerFinal
    ? writerFinal.errors - (writerSamples.filter((s) => s.type === "sample").pop()?.errors ?? 0)
    : 0) + (writerFinal?.closeError ? 1 : 0);
if (rows.length > 0 && lateErrors > 0) rows[rows.length - 1].errors += lateErrors;
const v = verdict(rows, { rssGrowthPct: opts.rssGrowthPct, crashes });
const result = {
  runId,
  host: `${os.cpus().length} cores, ${os.platform()} ${os.release()}, node ${process.version}`,
  startedAt,
  endedAt,
  config: {
    ...opts,
    out: undefined,
    storeKind: store.kind,
    cacheBytes: opts.cacheMiB * 1024 * 1024,
  },
  rows,
  verdict: v,
  writer: writerFinal && {
    txid: writerFinal.txid,
    commits: writerFinal.commits,
    snapshots: writerFinal.snapshots,
    compactions: writerFinal.compactions,
    retentionDeletes: writerFinal.retentionDeletes,
    bytesUploaded: writerFinal.bytesUploaded,
    storeRequests: writerFinal.storeRequests,
    storeRetries: writerFinal.storeRetries,
    walBytes: writerFinal.walBytes,
    lastError: writerFinal.lastError,
    closeError: writerFinal.closeError,
  },
  replicas: finals.map((f) =>
    f
      ? {
          queries: f.queries,
          errors: f.errors,
          wrong: f.wrong,
          wrongExamples: f.wrongExamples,
          errorExamples: f.errorExamples,
          lastError: f.lastError,
          txid: f.txid,
          requests: f.requests,
        }
      : null,
  ),
  crashes,
};

console.log(`\n${textTable(rows)}\n`);
console.log(`verdict: ${v.ok ? "PASS" : "FAIL"}`);
for (const c of v.checks) console.log(`  ${c.ok ? "ok    " : "FAILED"} ${c.name}: ${c.detail}`);
if (writerFinal?.lastError) console.log(`  writer's last error: ${writerFinal.lastError}`);
for (const [i, f] of finals.entries()) {
  for (const e of f?.errorExamples ?? []) console.log(`  replica ${i + 1} error: ${e}`);
  if (f?.wrongExamples?.length)
    console.log(`  replica ${i + 1} wrong answers: ${f.wrongExamples.join("; ")}`);
}
for (const file of opts.out) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    extname(file) === ".json" ? `${JSON.stringify(result, null, 2)}\n` : markdown(result),
  );
  console.log(`wrote ${file}`);
}
rmSync(scratch, { recursive: true, force: true });
process.exitCode = v.ok ? 0 : 1;
