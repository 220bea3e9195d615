/**
 * Figure 5: insert throughput of an application writing with better-sqlite3
 * (WAL, synchronous=NORMAL) with the Replicator running in the same process
 * (1 s sync interval), against the same application without it, for 1-row
 * and 1000-row transactions. The application yields to the event loop after
 * every transaction in both arms (as a server does between requests), which
 * is when the Replicator gets to run.
 */
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import Database from "better-sqlite3";
import { profileText, profileWhile } from "../lib/cpu-profile.mjs";
import {
  errorInfo,
  fmtMs,
  fmtNum,
  fmtRatio,
  row,
  safeRatio,
  unavailableRow,
  verdict,
} from "../lib/figure-kit.mjs";
import { median } from "../lib/measure.mjs";
import { need } from "../lib/pagecast-api.mjs";
import { prng } from "../lib/prng.mjs";

export const figure = {
  id: "5",
  title: "Writer insert throughput with the Replicator / without",
  goal: ">= 0.9 for 1-row and 1000-row transactions",
};

function seedDb(path) {
  for (const s of ["", "-wal", "-shm"]) rmSync(`${path}${s}`, { force: true });
  const db = new Database(path);
  db.pragma("page_size = 4096");
  db.pragma("journal_mode = WAL");
  db.exec(
    "CREATE TABLE log(id INTEGER PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL);" +
      "CREATE INDEX log_k ON log(k);",
  );
  const ins = db.prepare("INSERT INTO log(k, n, body) VALUES (?, ?, ?)");
  const rand = prng(5);
  db.transaction(() => {
    for (let i = 0; i < 20_000; i++) ins.run(rand().toString(36).slice(2, 12), i, "s".repeat(80));
  })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
}

async function arm(ctx, template, { rowsPerTx, withReplicator, durationMs, tag }) {
  const path = join(ctx.scratch, `writer-${tag}.db`);
  for (const s of ["", "-wal", "-shm"]) rmSync(`${path}${s}`, { force: true });
  copyFileSync(template, path);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  const ins = db.prepare("INSERT INTO log(k, n, body) VALUES (?, ?, ?)");
  const rand = prng(rowsPerTx + (withReplicator ? 1 : 0));
  const tx = db.transaction((n) => {
    for (let i = 0; i < n; i++) ins.run(rand().toString(36).slice(2, 12), i, "b".repeat(80));
  });
  let rep;
  let store;
  try {
    if (withReplicator) {
      store = ctx.store("s3w", `writer-${tag}-${Date.now()}`);
      rep = await ctx.api.Replicator.start({ db: path, store, syncInterval: 1000 });
    }
    let txs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < durationMs) {
      tx(rowsPerTx);
      txs++;
      await yieldToLoop();
    }
    const ms = performance.now() - t0;
    const out = { txs, rows: txs * rowsPerTx, ms, rowsPerSecond: (txs * rowsPerTx * 1000) / ms };
    if (rep) {
      const s0 = performance.now();
      await rep.sync();
      out.finalSyncMs = performance.now() - s0;
      const st = rep.stats();
      out.replicator = {
        syncs: st.syncs,
        publishedSyncs: st.publishedSyncs,
        snapshots: st.snapshots,
        continuityBreaks: st.continuityBreaks,
        compactions: st.compactions,
        checkpoints: st.checkpoints,
        walBytes: st.walBytes,
        bytesUploaded: st.bytesUploaded,
        requests: st.store?.requests,
        errors: st.errors,
        lastError: st.lastError,
      };
    }
    return out;
  } finally {
    await rep?.close().catch(() => {});
    await store?.close().catch(() => {});
    db.close();
    for (const s of ["", "-wal", "-shm"]) rmSync(`${path}${s}`, { force: true });
  }
}

export async function run(ctx) {
  // Short arms, alternated, so that drift in a shared machine's load hits both alike.
  const durationMs = ctx.quick ? 1000 : 4000;
  const rounds = ctx.quick ? 2 : 4;
  const delay = ctx.opts.throughputDelay;
  const template = join(ctx.scratch, "writer-template.db");
  seedDb(template);
  const rows = [];
  const details = { durationMs, rounds, delayMs: delay, sizes: {} };
  await ctx.servers.setDelay("s3w", delay);
  try {
    for (const rowsPerTx of [1, 1000]) {
      const label = `insert throughput, ${rowsPerTx}-row transactions`;
      const goal = "with / without >= 0.9";
      const sd = { without: [], with: [] };
      details.sizes[rowsPerTx] = sd;
      try {
        need(ctx.api, "Replicator", "S3Store");
        for (let r = 0; r < rounds; r++) {
          // Alternate the order so drift on a shared machine hits both arms.
          const order = r % 2 === 0 ? [false, true] : [true, false];
          for (const withReplicator of order) {
            const res = await arm(ctx, template, {
              rowsPerTx,
              withReplicator,
              durationMs,
              tag: `${rowsPerTx}-${withReplicator ? "with" : "without"}-${r}`,
            });
            sd[withReplicator ? "with" : "without"].push(res);
          }
        }
        // Where the time goes with the Replicator: a separate, profiled short arm.
        [, sd.profileWith] = await profileWhile(
          () =>
            arm(ctx, template, {
              rowsPerTx,
              withReplicator: true,
              durationMs: ctx.quick ? 1000 : 2000,
              tag: `${rowsPerTx}-prof`,
            }),
          12,
        );
        const w = median(sd.with.map((x) => x.rowsPerSecond));
        const wo = median(sd.without.map((x) => x.rowsPerSecond));
        const ratio = safeRatio(w, wo);
        rows.push(
          row({
            fig: "5",
            label,
            pagecast: `${fmtNum(w)} rows/s with the Replicator`,
            peer: `without: ${fmtNum(wo)} rows/s`,
            ratio: fmtRatio(ratio, 3),
            goal,
            verdict: verdict(ratio === null ? null : ratio >= 0.9),
            note:
              `final sync after the run: ${fmtMs(median(sd.with.map((x) => x.finalSyncMs)))}; ` +
              `profile with the Replicator: ${profileText(sd.profileWith, 6)}`,
          }),
        );
      } catch (err) {
        sd.error = errorInfo(err);
        rows.push(unavailableRow("5", label, goal, err));
      }
    }
  } finally {
    await ctx.servers.setDelay("s3w", ctx.opts.delay);
    rmSync(template, { force: true });
  }
  return { rows, details };
}
