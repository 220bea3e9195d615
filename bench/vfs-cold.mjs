#!/usr/bin/env node
/**
 * Cold open + point lookup: sequential round trips (the longest chain of
 * requests that waited on each other), requests, bytes and wall time, with a
 * fixed delay per storage request, counting the open.
 *
 *   npm run build && node bench/vfs-cold.mjs [--full] [--rows N] [--delay 20] [--trials 7]
 *
 * The database (table `users` with a rowid key and a secondary index on
 * `email`, VACUUMed, page size 4096; 200k rows by default, 1M rows and
 * >= 100 MB with --full) is published by pagecast's Replicator (snapshot, its
 * B-tree skeleton, head object) into an in-memory store. Every trial opens a
 * fresh replica (empty caches) through a store wrapper that delays each
 * request by `--delay` ms and records when each starts and ends, then runs one
 * lookup by a random key. Two heads are measured on the same objects: the
 * writer's (skeleton + page-1 location) and the same head without those
 * fields (what an older writer publishes). Lookup by index is reported for a
 * non-unique index (an equality scan may step to the next leaf to find the
 * end of the matches) and for a UNIQUE index on the same column.
 * Self-contained: imports only ../dist and better-sqlite3.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { prng } from "./lib/prng.mjs";

// PAGECAST_DIST: another build to measure (e.g. before/after a change).
const dist = process.env.PAGECAST_DIST
  ? pathToFileURL(`${process.env.PAGECAST_DIST.replace(/\/$/, "")}/`)
  : new URL("../dist/", import.meta.url);
const { openReplica, MemoryStore } = await import(new URL("index.node.js", dist).href);
const { Replicator } = await import(new URL("replicator/replicator.js", dist).href);
const { HEAD_OBJECT_KEY } = await import(new URL("layout/index.js", dist).href);

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`);
  return v;
}

const FULL = process.argv.includes("--full");
const ROWS = flag("rows", FULL ? 1_000_000 : 200_000);
const DELAY = flag("delay", 20);
const TRIALS = flag("trials", 7);

function email(id) {
  return `user${((id * 7919) % 1_000_003).toString(36)}-${id}@example.com`;
}

function buildDatabase(path) {
  const db = new Database(path);
  db.pragma("page_size = 4096");
  db.exec(
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, email_u TEXT NOT NULL, name TEXT, score INTEGER, bio TEXT);",
  );
  const ins = db.prepare("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)");
  const rnd = prng(7);
  db.transaction(() => {
    for (let id = 1; id <= ROWS; id++) {
      const r = Math.floor(rnd() * 1e9);
      ins.run(id, email(id), email(id), `name ${r % 9973}`, r % 100000, "b".repeat(20 + (r % 60)));
    }
  })();
  db.exec(
    "CREATE INDEX users_email ON users (email); CREATE UNIQUE INDEX users_email_u ON users (email_u); VACUUM;",
  );
  db.pragma("journal_mode = wal");
  db.close();
}

/** The writer's head without the fields an older writer does not publish. */
function stripHead(bytes) {
  const doc = JSON.parse(new TextDecoder().decode(bytes));
  delete doc.skeleton;
  delete doc.page1;
  return new TextEncoder().encode(JSON.stringify(doc));
}

/**
 * A store adding `delay` ms to every request and recording each one with
 * logical start/end ticks: a request depends on every request that ended
 * before it started, and the longest such chain is the number of sequential
 * round trips.
 */
class DelayedStore {
  calls = [];
  #tick = 0;
  constructor(inner, delayMs, { strip }) {
    this.inner = inner;
    this.delayMs = delayMs;
    this.strip = strip;
  }
  get url() {
    return this.inner.url;
  }
  async #timed(kind, key, fn) {
    const call = { kind, key, start: ++this.#tick, end: Infinity, bytes: 0 };
    this.calls.push(call);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      const res = await fn();
      call.bytes = res?.body?.byteLength ?? 0;
      return res;
    } finally {
      call.end = ++this.#tick;
    }
  }
  async get(key, options) {
    const res = await this.#timed("get", key, () => this.inner.get(key, options));
    if (this.strip && key === HEAD_OBJECT_KEY && !res.notModified) {
      return { ...res, body: stripHead(res.body) };
    }
    return res;
  }
  head(key, options) {
    return this.#timed("head", key, () => this.inner.head(key, options));
  }
  list(options) {
    return this.#timed("list", options?.prefix ?? "", () => this.inner.list(options));
  }
  put() {
    throw new Error("read-only");
  }
  deleteMany() {
    throw new Error("read-only");
  }
  counters() {
    return this.inner.counters();
  }
  async close() {}
  depth(calls = this.calls) {
    const sorted = [...calls].sort((a, b) => a.start - b.start);
    const depthOf = new Map();
    let max = 0;
    for (const c of sorted) {
      let d = 1;
      for (const p of sorted) if (p.end < c.start) d = Math.max(d, depthOf.get(p) + 1);
      depthOf.set(c, d);
      max = Math.max(max, d);
    }
    return max;
  }
}

async function trial(mem, strip, sql, key) {
  const store = new DelayedStore(mem, DELAY, { strip });
  const t0 = performance.now();
  const replica = await openReplica({ store, closeStore: false });
  const tOpen = performance.now();
  const openCalls = store.calls.length;
  const openDepth = store.depth();
  const rows = await replica.values(sql, [key]);
  const tDone = performance.now();
  // Only requests the lookup waited on: background prefetches started by the
  // open or the query may still be in flight; they are counted, not awaited.
  const done = store.calls.filter((c) => c.end !== Infinity);
  const result = {
    rows: rows.length,
    roundTrips: store.depth(done),
    openRoundTrips: openDepth,
    requests: store.calls.length,
    openRequests: openCalls,
    bytes: store.calls.reduce((n, c) => n + c.bytes, 0),
    openMs: tOpen - t0,
    totalMs: tDone - t0,
  };
  await replica.close();
  return result;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const dir = mkdtempSync(join(os.tmpdir(), "pagecast-vfs-cold-"));
try {
  const path = join(dir, "bench.db");
  const tBuild = performance.now();
  buildDatabase(path);
  const dbBytes = statSync(path).size;
  const mem = new MemoryStore();
  const replicator = await Replicator.start({ db: path, store: mem, syncInterval: 0 });
  await replicator.close();
  const setupMs = performance.now() - tBuild;

  const head = JSON.parse(new TextDecoder().decode((await mem.get(HEAD_OBJECT_KEY)).body));
  const rnd = prng(99);
  const ids = Array.from({ length: TRIALS }, () => 1 + Math.floor(rnd() * ROWS));
  const lookups = [
    { label: "by rowid", sql: "SELECT * FROM users WHERE id = ?", key: (id) => id },
    { label: "by index", sql: "SELECT * FROM users WHERE email = ?", key: (id) => email(id) },
    {
      label: "by unique index",
      sql: "SELECT * FROM users WHERE email_u = ?",
      key: (id) => email(id),
    },
  ];
  const results = [];
  for (const variant of [
    { label: "writer head (skeleton)", strip: false },
    { label: "head without skeleton", strip: true },
  ]) {
    for (const q of lookups) {
      const runs = [];
      try {
        for (const id of ids) runs.push(await trial(mem, variant.strip, q.sql, q.key(id)));
      } catch (err) {
        // E.g. a reader older than the head's optional fields (PAGECAST_DIST).
        results.push({
          variant: variant.label,
          lookup: q.label,
          error: String(err?.message ?? err),
        });
        continue;
      }
      if (runs.some((r) => r.rows !== 1)) throw new Error(`${q.label}: a lookup missed its row`);
      results.push({
        variant: variant.label,
        lookup: q.label,
        roundTrips: {
          median: median(runs.map((r) => r.roundTrips)),
          max: Math.max(...runs.map((r) => r.roundTrips)),
          min: Math.min(...runs.map((r) => r.roundTrips)),
        },
        openRoundTrips: median(runs.map((r) => r.openRoundTrips)),
        requests: median(runs.map((r) => r.requests)),
        bytes: median(runs.map((r) => r.bytes)),
        ms: median(runs.map((r) => r.totalMs)),
        runs,
      });
    }
  }

  console.log(
    `vfs-cold: ${ROWS.toLocaleString("en-US")} rows, ${(dbBytes / 1048576).toFixed(1)} MiB, ` +
      `skeleton ${head.skeleton ? `${(head.skeleton.size / 1024).toFixed(0)} KiB` : "none"}, ` +
      `${DELAY} ms per request, ${TRIALS} random keys per lookup, node ${process.version}, ` +
      `${os.cpus().length} cores (setup ${(setupMs / 1000).toFixed(1)} s)`,
  );
  console.log(
    "head                    | lookup          | round trips incl. open (median [min-max]) | open | requests | KiB   | ms",
  );
  for (const r of results) {
    if (r.error) {
      console.log(
        `${r.variant.padEnd(23)} | ${r.lookup.padEnd(15)} | failed: ${r.error.slice(0, 80)}`,
      );
      continue;
    }
    const rt = `${r.roundTrips.median} [${r.roundTrips.min}-${r.roundTrips.max}]`;
    console.log(
      `${r.variant.padEnd(23)} | ${r.lookup.padEnd(15)} | ${rt.padEnd(41)} | ${String(r.openRoundTrips).padStart(4)} | ${String(r.requests).padStart(8)} | ${(r.bytes / 1024).toFixed(0).padStart(5)} | ${r.ms.toFixed(0)}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: "vfs-cold",
      rows: ROWS,
      bytes: dbBytes,
      delayMs: DELAY,
      skeletonBytes: head.skeleton?.size ?? null,
      results: results.map(({ runs, ...r }) => r),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
