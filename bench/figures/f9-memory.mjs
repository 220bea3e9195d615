/**
 * Figure 9: memory of a replica against its configured cache size, each run
 * in its own process over a workload touching far more pages than the cache
 * holds; sql.js-httpvfs (whose cache is unbounded) and better-sqlite3 (2 MB
 * default page cache, plus the OS page cache outside the process) on the same
 * workload for comparison.
 */
import { runTask } from "../lib/child-task.mjs";
import { errorInfo, fmtBytes, row, unavailableRow, verdict } from "../lib/figure-kit.mjs";
import { need } from "../lib/pagecast-api.mjs";
import { BUCKET } from "../lib/servers.mjs";

export const figure = {
  id: "9",
  title: "Replica memory vs configured cache size",
  goal: "open cost <= 32 MB, RSS growth over the open database <= 1.5x cacheBytes (issue 14; default rows)",
};

const MiB = 1024 * 1024;

export async function run(ctx) {
  const ds = ctx.datasetList()[0];
  const cacheSizes = ctx.quick ? [1 * MiB, 4 * MiB] : [4 * MiB, 16 * MiB, 64 * MiB];
  const work = ctx.quick ? { scans: 12, lookups: 200 } : { scans: 40, lookups: 500 };
  const delay = ctx.opts.throughputDelay;
  const rows = [];
  const details = { dataset: ds.key, workload: work, delayMs: delay, runs: [] };
  await ctx.servers.setDelay("s3", delay);
  await ctx.servers.setDelay("http", delay);
  const common = {
    bucket: BUCKET,
    prefix: ds.prefix,
    endpoint: ctx.servers.endpoint("s3"),
    url: ds.url,
    path: ds.path,
    items: ctx.params.items,
    seed: 99,
    ...work,
  };
  const timeoutMs = ctx.quick ? 90_000 : 300_000;
  const task = ({ nodeArgs = [], env = {}, ...args }) =>
    runTask(
      "memory-task",
      { ...common, ...args },
      { timeoutMs, nodeArgs: ["--expose-gc", ...nodeArgs], env },
    );
  const describe = (r) =>
    `RSS ${fmtBytes(r.rssAfter)} after the workload: +${fmtBytes(r.rssAfter - r.rssOpen)} over the open database (peak +${fmtBytes(r.rssMaxSampled - r.rssOpen)}); open cost +${fmtBytes(r.rssOpen - r.rssBaseline)}`;
  try {
    const peers = {};
    for (const engine of ["sql.js-httpvfs", "better-sqlite3"]) {
      try {
        peers[engine] = await task({ engine, cacheBytes: 0 });
        details.runs.push(peers[engine]);
      } catch (err) {
        peers[engine] = { error: errorInfo(err) };
        details.runs.push({ engine, error: errorInfo(err) });
      }
    }
    const peerText = Object.entries(peers)
      .map(([n, r]) => `${n}: ${r.error ? "failed" : describe(r)}`)
      .join("; ");
    need(ctx.api, "openReplica", "S3Store");
    // Each size as a Node reader runs by default (`pagecast` alone, opened by
    // URL: FetchS3Store over node:http, both builds); the middle size also
    // with the async build only (`syncWasm: false`: the memory a serverless
    // app saves by giving up the faster warm statements), over the AWS
    // SDK's S3Store (a process that also loads the writer's side), and with
    // V8's young generation capped (`--max-semi-space-size=1`, which
    // NODE_OPTIONS accepts): how much of the growth is the runtime's.
    const semi = ["--max-semi-space-size=1"];
    // Most of the growth is glibc's main heap: what V8 mallocs while the
    // workload runs (response bodies, and above all the zones of its
    // optimizing compiler tiering up SQLite's two wasm modules: 45 of the
    // 73 MB malloc'd at heaptrack's peak, file:// replica, 16 MiB cache) is
    // freed, but the space stays with the process. A fixed mmap threshold gives large
    // buffers back; `--liftoff-only` keeps the wasm on V8's baseline tier.
    const liftoff = ["--liftoff-only"];
    const malloc = { MALLOC_MMAP_THRESHOLD_: "65536", MALLOC_TRIM_THRESHOLD_: "131072" };
    const variants = [
      ...cacheSizes.map((cacheBytes) => ({ cacheBytes, asyncOnly: false, store: "url" })),
      { cacheBytes: cacheSizes[1], asyncOnly: true, store: "url" },
      { cacheBytes: cacheSizes[1], asyncOnly: false, store: "sdk" },
      ...[cacheSizes[0], cacheSizes[1]].map((cacheBytes) => ({
        cacheBytes,
        asyncOnly: false,
        store: "url",
        nodeArgs: semi,
      })),
      ...[cacheSizes[0], cacheSizes[1]].map((cacheBytes) => ({
        cacheBytes,
        asyncOnly: false,
        store: "url",
        nodeArgs: semi,
        env: malloc,
      })),
      { cacheBytes: cacheSizes[1], asyncOnly: false, store: "url", nodeArgs: liftoff },
    ];
    for (const { cacheBytes, asyncOnly, store, nodeArgs, env } of variants) {
      const how = [
        asyncOnly ? "async build only (syncWasm: false)" : "",
        store === "sdk" ? "AWS SDK S3Store, writer side loaded" : "",
        nodeArgs ? `node ${nodeArgs.join(" ")}` : "",
        env
          ? Object.entries(env)
              .map(([k, v]) => `${k}=${v}`)
              .join(" ")
          : "",
      ].filter(Boolean);
      const label = `replica with cacheBytes = ${cacheBytes / MiB} MiB${how.length ? `, ${how.join(", ")}` : ""}`;
      try {
        const r = await task({ engine: "pagecast", cacheBytes, asyncOnly, store, nodeArgs, env });
        r.nodeArgs = nodeArgs;
        r.env = env;
        details.runs.push(r);
        const growth = r.rssAfter - r.rssOpen;
        const openCost = r.rssOpen - r.rssBaseline;
        // The goal is for a replica as a Node reader runs it by default; the other rows inform.
        const isDefault = store === "url" && !asyncOnly && !nodeArgs && !env;
        rows.push(
          row({
            fig: "9",
            label,
            pagecast: `${describe(r)}; cache holds ${fmtBytes(r.cache?.bytes)} (${r.cache?.entries} pages)`,
            peer: peerText,
            ratio: `growth / cache size = ${(growth / cacheBytes).toFixed(2)}`,
            goal: isDefault ? "open cost <= 32 MB; growth <= 1.5x cacheBytes" : "(informs)",
            verdict: isDefault ? verdict(openCost <= 32e6 && growth <= 1.5 * cacheBytes) : "info",
          }),
        );
      } catch (err) {
        details.runs.push({
          engine: "pagecast",
          cacheBytes,
          asyncOnly,
          store,
          error: errorInfo(err),
        });
        rows.push(unavailableRow("9", label, "", err));
      }
    }
  } catch (err) {
    details.error = errorInfo(err);
    rows.push(unavailableRow("9", "replica memory", "", err));
  } finally {
    await ctx.servers.setDelay("s3", ctx.opts.delay);
    await ctx.servers.setDelay("http", ctx.opts.delay);
  }
  return { rows, details };
}
