/**
 * Soak writer (child process of bench/soak.mjs): an application on
 * better-sqlite3 committing at a steady rate, with a Replicator in the same
 * process publishing to the store. Every transaction inserts one `events` row
 * carrying its commit time (ms) and a payload derived from its id (so
 * replicas can check what they read), and once a second the oldest rows
 * beyond the kept window are deleted, so the database keeps a steady size.
 *
 * Reports a sample once a second over IPC: RSS, commits, the replicator's
 * position and counters, and errors (background sync/maintenance errors and
 * any thrown by the application's own statements).
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

import { rmSync } from "node:fs";
import Database from "better-sqlite3";
import { payloadOf } from "./soak-shared.mjs";

const config = JSON.parse(process.argv[2] ?? "{}");
const { Replicator, openNodeStore } = await import(
  new URL("../../dist/node.js", import.meta.url).href
);

for (const s of ["", "-wal", "-shm"]) rmSync(`${config.dbPath}${s}`, { force: true });
const app = new Database(config.dbPath);
app.pragma("journal_mode = WAL");
app.pragma("synchronous = NORMAL");
app.exec(`
  CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind INTEGER NOT NULL,
                       v INTEGER NOT NULL, payload TEXT NOT NULL);
  CREATE INDEX events_kind ON events (kind, ts);
`);
const insert = app.prepare("INSERT INTO events (id, ts, kind, v, payload) VALUES (?, ?, ?, ?, ?)");
const trim = app.prepare("DELETE FROM events WHERE id <= ?");
let nextId = 1;
function commitOne() {
  const id = nextId++;
  insert.run(id, Date.now(), id % 16, id % 1000, payloadOf(id));
}
// Start with the full window so the database size is steady from the start.
app.transaction(() => {
  for (let i = 0; i < config.keepRows; i++) commitOne();
})();

const store = await openNodeStore(
  config.url,
  config.credentials ? { credentials: config.credentials } : {},
);
let lastError = null;
const replicator = await Replicator.start({
  db: config.dbPath,
  store,
  syncInterval: config.syncMs,
  snapshotInterval: config.snapshotMs,
  retention: config.retentionMs,
  retentionGrace: config.retentionGraceMs,
  compaction: config.compaction,
  writerId: "soak-writer",
});
/** Capture -> published (ms) of each sync since the previous report. */
let publishTimes = [];
replicator.on("sync", (position) => publishTimes.push(Date.now() - position.timestamp));
replicator.on("error", (err) => {
  lastError = err instanceof Error ? `${err.message} [${err.code ?? ""}]` : String(err);
});

let appErrors = 0;
let commits = 0;
let stopping = false;
const intervalMs = 1000 / config.rate;
const t0 = performance.now();
let tick = 0;
let lastTrim = 0;

async function writeLoop() {
  while (!stopping) {
    // Steady rate without drift: commit i is due at t0 + i * interval.
    const due = t0 + tick * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    tick++;
    try {
      commitOne();
      commits++;
      const now = performance.now();
      if (now - lastTrim >= 1000) {
        lastTrim = now;
        trim.run(nextId - 1 - config.keepRows);
      }
    } catch (err) {
      appErrors++;
      lastError = err instanceof Error ? err.message : String(err);
    }
  }
}

function sample() {
  const m = process.memoryUsage();
  const st = replicator.stats();
  const published = publishTimes;
  publishTimes = [];
  return {
    publishTimes: published,
    type: "sample",
    at: Date.now(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    commits,
    lastId: nextId - 1,
    txid: st.txid,
    walBytes: st.walBytes,
    syncs: st.syncs,
    snapshots: st.snapshots,
    compactions: st.compactions,
    retentionDeletes: st.retentionDeletes,
    bytesUploaded: st.bytesUploaded,
    storeRequests: st.store.requests,
    storeRetries: st.store.retries,
    storeErrors: st.store.errors,
    // Background sync and maintenance errors (the replicator counts them) plus the app's own.
    errors: st.errors + appErrors,
    syncErrors: st.errors,
    appErrors,
    lastError: lastError ?? st.lastError,
  };
}

const reporter = setInterval(() => process.send?.(sample()), 1000);
process.on("message", async (msg) => {
  if (msg?.type !== "stop") return;
  stopping = true;
  clearInterval(reporter);
  await loop;
  let closeError = null;
  try {
    await replicator.close();
  } catch (err) {
    closeError = err instanceof Error ? err.message : String(err);
  }
  await store.close().catch(() => {});
  app.close();
  process.send?.({ ...sample(), type: "done", closeError });
  setTimeout(() => process.exit(0), 50);
});
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "ready", txid: replicator.position.txid });
const loop = writeLoop();
