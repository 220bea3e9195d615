/** Timing and request accounting around one measured operation, plus small statistics. */

/**
 * Runs `fn(mark)` with the `via` proxy's window reset first. `mark(name)`
 * records a moment (e.g. "open") whose round trips and requests are reported
 * too. After `fn` resolves, waits (bounded) for requests still in flight
 * (background prefetch) so that their bytes are counted; they appear as
 * `requestsAfter`, not in the round trips.
 */
export async function measured(servers, via, fn) {
  await servers.reset(via);
  const marks = [];
  const t0 = servers.now();
  const mark = (name) => marks.push({ name, at: servers.now() });
  const result = await fn(mark);
  const t1 = servers.now();
  await servers.idle(via, 3000);
  const summary = await servers.summary(via, [...marks.map((m) => m.at), t1]);
  const end = summary.marks[summary.marks.length - 1];
  const waves = wavesOf(await servers.log(via, 5000), t0, t1);
  const at = {};
  marks.forEach((m, i) => {
    const s = summary.marks[i];
    at[m.name] = { ms: m.at - t0, roundTrips: s.roundTrips, requests: s.requests };
  });
  return {
    result,
    ms: t1 - t0,
    roundTrips: end.roundTrips,
    requests: end.requests,
    requestsAfter: summary.requests - end.requests,
    bytesDown: summary.bytesDown,
    bytesUp: summary.bytesUp,
    byKind: summary.byKind,
    billing: summary.billing,
    notModified: summary.notModified,
    at,
    waves,
  };
}

/**
 * The requests of a measurement grouped by depth (see request-ledger.mjs):
 * wave d holds the requests that started after a depth d-1 answer.
 */
export function wavesOf(log, t0, t1) {
  const waves = [];
  for (const r of log) {
    if (r.start > t1) continue;
    let w = waves[r.depth - 1];
    if (!w) {
      w = { depth: r.depth, requests: 0, bytes: 0, kinds: {}, startMs: r.start - t0 };
      waves[r.depth - 1] = w;
    }
    w.requests++;
    w.bytes += r.down;
    w.kinds[r.kind] = (w.kinds[r.kind] ?? 0) + 1;
    w.startMs = Math.min(w.startMs, r.start - t0);
  }
  return waves.filter(Boolean).map((w) => ({ ...w, startMs: Math.round(w.startMs) }));
}

/** "1 GET 0.4 kB @12 ms | 1 GET range 14 kB @58 ms | ..." */
export function wavesText(waves) {
  return (waves ?? [])
    .map((w) => {
      const kinds = Object.entries(w.kinds)
        .map(([k, n]) => `${n} ${k}`)
        .join(" + ");
      return `${kinds} ${(w.bytes / 1000).toFixed(1)} kB @${w.startMs} ms`;
    })
    .join(" | ");
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values, p) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * v.length));
  return v[Math.min(rank, v.length) - 1];
}

export function min(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? Math.min(...v) : null;
}

/**
 * Round trips over samples. Each sample can only over-count the causal chain
 * (see request-ledger.mjs), so the minimum is the tightest upper bound of it;
 * the maximum shows how much a loaded machine inflated the others.
 */
export function rtStats(values) {
  return { min: min(values), median: median(values), max: max(values) };
}

/** "3 RT" or "3 RT (up to 5)". */
export function rtText(rt) {
  return rt.min === rt.max ? `${rt.min} RT` : `${rt.min} RT (up to ${rt.max})`;
}

export function max(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? Math.max(...v) : null;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `promise`, or rejects after `ms` with a timeout error. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} timed out after ${Math.round(ms / 1000)} s`);
      err.kind = "timeout";
      reject(err);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Rows to comparable JSON (bigints as strings, objects by value). */
export function canonical(rows) {
  return JSON.stringify(rows, (_, v) => (typeof v === "bigint" ? v.toString() : v));
}
