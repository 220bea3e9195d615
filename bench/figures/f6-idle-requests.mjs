/**
 * Figure 6: requests while idle, counted at the proxies over a window and
 * projected to an hour and a month (730 h): the writer (Replicator running,
 * no writes) and a replica polling every second in the background (no
 * queries). Monthly S3 request cost at AWS list prices (GET-class $0.0004 per
 * 1,000; PUT/COPY/POST/LIST $0.005 per 1,000), next to Litestream's
 * documented behaviour: 2 LIST/s per VFS connection and 8 LIST/min for an
 * idle writer.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { errorInfo, fmtNum, row, unavailableRow, verdict } from "../lib/figure-kit.mjs";
import { sleep } from "../lib/measure.mjs";
import { need } from "../lib/pagecast-api.mjs";

export const figure = {
  id: "6",
  title: "Requests per hour while idle, and monthly S3 request cost",
  goal: "writer 0; replica <= one conditional GET per poll and 0 LIST",
};

export const PRICES = { getPer1000: 0.0004, putListPer1000: 0.005 };
const HOURS_PER_MONTH = 730;

/** Monthly request cost from requests per hour by billing class. */
export function monthlyCost({ getPerHour, putPerHour }) {
  return (
    (getPerHour * HOURS_PER_MONTH * PRICES.getPer1000) / 1000 +
    (putPerHour * HOURS_PER_MONTH * PRICES.putListPer1000) / 1000
  );
}

export const LITESTREAM = {
  replicaListPerSecond: 2,
  writerListPerMinute: 8,
  source:
    "Litestream's documented behaviour as stated in issue 6 (2 LIST/s per VFS connection, 8 LIST/min writer)",
};

function perHour(summary, windowMs) {
  const f = 3_600_000 / windowMs;
  const list = summary.byKind.LIST?.requests ?? 0;
  return {
    requests: summary.requests * f,
    getPerHour: summary.billing.get * f,
    putPerHour: summary.billing.put * f,
    listPerHour: list * f,
  };
}

export async function run(ctx) {
  const windowMs = ctx.quick ? 8_000 : 60_000;
  const pollMs = 1000;
  const rows = [];
  const details = { windowMs, pollMs, prices: PRICES, litestream: LITESTREAM };
  const name = `idle-${Date.now()}`;
  const dbPath = join(ctx.scratch, `${name}.db`);
  const app = new Database(dbPath);
  app.pragma("journal_mode = WAL");
  app.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  app.prepare("INSERT INTO t(v) VALUES (?)").run("x");
  const writerStore = ctx.store("s3w", name);
  let rep;
  let replica;
  const ls = {
    replica: { listPerHour: LITESTREAM.replicaListPerSecond * 3600, getPerHour: 0 },
    writer: { listPerHour: LITESTREAM.writerListPerMinute * 60, getPerHour: 0 },
  };
  ls.replica.monthly = monthlyCost({ getPerHour: 0, putPerHour: ls.replica.listPerHour });
  ls.writer.monthly = monthlyCost({ getPerHour: 0, putPerHour: ls.writer.listPerHour });
  try {
    need(ctx.api, "Replicator", "openReplica", "S3Store");
    rep = await ctx.api.Replicator.start({ db: dbPath, store: writerStore, syncInterval: 1000 });
    replica = await ctx.api.openReplica({
      store: ctx.store("s3", name),
      wasm: ctx.wasm,
      closeStore: true,
      pollIntervalMs: pollMs,
      backgroundPollMs: pollMs,
    });
    await replica.query("SELECT count(*) FROM t");
    // Let start-up traffic settle, then count.
    await sleep(1500);
    await ctx.servers.reset("s3w");
    await ctx.servers.reset("s3");
    const before = replica.status().requests;
    await sleep(windowMs);
    const w = await ctx.servers.summary("s3w");
    const r = await ctx.servers.summary("s3");
    const after = replica.status().requests;
    const polls =
      after.poll.requests - before.poll.requests + (after.head.requests - before.head.requests);
    const writer = perHour(w, windowMs);
    const reader = perHour(r, windowMs);
    writer.monthly = monthlyCost(writer);
    reader.monthly = monthlyCost(reader);
    const expectedPolls = windowMs / pollMs;
    reader.requestsPerPoll = r.requests / Math.max(1, polls);
    reader.pollsCounted = polls;
    details.writer = { ...writer, window: w };
    details.replica = { ...reader, window: r, expectedPolls };
    details.litestreamProjection = ls;
    rows.push(
      row({
        fig: "6",
        label: "idle writer: requests/hour (monthly S3 cost)",
        pagecast: `${fmtNum(writer.requests)}/h ($${writer.monthly.toFixed(4)}/month)`,
        peer: `Litestream: ${fmtNum(ls.writer.listPerHour)} LIST/h ($${ls.writer.monthly.toFixed(2)}/month)`,
        goal: "0 requests",
        verdict: verdict(w.requests === 0),
        note: `counted ${w.requests} requests in ${windowMs / 1000} s`,
      }),
    );
    const list = r.byKind.LIST?.requests ?? 0;
    const conditional = r.byKind["GET conditional"]?.requests ?? 0;
    rows.push(
      row({
        fig: "6",
        label: `idle replica polling every ${pollMs / 1000} s: requests/hour (monthly cost)`,
        pagecast: `${fmtNum(reader.requests)}/h, ${fmtNum(reader.listPerHour)} LIST/h ($${reader.monthly.toFixed(2)}/month)`,
        peer: `Litestream VFS: ${fmtNum(ls.replica.listPerHour)} LIST/h ($${ls.replica.monthly.toFixed(2)}/month)`,
        ratio:
          reader.monthly > 0 ? `${(ls.replica.monthly / reader.monthly).toFixed(0)}x cheaper` : "",
        goal: "<= 1 conditional GET per poll, 0 LIST",
        verdict: verdict(list === 0 && r.requests <= polls && conditional <= polls),
        note: `${r.requests} requests (${conditional} conditional GETs, ${r.notModified} answered 304) for ${polls} polls in ${windowMs / 1000} s`,
      }),
    );
  } catch (err) {
    details.error = errorInfo(err);
    rows.push(unavailableRow("6", "idle requests", figure.goal, err));
  } finally {
    await replica?.close().catch(() => {});
    await rep?.close().catch(() => {});
    await writerStore.close().catch(() => {});
    app.close();
    for (const s of ["", "-wal", "-shm"]) rmSync(`${dbPath}${s}`, { force: true });
  }
  return { rows, details };
}
