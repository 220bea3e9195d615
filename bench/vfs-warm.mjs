#!/usr/bin/env node
/**
 * Warm point lookups per second: a pagecast replica whose pages are all
 * cached vs better-sqlite3 on a local file holding the same bytes, in one run.
 *
 *   npm run build && node bench/vfs-warm.mjs [--rows 200000] [--seconds 1] [--rounds 5] [--keys 2000]
 *
 * The database (rowid table + secondary index, VACUUMed, page size 4096) is
 * built with better-sqlite3, published as a level-9 snapshot plus head object
 * into an in-memory store, and opened with `openReplica`. Each lookup runs one
 * query through the public API (`replica.values`, rows as arrays) with a bound
 * key, one at a time; better-sqlite3 runs the same SQL through a statement
 * prepared once (`.raw().get()`, rows as arrays; `.get()` objects shown too).
 * Keys are random and every key is looked up once before timing (warm).
 * The engines alternate for `--rounds` rounds of `--seconds` each (shared
 * machines drift); the table shows medians and the median per-round ratio.
 * `xRead/lookup` counts page reads that reached the VFS (cache hits + misses).
 * Self-contained: imports only ../dist and better-sqlite3.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { prng } from "./lib/prng.mjs";

// PAGECAST_DIST: another build to measure (e.g. before/after a change).
const dist = process.env.PAGECAST_DIST
  ? pathToFileURL(`${process.env.PAGECAST_DIST.replace(/\/$/, "")}/`)
  : new URL("../dist/", import.meta.url);
const pagecast = await import(new URL("index.node.js", dist).href);
const { openReplica, MemoryStore, LtxEncoder, HEADER_FLAG_NO_CHECKSUM, ltxKey, lockPgno } =
  pagecast;
const { serializeHeadObject, HEAD_OBJECT_KEY } = await import(
  new URL("layout/index.js", dist).href
);

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const ROWS = flag("rows", 200_000);
const SECONDS = flag("seconds", 1);
const ROUNDS = flag("rounds", 5);
const KEYS = flag("keys", 2000);
const PAGE_SIZE = 4096;

function buildDatabase(path) {
  const db = new Database(path);
  db.pragma(`page_size = ${PAGE_SIZE}`);
  db.exec(
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, score INTEGER, bio TEXT);",
  );
  const ins = db.prepare("INSERT INTO users (id, email, name, score, bio) VALUES (?, ?, ?, ?, ?)");
  const rnd = prng(7);
  db.transaction(() => {
    for (let id = 1; id <= ROWS; id++) {
      const r = Math.floor(rnd() * 1e9);
      ins.run(
        id,
        `user${r.toString(36)}-${id}@example.com`,
        `name ${r % 9973}`,
        r % 100000,
        "b".repeat(40 + (r % 80)),
      );
    }
  })();
  db.exec("CREATE INDEX users_email ON users (email); VACUUM;");
  db.close();
}

/** Publishes the file as one level-9 snapshot + head object (what a pagecast writer leaves). */
async function publish(store, bytes) {
  const commit = bytes.length / PAGE_SIZE;
  const timestamp = Date.now();
  const enc = new LtxEncoder({
    flags: HEADER_FLAG_NO_CHECKSUM,
    pageSize: PAGE_SIZE,
    commit,
    minTXID: 1,
    maxTXID: 1,
    timestamp,
  });
  const chunks = [enc.headerBytes()];
  const lock = lockPgno(PAGE_SIZE);
  for (let pgno = 1; pgno <= commit; pgno++) {
    if (pgno === lock) continue;
    chunks.push(enc.encodePage(pgno, bytes.subarray((pgno - 1) * PAGE_SIZE, pgno * PAGE_SIZE)));
  }
  const beforeTail = enc.bytesWritten;
  chunks.push(enc.finish(0n));
  const size = enc.bytesWritten;
  const body = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    body.set(c, off);
    off += c.length;
  }
  const key = ltxKey(9, 1, 1);
  await store.put(key, body);
  const indexOffset = beforeTail + 6;
  await store.put(
    HEAD_OBJECT_KEY,
    serializeHeadObject({
      format: "pagecast-head",
      version: 1,
      writerId: "bench",
      generation: "bench",
      txid: 1,
      timestamp,
      pageSize: PAGE_SIZE,
      commit,
      postApplyChecksum: null,
      files: [
        {
          level: 9,
          minTXID: 1,
          maxTXID: 1,
          key,
          size,
          indexOffset,
          indexSize: size - 16 - indexOffset,
          timestamp,
        },
      ],
    }),
  );
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function loopAsync(keys, fn) {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let t = t0;
  while (t < end) {
    for (let i = 0; i < 64; i++) await fn(keys[(n + i) % keys.length]);
    n += 64;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

function loopSync(keys, fn) {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let t = t0;
  while (t < end) {
    for (let i = 0; i < 256; i++) fn(keys[(n + i) % keys.length]);
    n += 256;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

function fmt(n) {
  return Math.round(n).toLocaleString("en-US");
}

const dir = mkdtempSync(join(tmpdir(), "pagecast-vfs-warm-"));
try {
  const path = join(dir, "bench.db");
  buildDatabase(path);
  const bytes = new Uint8Array(readFileSync(path));
  const store = new MemoryStore();
  await publish(store, bytes);

  const rnd = prng(42);
  const ids = Array.from({ length: KEYS }, () => 1 + Math.floor(rnd() * ROWS));
  const local = new Database(path, { readonly: true });
  const emails = ids.map((id) =>
    local.prepare("SELECT email FROM users WHERE id = ?").pluck().get(id),
  );
  const queries = [
    { label: "by rowid", sql: "SELECT id, email, name, score FROM users WHERE id = ?", keys: ids },
    {
      label: "by secondary index",
      sql: "SELECT id, email, name, score FROM users WHERE email = ?",
      keys: emails,
    },
  ];

  const replica = await openReplica({
    store,
    cacheBytes: Math.max(64 * 1024 * 1024, bytes.length * 2),
    closeStore: true,
  });
  const results = [];
  for (const q of queries) {
    const stmt = local.prepare(q.sql);
    const raw = local.prepare(q.sql).raw(true);
    for (const k of q.keys) {
      const a = await replica.values(q.sql, [k]);
      const b = raw.get(k);
      if (JSON.stringify(a[0]) !== JSON.stringify(b)) throw new Error(`mismatch for ${k}`);
    }
    const before = replica.status();
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) {
      const replicaRate = await loopAsync(q.keys, (k) => replica.values(q.sql, [k]));
      const rawRate = loopSync(q.keys, (k) => raw.get(k));
      const objRate = loopSync(q.keys, (k) => stmt.get(k));
      rounds.push({ replicaRate, rawRate, objRate, ratio: replicaRate / rawRate });
    }
    const after = replica.status();
    const lookups = rounds.reduce((n, r) => n + r.replicaRate * SECONDS, 0);
    const reads = after.cache.hits + after.cache.misses - (before.cache.hits + before.cache.misses);
    results.push({
      query: q.label,
      replicaPerSecond: median(rounds.map((r) => r.replicaRate)),
      betterSqliteRawPerSecond: median(rounds.map((r) => r.rawRate)),
      betterSqliteObjectsPerSecond: median(rounds.map((r) => r.objRate)),
      ratio: median(rounds.map((r) => r.ratio)),
      vfsReadsPerLookup: reads / Math.max(1, lookups),
      cacheMissesDuringLoop: after.cache.misses - before.cache.misses,
      pageRequestsDuringLoop: after.requests.page.requests - before.requests.page.requests,
      rounds,
    });
  }
  await replica.close();
  local.close();

  console.log(
    `vfs-warm: ${ROWS.toLocaleString("en-US")} rows, ${(bytes.length / 1048576).toFixed(1)} MiB, ` +
      `${KEYS} random keys, ${ROUNDS} rounds of ${SECONDS} s per engine, node ${process.version}, ` +
      `${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`,
  );
  console.log(
    "query               | replica/s | better-sqlite3 raw/s | (objects/s) | ratio (median) | xRead/lookup",
  );
  for (const r of results) {
    console.log(
      `${r.query.padEnd(19)} | ${fmt(r.replicaPerSecond).padStart(9)} | ${fmt(r.betterSqliteRawPerSecond).padStart(20)} | ${fmt(r.betterSqliteObjectsPerSecond).padStart(11)} | ${r.ratio.toFixed(3).padStart(14)} | ${r.vfsReadsPerLookup.toFixed(2)}`,
    );
  }
  console.log(JSON.stringify({ bench: "vfs-warm", rows: ROWS, bytes: bytes.length, results }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
