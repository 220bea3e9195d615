/**
 * CPU profiles as evidence for "what limits a missed goal": record one (in
 * process, through the inspector) or read one written by `--cpu-prof`, and
 * reduce it to the functions with the most self time.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function where(frame) {
  const url = frame.url ?? "";
  if (!url) return frame.functionName ? "(native)" : "";
  let path = url.startsWith("file://") ? fileURLToPath(url) : url;
  if (path.startsWith(ROOT)) path = relative(ROOT, path);
  return `${path}:${frame.lineNumber + 1}`;
}

/** Top `limit` functions by self time: [{ fn, where, ms, share }]. */
export function summarizeProfile(profile, limit = 10) {
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const agg = new Map();
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const fn = n.callFrame.functionName || "(anonymous)";
    const key = `${fn}\u0000${where(n.callFrame)}`;
    agg.set(key, (agg.get(key) ?? 0) + ms);
  }
  return [...agg]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([key, ms]) => {
      const [fn, at] = key.split("\u0000");
      return { fn, where: at, ms: Math.round(ms), share: total ? ms / total : 0 };
    });
}

/** Profiles this process while `fn` runs; returns [fn's result, summary]. */
export async function profileWhile(fn, limit = 10) {
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 500 });
    await session.post("Profiler.start");
    const result = await fn();
    const { profile } = await session.post("Profiler.stop");
    return [result, summarizeProfile(profile, limit)];
  } finally {
    session.disconnect();
  }
}

/**
 * Reads (and deletes) the profiles a child wrote with --cpu-prof into `dir`:
 * the main thread's summary, with `workers` (one summary per worker thread,
 * e.g. restore's decode threads) attached when there are any.
 */
export function takeProfile(dir, limit = 10) {
  try {
    // Node names them CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; the main thread is 0.
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => ({ f, tid: Number(f.split(".").at(-3)) }))
      .sort((a, b) => a.tid - b.tid);
    if (files.length === 0) return undefined;
    const read = (f) => summarizeProfile(JSON.parse(readFileSync(join(dir, f), "utf8")), limit);
    const main = read(files[0].f);
    const workers = files.slice(1).map((x) => read(x.f));
    if (workers.length > 0)
      Object.defineProperty(main, "workers", { value: workers, enumerable: false });
    return main;
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One line per entry, for reports. */
export function profileText(summary, count = 5) {
  if (!summary) return "no profile";
  return summary
    .slice(0, count)
    .map((e) => `${e.fn} (${e.where}) ${(e.share * 100).toFixed(0)}%`)
    .join("; ");
}
