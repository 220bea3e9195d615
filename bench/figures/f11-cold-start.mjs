/**
 * Figure 11: cold start of a reader-only program, each sample a fresh Node
 * process: bare Node, `import("pagecast")`, and a process that opens a
 * replica on loopback S3 (no added delay) and prints its first row, beside
 * better-sqlite3 reading the same local file. Wall times are taken by the
 * parent from spawn to exit; medians over interleaved samples.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { errorInfo, row, unavailableRow } from "../lib/figure-kit.mjs";
import { BUCKET, CREDENTIALS } from "../lib/servers.mjs";

export const figure = {
  id: "11",
  title: "Cold start: fresh process to import and to first row",
  goal: "import(pagecast) <= 0.08 s, fresh process to first row <= 0.2 s on loopback (beside bare Node)",
};

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TASK = fileURLToPath(new URL("../tasks/cold-start-task.mjs", import.meta.url));

function sample(args, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // BENCH_CHILD_PROF_DIR: a CPU profile of every child, to see where a cold start goes.
    const prof = process.env.BENCH_CHILD_PROF_DIR;
    const flags = prof ? ["--cpu-prof", "--cpu-prof-interval=100", `--cpu-prof-dir=${prof}`] : [];
    const child = spawn(process.execPath, [...flags, TASK, JSON.stringify(args)], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      err += c;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const wallMs = performance.now() - t0;
      try {
        if (code !== 0) throw new Error(err.trim().split("\n").slice(-3).join(" | "));
        resolve({ ...JSON.parse(out.trim().split("\n").pop()), wallMs });
      } catch (e) {
        reject(new Error(`cold-start ${args.mode} failed (exit ${code}): ${e.message}`));
      }
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};
const sec = (ms) => `${(ms / 1000).toFixed(3)} s`;

export async function run(ctx) {
  const ds = ctx.datasetList()[0];
  const n = ctx.quick ? 5 : 15;
  const sql = "SELECT * FROM items WHERE id = ?";
  const common = {
    bucket: BUCKET,
    prefix: ds.prefix,
    endpoint: ctx.servers.endpoint("direct"),
    path: ds.path,
    ...CREDENTIALS,
    sql,
    params: [7],
  };
  const modes = ["bare", "import", "replica", "better-sqlite3"];
  const samples = Object.fromEntries(modes.map((m) => [m, []]));
  const details = { dataset: ds.key, samplesPerMode: n, sql, samples };
  const rows = [];
  try {
    // Interleaved, so that a change in the machine's load hits every mode alike.
    for (let i = 0; i < n; i++) {
      for (const mode of modes) samples[mode].push(await sample({ ...common, mode }));
    }
    const wall = (m) => median(samples[m].map((s) => s.wallMs));
    const at = (m, f) => median(samples[m].map((s) => s[f]));
    const bare = wall("bare");
    details.medians = Object.fromEntries(
      modes.map((m) => [
        m,
        { wallMs: wall(m), importedMs: at(m, "importedMs"), firstRowMs: at(m, "firstRowMs") },
      ]),
    );
    const importCost = at("import", "importedMs") - at("bare", "startMs");
    rows.push(
      row({
        fig: "11",
        label: 'import("pagecast") in a fresh process',
        pagecast: `${sec(importCost)} from process start to imported (process wall ${sec(wall("import"))})`,
        peer: `bare Node: process wall ${sec(bare)}`,
        ratio: `import wall / bare wall = ${(wall("import") / bare).toFixed(2)}`,
        goal: "<= 0.08 s",
        verdict: importCost <= 80 ? "met" : "missed",
      }),
    );
    const firstRow = at("replica", "firstRowMs");
    rows.push(
      row({
        fig: "11",
        label: "fresh process to first row (replica on loopback S3, point lookup)",
        pagecast: `${sec(firstRow)} to the first row (imported at ${sec(at("replica", "importedMs"))}, opened at ${sec(at("replica", "openedMs"))}); process wall ${sec(wall("replica"))}`,
        peer: `better-sqlite3 on the local file: ${sec(at("better-sqlite3", "firstRowMs"))} to the first row, process wall ${sec(wall("better-sqlite3"))}; bare Node ${sec(bare)}`,
        ratio: `first row / bare Node wall = ${(firstRow / bare).toFixed(2)}`,
        goal: "<= 0.2 s",
        verdict: firstRow <= 200 ? "met" : "missed",
      }),
    );
  } catch (err) {
    details.error = errorInfo(err);
    rows.push(unavailableRow("11", "cold start", figure.goal, err));
  }
  return { rows, details };
}
