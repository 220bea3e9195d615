/**
 * The soak's figures: samples from the writer and the replicas folded into
 * one row per window (a minute by default), the verdict (RSS flat, lag p99
 * steady, 0 errors), and the terminal / Markdown renderings.
 */
import { median, percentile } from "./measure.mjs";

const MIB = 1024 * 1024;

/** Median of the `rss` of samples taken in [t0, t1). */
function rssIn(samples, t0, t1) {
  return median(samples.filter((s) => s.at >= t0 && s.at < t1).map((s) => s.rss));
}

/** Last sample at or before `t` (undefined before the first). */
function lastAt(samples, t) {
  let found;
  for (const s of samples) {
    if (s.at <= t) found = s;
    else break;
  }
  return found;
}

/** Growth of a cumulative counter over (t0, t1]. */
function delta(samples, field, t0, t1) {
  return (lastAt(samples, t1)?.[field] ?? 0) - (lastAt(samples, t0)?.[field] ?? 0);
}

function maxOf(values) {
  let m = null;
  for (const v of values) if (m === null || v > m) m = v;
  return m;
}

/**
 * One row per window. `procs.writer` and `procs.replicas[i]` are arrays of
 * samples (cumulative counters, plus `lags` taken since the previous
 * sample); `store` holds periodic store measurements.
 */
export function buildRows({ startedAt, endedAt, windowMs, writer, replicas, store }) {
  const rows = [];
  for (let t0 = startedAt, i = 1; t0 < endedAt - windowMs / 10; t0 += windowMs, i++) {
    const t1 = Math.min(t0 + windowMs, endedAt);
    const seconds = (t1 - t0) / 1000;
    const lags = [];
    const queryTimes = [];
    const publishTimes = [];
    for (const s of writer) {
      if (s.at > t0 && s.at <= t1) for (const p of s.publishTimes ?? []) publishTimes.push(p);
    }
    let queries = 0;
    let errors = delta(writer, "errors", t0, t1);
    let wrong = 0;
    const replicaRss = [];
    for (const samples of replicas) {
      queries += delta(samples, "queries", t0, t1);
      errors += delta(samples, "errors", t0, t1);
      wrong += delta(samples, "wrong", t0, t1);
      for (const s of samples) {
        if (s.at <= t0 || s.at > t1) continue;
        for (const lag of s.lags) lags.push(lag);
        for (const q of s.queryTimes ?? []) queryTimes.push(q);
      }
      replicaRss.push(rssIn(samples, t0, t1));
    }
    const st = lastAt(store, t1);
    rows.push({
      window: i,
      from: Math.round((t0 - startedAt) / 1000),
      to: Math.round((t1 - startedAt) / 1000),
      writerRss: rssIn(writer, t0, t1),
      replicaRss,
      commitsPerSecond: delta(writer, "commits", t0, t1) / seconds,
      txid: lastAt(writer, t1)?.txid ?? null,
      walBytes: lastAt(writer, t1)?.walBytes ?? null,
      publishP99: percentile(publishTimes, 99),
      lagSamples: lags.length,
      lagP50: percentile(lags, 50),
      lagP99: percentile(lags, 99),
      lagMax: maxOf(lags),
      queriesPerSecond: queries / seconds,
      queryP50: percentile(queryTimes, 50),
      queryP99: percentile(queryTimes, 99),
      errors,
      wrong,
      storeObjects: st?.objects ?? null,
      storeBytes: st?.bytes ?? null,
      storeServerRss: st?.serverRss ?? null,
    });
  }
  return rows;
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * The verdict. RSS: per process, the median RSS of the last window against
 * that of the reference window (minute 5 of a 20-minute run; a third of the
 * way in for shorter runs) grows by less than `rssGrowthPct` percent (or less
 * than `rssSlackMiB`, for small processes). Lag: per-window p99 from the
 * reference window on stays within 2x its median, and its least-squares
 * drift over that span is under a quarter of the median (+100 ms). Errors:
 * 0 thrown, 0 wrong answers, no process lost.
 */
export function verdict(rows, { rssGrowthPct = 10, rssSlackMiB = 8, crashes = [] } = {}) {
  const ref = Math.min(4, Math.floor(rows.length / 3));
  const first = rows[ref];
  const last = rows[rows.length - 1];
  const checks = [];
  if (!first || !last || rows.length < 2) {
    checks.push({ name: "run long enough", ok: false, detail: "fewer than 2 windows" });
    return { ok: false, referenceWindow: ref + 1, checks };
  }
  const rssCheck = (name, a, b) => {
    const growth = a ? ((b - a) / a) * 100 : 0;
    const ok = a !== null && b !== null && (growth < rssGrowthPct || b - a < rssSlackMiB * MIB);
    checks.push({
      name: `RSS ${name} flat`,
      ok,
      detail: `${fmtMiB(a)} -> ${fmtMiB(b)} (${growth >= 0 ? "+" : ""}${growth.toFixed(1)}%; limit ${rssGrowthPct}% or ${rssSlackMiB} MiB)`,
    });
  };
  rssCheck("writer", first.writerRss, last.writerRss);
  for (let i = 0; i < first.replicaRss.length; i++) {
    rssCheck(`replica ${i + 1}`, first.replicaRss[i], last.replicaRss[i]);
  }
  const span = rows.slice(ref).filter((r) => r.lagP99 !== null);
  const p99s = span.map((r) => r.lagP99);
  const med = median(p99s) ?? 0;
  const worst = p99s.length ? Math.max(...p99s) : null;
  const drift = slope(span.map((r) => [r.window, r.lagP99])) * Math.max(0, span.length - 1);
  checks.push({
    name: "lag p99 steady",
    ok: p99s.length >= 2 && worst <= 2 * med && drift < med / 4 + 100,
    detail: `per-window p99 from window ${ref + 1}: median ${fmtMs(med)}, max ${fmtMs(worst)}, drift ${drift >= 0 ? "+" : ""}${fmtMs(drift)} over the span`,
  });
  const errors = rows.reduce((a, r) => a + r.errors, 0);
  const wrong = rows.reduce((a, r) => a + r.wrong, 0);
  checks.push({
    name: "0 errors",
    ok: errors === 0 && wrong === 0 && crashes.length === 0,
    detail: `${errors} errors, ${wrong} wrong answers, ${crashes.length} processes lost${crashes.length ? ` (${crashes.join("; ")})` : ""}`,
  });
  return { ok: checks.every((c) => c.ok), referenceWindow: ref + 1, checks };
}

export function fmtMiB(bytes) {
  return bytes === null || bytes === undefined ? "-" : `${(bytes / MIB).toFixed(1)} MiB`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "-";
  if (Math.abs(ms) >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return Math.abs(ms) < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

const HEAD = [
  "min",
  "writer RSS",
  "replica RSS (1..n)",
  "tx/s",
  "publish p99",
  "q/s",
  "query p50/p99",
  "lag p50",
  "lag p99",
  "lag max",
  "errors",
  "wrong",
  "store",
];

function cells(r) {
  return [
    `${(r.to / 60).toFixed(r.to % 60 === 0 ? 0 : 1)}`,
    fmtMiB(r.writerRss),
    r.replicaRss.map((x) => (x === null ? "-" : (x / MIB).toFixed(0))).join("/"),
    r.commitsPerSecond.toFixed(1),
    fmtMs(r.publishP99),
    r.queriesPerSecond.toFixed(0),
    `${fmtMs(r.queryP50)} / ${fmtMs(r.queryP99)}`,
    fmtMs(r.lagP50),
    fmtMs(r.lagP99),
    fmtMs(r.lagMax),
    String(r.errors),
    String(r.wrong),
    r.storeObjects === null
      ? "-"
      : `${r.storeObjects} obj, ${fmtMiB(r.storeBytes)}${r.storeServerRss ? `, server ${fmtMiB(r.storeServerRss)}` : ""}`,
  ];
}

/** Plain-text table for the terminal. */
export function textTable(rows) {
  const all = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n");
}

/** The whole report as Markdown. */
export function markdown(result) {
  const { config, rows, verdict: v } = result;
  const lines = [
    `# Soak: ${config.minutes} min, writer at ${config.rate} tx/s + ${config.replicas} replicas`,
    "",
    `Store: ${config.storeKind}; sync ${config.syncMs} ms, poll ${config.pollMs} ms, replica workload ${config.replicaQps} q/s each` +
      ` (+ lag probe every ${config.probeMs} ms), replica cache ${fmtMiB(config.cacheBytes)}, ${config.keepRows} rows kept;` +
      ` snapshots every ${config.snapshotS} s, retention ${config.retentionS} s.` +
      ` Started ${new Date(result.startedAt).toISOString()} on ${result.host}.`,
    "",
    `| ${HEAD.join(" | ")} |`,
    `|${HEAD.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${cells(r).join(" | ")} |`),
    "",
    "Replica RSS in MiB (median over the window). q/s: SQL statements per second over all replicas" +
      " (checked workload + lag probe); query p50/p99: duration of one workload transaction." +
      " publish p99: a sync's capture of the WAL -> its files and head uploaded (writer side of the lag)." +
      " Lag: commit on the primary -> visible on a replica, pooled over replicas, per window." +
      " store: objects and bytes under the replica's prefix (and the fauxqs process's RSS).",
    "",
    `## Verdict: ${v.ok ? "PASS" : "FAIL"}`,
    "",
    ...v.checks.map((c) => `- ${c.ok ? "ok" : "FAILED"} ${c.name}: ${c.detail}`),
    "",
  ];
  return lines.join("\n");
}
