/**
 * Figure 4: replication lag, from a commit on the primary (better-sqlite3,
 * WAL) to the first read on a polling replica that sees it. The Replicator
 * runs in this process with its sync interval; the replica polls in the
 * background and lazily at its poll interval; an observer queries the
 * replica every ~2 ms. Commits come at random phases. Both proxies add the
 * run's per-request delay.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { errorInfo, fmtMs, row, unavailableRow, verdict } from "../lib/figure-kit.mjs";
import { median, percentile, sleep } from "../lib/measure.mjs";
import { need } from "../lib/pagecast-api.mjs";
import { prng } from "../lib/prng.mjs";

export const figure = {
  id: "4",
  title: "Replication lag (commit on primary -> visible on a polling replica)",
  goal: "p99 <= 2.2 s at 1 s sync + 1 s poll; p99 <= 0.4 s at 100 ms + 100 ms",
};

async function measureConfig(ctx, cfg, samples) {
  const name = `lag-${cfg.syncMs}-${Date.now()}`;
  const dbPath = join(ctx.scratch, `${name}.db`);
  for (const s of ["", "-wal", "-shm"]) rmSync(`${dbPath}${s}`, { force: true });
  const app = new Database(dbPath);
  app.pragma("journal_mode = WAL");
  app.pragma("synchronous = NORMAL");
  app.exec("CREATE TABLE events(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, pad TEXT NOT NULL)");
  const ins = app.prepare("INSERT INTO events(t, pad) VALUES (?, ?)");
  for (let i = 0; i < 100; i++) ins.run(Date.now(), "x".repeat(100));
  const writerStore = ctx.store("s3w", name);
  let rep;
  let replica;
  const lags = [];
  let timeouts = 0;
  try {
    rep = await ctx.api.Replicator.start({
      db: dbPath,
      store: writerStore,
      syncInterval: cfg.syncMs,
    });
    replica = await ctx.api.openReplica({
      store: ctx.store("s3", name),
      wasm: ctx.wasm,
      closeStore: true,
      pollIntervalMs: cfg.pollMs,
      backgroundPollMs: cfg.pollMs,
    });
    const rand = prng(cfg.syncMs);
    const before = replica.status().requests;
    for (let i = 0; i < samples; i++) {
      await sleep(rand() * (cfg.syncMs + cfg.pollMs));
      const id = Number(ins.run(Date.now(), "y".repeat(100)).lastInsertRowid);
      const t0 = performance.now();
      for (;;) {
        const rows = await replica.values("SELECT max(id) FROM events");
        if (Number(rows[0]?.[0]) >= id) {
          lags.push(performance.now() - t0);
          break;
        }
        if (performance.now() - t0 > 15_000) {
          timeouts++;
          break;
        }
        await sleep(2);
      }
    }
    const after = replica.status().requests;
    const requests = Object.fromEntries(
      Object.keys(after).map((k) => [k, after[k].requests - (before[k]?.requests ?? 0)]),
    );
    return {
      ...cfg,
      samples: lags.length,
      timeouts,
      p50: percentile(lags, 50),
      p99: percentile(lags, 99),
      max: Math.max(...lags),
      median: median(lags),
      lags: lags.map((x) => Math.round(x)),
      replicaRequests: requests,
      writer: rep.stats(),
    };
  } finally {
    await replica?.close().catch(() => {});
    await rep?.close().catch(() => {});
    await writerStore.close().catch(() => {});
    app.close();
    for (const s of ["", "-wal", "-shm"]) rmSync(`${dbPath}${s}`, { force: true });
  }
}

export async function run(ctx) {
  const configs = [
    { syncMs: 1000, pollMs: 1000, goalP99: 2200 },
    { syncMs: 100, pollMs: 100, goalP99: 400 },
  ];
  const samples = ctx.quick ? [5, 12] : [60, 200];
  const rows = [];
  const details = { delayMs: ctx.servers.delay("s3"), configs: [] };
  for (const [i, cfg] of configs.entries()) {
    const label = `lag at ${cfg.syncMs} ms sync + ${cfg.pollMs} ms poll`;
    const goal = `p99 <= ${fmtMs(cfg.goalP99)}`;
    try {
      need(ctx.api, "Replicator", "openReplica", "S3Store");
      const r = await measureConfig(ctx, cfg, samples[i]);
      details.configs.push(r);
      rows.push(
        row({
          fig: "4",
          label,
          pagecast: `p50 ${fmtMs(r.p50)}, p99 ${fmtMs(r.p99)} (n=${r.samples}${r.timeouts ? `, ${r.timeouts} timeouts` : ""})`,
          peer: "",
          goal,
          verdict: r.timeouts > 0 ? "missed" : verdict(r.p99 <= cfg.goalP99),
          note: `p99 of n=${r.samples} is the ${r.samples < 100 ? "maximum" : "99th percentile"}`,
        }),
      );
    } catch (err) {
      details.configs.push({ ...cfg, error: errorInfo(err) });
      rows.push(unavailableRow("4", label, goal, err));
    }
  }
  return { rows, details };
}
