#!/usr/bin/env node
/**
 * Cost of the writer's divergence check (issue 11), on a database of
 * `--mb` MiB (default 100; messy: random rows, an index, deletions never
 * VACUUMed): a replicator runs on it (file store) while this measures
 *   - one rolling step (`verifyPages` pages, default 256 = 1 MiB), in ms;
 *   - a full pass over the database (the steps of one pass back to back), in ms;
 *   - a restart's resume check (reads and checksums the whole database once).
 *
 *   npm run build && node bench/divergence-check.mjs [--mb 100] [--pages 256]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";

const { values } = parseArgs({
  options: { mb: { type: "string", default: "100" }, pages: { type: "string", default: "256" } },
});
const mb = Number(values.mb);
const stepPages = Number(values.pages);
const dist = new URL("../dist/", import.meta.url).pathname;
const { Replicator } = await import(`${dist}replicator/replicator.js`);
const { RollingVerifier } = await import(`${dist}replicator/verifier.js`);
const { FileStore } = await import(`${dist}storage/file-store.js`);

const dir = mkdtempSync(join(tmpdir(), "pagecast-divergence-bench-"));
try {
  const path = join(dir, "app.db");
  // Built fast (no journal, no fsync), then switched to WAL like an application's file.
  const gen = new Database(path);
  gen.pragma("journal_mode = OFF");
  gen.pragma("synchronous = OFF");
  gen.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v BLOB); CREATE INDEX t_k ON t (k)");
  const insert = gen.prepare("INSERT INTO t (k, v) VALUES (hex(randomblob(8)), randomblob(?))");
  let id = 0;
  let round = 0;
  while (statSync(path).size < mb * 1024 * 1024) {
    gen.transaction(() => {
      for (let i = 0; i < 20_000; i++, id++) insert.run(200 + ((id * 7919) % 1800));
    })();
    gen.prepare("DELETE FROM t WHERE id % 17 = ?").run(round++ % 17);
  }
  gen.close();
  const app = new Database(path);
  app.pragma("journal_mode = WAL");
  const size = statSync(path).size;
  const store = new FileStore({ root: join(dir, "replica") });

  let t = performance.now();
  const first = await Replicator.start({ db: path, store, syncInterval: 0, compaction: false });
  const snapshotMs = performance.now() - t;
  await first.close();
  t = performance.now();
  const r = await Replicator.start({ db: path, store, syncInterval: 0, compaction: false });
  const resumeMs = performance.now() - t;
  const s = r.stats();
  // The rolling check, run here step by step against the replicator's own files.
  const { DatabaseFiles } = await import(`${dist}replicator/database-files.js`);
  const files = DatabaseFiles.open(path, 100);
  const { PageChecksums } = await import(`${dist}replicator/page-checksums.js`);
  const { pageChecksumInto } = await import(`${dist}format/checksum.js`);
  const { readDbPages } = await import(`${dist}replicator/database-file.js`);
  const pageSize = files.pageSize;
  const commit = Math.floor(size / pageSize);
  // Expected checksums = the file's own (what a replica in sync holds).
  const sums = new PageChecksums();
  sums.reset(pageSize);
  const pair = new Uint32Array(2);
  for (let p = 1; p <= commit; p += 256) {
    const n = Math.min(256, commit - p + 1);
    const buf = readDbPages(files.db, pageSize, p, n);
    for (let i = 0; i < n; i++) {
      pageChecksumInto(p + i, buf.subarray(i * pageSize, (i + 1) * pageSize), pair);
      sums.setChecksum(p + i, pair[0], pair[1]);
    }
  }
  const verifier = new RollingVerifier();
  const input = {
    db: files.db,
    wal: files.wal,
    walPages: new Map(),
    salts: { salt1: 0, salt2: 0 },
    pageSize,
    commit,
    checksums: sums,
  };
  const steps = [];
  t = performance.now();
  while (verifier.passes === 0) {
    const s0 = performance.now();
    const bad = verifier.step(input, stepPages);
    steps.push(performance.now() - s0);
    if (bad !== undefined) throw new Error(`unexpected mismatch at page ${bad}`);
  }
  const passMs = performance.now() - t;
  steps.sort((a, b) => a - b);
  files.close();
  await r.close();
  app.close();
  const median = steps[Math.floor(steps.length / 2)];
  console.log(
    JSON.stringify(
      {
        databaseMiB: +(size / 1048576).toFixed(1),
        pages: commit,
        pageSize,
        firstStartWithSnapshotMs: Math.round(snapshotMs),
        restartWithResumeCheckMs: Math.round(resumeMs),
        resumedWithoutSnapshot: s.snapshots === 0,
        rollingStep: {
          pages: stepPages,
          medianMs: +median.toFixed(2),
          maxMs: +steps[steps.length - 1].toFixed(2),
        },
        fullPass: { steps: steps.length, ms: Math.round(passMs) },
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
