/** The outputs of a run: a table on stdout, BENCHMARKS.md and BENCHMARKS.json. */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BIOME = fileURLToPath(new URL("../../node_modules/.bin/biome", import.meta.url));

const VERDICT = { met: "MET", missed: "MISSED", info: "info", "n/a": "n/a" };

function cell(text, width) {
  const s = String(text ?? "").replace(/\s+/g, " ");
  return s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width);
}

/** A fixed-width table for the terminal (long cells are cut; the files have them whole). */
export function terminalTable(rows) {
  const cols = [
    ["Fig", 3, (r) => r.fig],
    ["Measure", 46, (r) => r.label],
    ["pagecast", 44, (r) => r.pagecast],
    ["peer", 44, (r) => r.peer],
    ["ratio", 18, (r) => r.ratio],
    ["goal", 30, (r) => r.goal],
    ["verdict", 7, (r) => VERDICT[r.verdict] ?? r.verdict],
  ];
  const line = (vals) => vals.map((v, i) => cell(v, cols[i][1])).join(" | ");
  const out = [line(cols.map((c) => c[0])), cols.map((c) => "-".repeat(c[1])).join("-|-")];
  for (const r of rows) out.push(line(cols.map((c) => c[2](r))));
  return out.join("\n");
}

function md(text) {
  return String(text ?? "")
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ");
}

function markdownTable(rows) {
  const out = [
    "| Fig | Measure | pagecast | Peer | Ratio | Goal | Verdict |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    out.push(
      `| ${md(r.fig)} | ${md(r.label)} | ${md(r.pagecast)} | ${md(r.peer)} | ${md(r.ratio)} | ${md(r.goal)} | **${VERDICT[r.verdict] ?? r.verdict}** |`,
    );
  }
  return out.join("\n");
}

function datasetsTable(datasets) {
  const out = [
    "| Dataset | File | Size | Pages | Free pages | Rows | Leaf contiguity (items / sku idx / created idx) | Content hash |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const d of datasets) {
    const m = d.manifest;
    const lc = m.leafContiguity
      ? [m.leafContiguity.items, m.leafContiguity.items_sku, m.leafContiguity.items_created]
          .map((x) => (x === null ? "n/a" : x.toFixed(3)))
          .join(" / ")
      : "";
    out.push(
      `| ${md(d.label)} | \`${md(d.file)}\` | ${(m.bytes / 1e6).toFixed(1)} MB | ${m.pages} | ${m.freelistPages} | ${md(JSON.stringify(m.rows))} | ${lc} | ${m.contentHash ?? ""} |`,
    );
  }
  return out.join("\n");
}

const METHOD = `
## Method

- **Servers.** One child process hosts the embedded S3 server (fauxqs, in memory), a static
  HTTP file server with byte ranges (for sql.js-httpvfs), and one loopback proxy per client role
  (\`s3\` readers, \`s3w\` writer, \`s3x\` restore/downloads, \`http\` sql.js-httpvfs). Each proxy
  holds every request for a fixed delay before forwarding it (the round trip to S3), counts
  requests by kind (GET, range GET, conditional GET, HEAD, PUT, multipart parts, LIST, DELETE...)
  and bytes both ways. Everything listens on 127.0.0.1 and stops with the run.
- **Sequential round trips (RT).** Each request gets, on arrival at the proxy, depth = 1 + the
  largest depth among the requests of the same measurement that had already completed (the
  proxy had handed over their last byte; 0 if none). RT is the largest depth among requests completed before the measured operation
  returned: requests in flight together count once; a request sent only after another's answer
  counts one more. The proxy cannot see causality, so a request that merely started after an
  unrelated one completed is counted as chained: RT is the number of latency-bound waves, an
  upper bound of the causal chain; wall time >= RT x delay. Requests still in flight when the
  operation returned (background prefetch) are counted in requests/bytes but not in RT.
- **Cold** means a new process-level client: a new S3 client and replica (pagecast), a new
  worker (sql.js-httpvfs, whose page cache lives in the worker). The open is included in every
  cold figure. Both engines' WebAssembly is compiled before the clock starts.
- **sql.js-httpvfs 0.8.12** runs its unmodified worker bundle in a Node worker_threads Worker
  with a shim for \`self\`, \`importScripts\` and a synchronous XMLHttpRequest (a helper thread
  performs the request; the SQLite thread blocks in Atomics.wait and takes the answer with
  receiveMessageOnPort), driven with comlink 4.3.0; requestChunkSize = page size (4096), full-file
  mode, served through the \`http\` proxy with the same delay.
- **Full download** = pagecast \`restore\` (plan, parallel download, apply, checksum,
  quick_check, its default) then better-sqlite3 on the restored file. **Local** = better-sqlite3 on the
  dataset file (OS page cache warm).
- **Same bytes.** pagecast reads a snapshot the Replicator published from a copy of the dataset
  file; sql.js-httpvfs and better-sqlite3 read the dataset file itself. Query results of every
  engine are compared with better-sqlite3's; a mismatch is reported in the table.
- **Throughput figures** (3, 5, 7, 9) run with the proxies' delay set to the throughput delay.
- Numbers come from one run on a shared machine; nothing is tuned to the goals, and a missed goal
  is reported as missed.
`;

/** Writes BENCHMARKS.md and BENCHMARKS.json into `dir`. */
export function writeReports(dir, run) {
  mkdirSync(dir, { recursive: true });
  const rows = run.figures.flatMap((f) => f.rows);
  const missing = rows.filter((r) => r.verdict === "n/a" && r.pagecast.startsWith("not measured"));
  const lines = [
    "# pagecast benchmarks",
    "",
    "<!-- Generated by bench/run.mjs. Do not edit by hand: rerun the benchmark. -->",
    "",
    `Generated ${run.finishedAt} by \`${run.command}\` (${run.quick ? "**quick mode: small datasets, short windows — not the full benchmark**" : "full run"}), in ${(run.durationMs / 1000).toFixed(0)} s.`,
    "",
    `Machine: ${run.machine.cpus} x ${run.machine.cpuModel}, ${(run.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${run.machine.os}; Node ${run.machine.node}; load average at start ${run.machine.loadAverage.map((x) => x.toFixed(2)).join(" / ")}.`,
    "",
    `Versions: pagecast ${run.versions.pagecast}, sql.js-httpvfs ${run.versions.httpvfs}, comlink ${run.versions.comlink}, better-sqlite3 ${run.versions.betterSqlite3} (SQLite ${run.versions.sqlite}), fauxqs ${run.versions.fauxqs}.`,
    "",
    `Per-request proxy delay: ${run.delayMs} ms (throughput figures: ${run.throughputDelayMs} ms).`,
    "",
    ...(run.notes ?? []).flatMap((n) => [md(n), ""]),
    "## Summary",
    "",
    markdownTable(rows),
    "",
  ];
  if (missing.length > 0) {
    lines.push("## Figures not measured", "");
    for (const r of missing)
      lines.push(`- Figure ${r.fig}, ${r.label}: ${r.pagecast}. ${md(r.note)}`);
    lines.push("");
  }
  lines.push("## Datasets", "", datasetsTable(run.datasets), "");
  lines.push(
    "Leaf contiguity: fraction of consecutive leaf pages (in key order) that are also adjacent in the file (1 = perfectly sequential).",
    "",
  );
  if (run.publish) {
    lines.push(
      "Initial publication by the Replicator (snapshot of the dataset, direct to the emulator): " +
        run.publish.map((p) => `${p.dataset}: ${(p.ms / 1000).toFixed(1)} s`).join(", "),
      "",
    );
  }
  lines.push("## Notes per figure", "");
  for (const f of run.figures) {
    lines.push(
      `### ${f.id}. ${f.title}`,
      "",
      `Goal: ${f.goal}.`,
      "",
      `Reproduce: \`npm run build && node bench/run.mjs --only ${f.id}${run.quick ? " --quick" : ""}\`.`,
      "",
    );
    if (f.error) lines.push(`Failed: ${md(f.error.message)}`, "");
    for (const r of f.rows) if (r.note) lines.push(`- ${md(r.label)}: ${md(r.note)}`);
    for (const n of f.notes ?? []) lines.push(`- ${md(n)}`);
    lines.push(
      "",
      `Duration: ${(f.durationMs / 1000).toFixed(1)} s. Details in BENCHMARKS.json (\`figures[${run.figures.indexOf(f)}].details\`).`,
      "",
    );
  }
  lines.push(METHOD.trim(), "");
  const mdPath = join(dir, "BENCHMARKS.md");
  let text = `${lines.join("\n")}`;
  // The repository's linter formats Markdown too (tables padded): emit it as it
  // wants it. Through stdin: a file under .tmp (where runs write) is one biome
  // ignores, and `format --write` on it silently changed nothing.
  if (existsSync(BIOME)) {
    try {
      text = execFileSync(BIOME, ["format", "--stdin-file-path=BENCHMARKS.md"], {
        input: text,
        encoding: "utf8",
        stdio: ["pipe", "pipe", "ignore"],
        maxBuffer: 64 << 20,
      });
    } catch {
      // Unformatted output is still correct output.
    }
  }
  writeFileSync(mdPath, text);
  writeFileSync(
    join(dir, "BENCHMARKS.json"),
    `${JSON.stringify(run, (_, v) => (typeof v === "bigint" ? v.toString() : v), 1)}\n`,
  );
}
