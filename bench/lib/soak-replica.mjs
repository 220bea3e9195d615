/**
 * Soak replica (child process of bench/soak.mjs): a replica opened on the
 * store URL, polling in the background, running two loops on it:
 *
 * - a lag probe every `probeMs`: reads the rows that appeared since the last
 *   probe with their commit times; each row's lag is the probe's time minus
 *   its commit time (commit -> visible on this replica, measured to within
 *   one probe interval plus the query itself);
 * - a query workload at `qps` (point lookups, range aggregates, index scans,
 *   a full count now and then), each answer checked against what the writer
 *   must have written (payloads derive from ids; ids are contiguous within a
 *   version), so a wrong answer is counted, not just a thrown error.
 *
 * Reports a sample once a second over IPC: RSS, queries and errors so far,
 * and the lag samples taken since the previous report.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { payloadOf, sumV } from "./soak-shared.mjs";

const config = JSON.parse(process.argv[2] ?? "{}");
const { openReplica } = await import(new URL("../../dist/index.node.js", import.meta.url).href);

const replica = await openReplica(config.url, {
  ...(config.credentials ? { storeOptions: { credentials: config.credentials } } : {}),
  pollIntervalMs: config.pollMs,
  backgroundPollMs: config.pollMs,
  cacheBytes: config.cacheBytes,
  // Two connections: the lag probe never queues behind a workload transaction.
  connections: 2,
});

let stopping = false;
let queries = 0;
let errors = 0;
let wrong = 0;
let lastError = null;
const wrongExamples = [];
let lags = [];
/** Durations of workload transactions (ms) since the previous report. */
let queryTimes = [];
let lastSeen = 0;
let rand = (config.seed ?? 1) >>> 0;
const random = () => {
  rand = (rand + 0x6d2b79f5) >>> 0;
  let t = rand;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const randInt = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An error and its causes, one line (codes included), plus what the replica recorded. */
function describe(err) {
  const parts = [];
  for (let e = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    parts.push(e instanceof Error ? `${e.message}${e.code ? ` [${e.code}]` : ""}` : String(e));
  }
  const recorded = replica.status().lastError;
  if (recorded) parts.push(`replica status: ${recorded.message} [${recorded.code ?? ""}]`);
  return parts.join(" <- ");
}

const errorExamples = [];
function fail(err) {
  errors++;
  lastError = describe(err);
  if (errorExamples.length < 5) errorExamples.push(`${new Date().toISOString()} ${lastError}`);
}

function wrongAnswer(what) {
  wrong++;
  if (wrongExamples.length < 5) wrongExamples.push(what);
}

async function probe() {
  const rows = await replica.values("SELECT id, ts FROM events WHERE id > ? ORDER BY id", [
    lastSeen,
  ]);
  const now = Date.now();
  queries++;
  for (const [id, ts] of rows) {
    lags.push(now - Number(ts));
    lastSeen = Number(id);
  }
}

/** One workload query, checked. */
async function workloadQuery() {
  const pick = random();
  await replica.transaction(async (tx) => {
    const [[lo, hi]] = await tx.values("SELECT min(id), max(id) FROM events");
    queries++;
    const min = Number(lo);
    const max = Number(hi);
    if (pick < 0.45) {
      const id = randInt(min, max);
      const rows = await tx.values("SELECT id, kind, v, payload FROM events WHERE id = ?", [id]);
      queries++;
      const r = rows[0];
      if (!r || r[1] !== id % 16 || r[2] !== id % 1000 || r[3] !== payloadOf(id)) {
        wrongAnswer(`point ${id}: ${JSON.stringify(r ?? null).slice(0, 80)}`);
      }
    } else if (pick < 0.8) {
      const from = randInt(min, Math.max(min, max - 199));
      const to = Math.min(max, from + 199);
      const [[n, s]] = await tx.values(
        "SELECT count(*), sum(v) FROM events WHERE id BETWEEN ? AND ?",
        [from, to],
      );
      queries++;
      if (n !== to - from + 1 || s !== sumV(from, to)) {
        wrongAnswer(`range ${from}..${to}: count ${n} sum ${s}`);
      }
    } else if (pick < 0.97) {
      const kind = randInt(0, 15);
      const [[n, newest]] = await tx.values(
        "SELECT count(*), max(ts) FROM events WHERE kind = ? AND ts > ?",
        [kind, Date.now() - 30_000],
      );
      queries++;
      if (n > max - min + 1 || (n > 0 && newest === null)) {
        wrongAnswer(`kind ${kind}: ${n} rows, newest ${newest}`);
      }
    } else {
      const [[n, bytes]] = await tx.values("SELECT count(*), sum(length(payload)) FROM events");
      queries++;
      if (n !== max - min + 1 || !(bytes >= n * 160)) {
        wrongAnswer(`full count ${n} (ids ${min}..${max}), ${bytes} bytes`);
      }
    }
  });
}

async function probeLoop() {
  // Start from what is already there: only rows committed from now on give lag samples.
  const [[first]] = await replica.values("SELECT max(id) FROM events");
  lastSeen = Number(first ?? 0);
  while (!stopping) {
    const t = performance.now();
    try {
      await probe();
    } catch (err) {
      fail(err);
    }
    await sleep(Math.max(0, config.probeMs - (performance.now() - t)));
  }
}

async function workloadLoop() {
  const interval = config.qps > 0 ? 1000 / config.qps : 0;
  const t0 = performance.now();
  for (let i = 0; !stopping; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    else if (interval === 0) await new Promise((r) => setImmediate(r));
    const started = performance.now();
    try {
      await workloadQuery();
    } catch (err) {
      fail(err);
    }
    queryTimes.push(performance.now() - started);
  }
}

function sample(type = "sample") {
  const m = process.memoryUsage();
  const st = replica.status();
  const out = {
    type,
    at: Date.now(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    queries,
    errors,
    wrong,
    lastError: lastError ?? st.lastError?.message ?? null,
    wrongExamples,
    errorExamples,
    lags,
    queryTimes,
    txid: st.txid,
    lagSeconds: st.lagSeconds,
    cacheBytes: st.cache?.bytes ?? null,
    requests: Object.fromEntries(Object.entries(st.requests).map(([k, t]) => [k, t.requests])),
  };
  lags = [];
  queryTimes = [];
  return out;
}

const reporter = setInterval(() => process.send?.(sample()), 1000);
const loops = Promise.all([probeLoop(), workloadLoop()]);
process.on("message", async (msg) => {
  if (msg?.type !== "stop") return;
  stopping = true;
  clearInterval(reporter);
  await loops.catch(fail);
  const done = sample("done");
  await replica.close().catch(fail);
  process.send?.({ ...done, errors });
  setTimeout(() => process.exit(0), 50);
});
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "ready", txid: replica.status().txid });
