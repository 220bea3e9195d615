/**
 * Figure 1: cold open + one point lookup (by rowid / through the sku index),
 * counting the open: sequential round trips, requests, bytes, wall time.
 * Peers: sql.js-httpvfs (new worker per sample), restore + better-sqlite3,
 * better-sqlite3 on the local file.
 */
import { httpvfsCold, localQuery, pagecastCold, restoreThenQuery } from "../lib/engines.mjs";
import {
  errorInfo,
  fewerText,
  fmtBytes,
  fmtMs,
  row,
  unavailableRow,
  verdict,
} from "../lib/figure-kit.mjs";
import { canonical, median, rtStats, rtText, wavesText } from "../lib/measure.mjs";
import { need } from "../lib/pagecast-api.mjs";
import { POINT_QUERIES, pointParams, randomIds } from "../lib/workload.mjs";

export const figure = {
  id: "1",
  title: "Cold open + point lookup",
  goal: "<= 3 round trips by rowid, <= 4 through an index (open included); fewer than sql.js-httpvfs",
};

const GOAL_RT = { rowid: 3, index: 4 };

function summarize(samples) {
  return {
    samples: samples.length,
    roundTrips: rtStats(samples.map((s) => s.roundTrips)),
    openRoundTrips: rtStats(samples.map((s) => s.at?.open?.roundTrips)),
    requests: median(samples.map((s) => s.requests)),
    requestsAfter: median(samples.map((s) => s.requestsAfter ?? 0)),
    bytesDown: median(samples.map((s) => s.bytesDown)),
    ms: median(samples.map((s) => s.ms)),
    openMs: median(samples.map((s) => s.at?.open?.ms)),
  };
}

function text(s) {
  if (!s) return "n/a";
  const open = s.openRoundTrips.min === null ? "" : ` (open ${s.openRoundTrips.min})`;
  return `${rtText(s.roundTrips)}${open}, ${s.requests} req, ${fmtBytes(s.bytesDown)}, ${fmtMs(s.ms)}`;
}

export async function run(ctx) {
  const reps = ctx.quick ? 2 : 5;
  const rows = [];
  const details = { reps, delayMs: ctx.servers.delay("s3"), datasets: {} };
  for (const ds of ctx.datasetList()) {
    const dd = { queries: {} };
    details.datasets[ds.key] = dd;
    const ids = randomIds(ctx.params, reps, ds.key === "fresh" ? 11 : 12);
    for (const [kind, q] of Object.entries(POINT_QUERIES)) {
      const qd = { sql: q.sql, engines: {}, mismatches: [] };
      dd.queries[kind] = qd;
      const expected = ids.map((id) =>
        canonical(
          localQuery(ds.path, [{ sql: q.sql, params: pointParams(kind, id, ctx.params) }])
            .result[0],
        ),
      );
      const run1 = async (engine, fn) => {
        const samples = [];
        try {
          for (let i = 0; i < reps; i++) {
            const m = await fn(ids[i]);
            const got = canonical(m.result[0]);
            if (got !== expected[i])
              qd.mismatches.push({ engine, id: ids[i], got: got.slice(0, 200) });
            delete m.result;
            // The request waves of the first sample are evidence enough; keep the JSON small.
            if (samples.length > 0) delete m.waves;
            samples.push(m);
          }
          qd.engines[engine] = { ...summarize(samples), raw: samples };
        } catch (err) {
          qd.engines[engine] = { error: errorInfo(err) };
        }
        return qd.engines[engine];
      };
      const queries = (id) => [{ sql: q.sql, params: pointParams(kind, id, ctx.params) }];
      let pc;
      try {
        need(ctx.api, "openReplica", "S3Store");
        pc = await run1("pagecast", (id) => pagecastCold(ctx, ds.prefix, queries(id)));
      } catch (err) {
        pc = { error: errorInfo(err) };
        qd.engines.pagecast = pc;
      }
      const hv = await run1("sql.js-httpvfs", (id) => httpvfsCold(ctx, ds.url, queries(id)));
      await run1("better-sqlite3 local", async (id) => localQuery(ds.path, queries(id)));

      const label = `cold ${q.label}, ${ds.label}`;
      const goal = `<= ${GOAL_RT[kind]} RT and fewer than sql.js-httpvfs`;
      if (pc.error) {
        rows.push(unavailableRow("1", label, goal, pc.error));
        continue;
      }
      const pcRt = pc.roundTrips.min;
      const hvRt = hv.error ? null : hv.roundTrips.min;
      const ok = pcRt <= GOAL_RT[kind] && (hvRt === null ? null : pcRt < hvRt);
      rows.push(
        row({
          fig: "1",
          label,
          pagecast: text(pc),
          peer: hv.error
            ? `sql.js-httpvfs: failed (${hv.error.message})`
            : `sql.js-httpvfs: ${text(hv)}`,
          ratio: hvRt === null ? "" : fewerText(hvRt, pcRt),
          goal,
          verdict: qd.mismatches.some((m) => m.engine === "pagecast") ? "missed" : verdict(ok),
          note: `${
            qd.mismatches.length > 0
              ? `WRONG RESULTS: ${JSON.stringify(qd.mismatches).slice(0, 300)}. `
              : ""
          }pagecast waves (1st sample): ${wavesText(pc.raw[0]?.waves)}`,
        }),
      );
    }
    // The full-download peer: one restore per dataset, then both lookups locally.
    try {
      need(ctx.api, "restore", "S3Store");
      const id = ids[0];
      const m = await restoreThenQuery(
        ctx,
        ds.prefix,
        Object.keys(POINT_QUERIES).map((kind) => ({
          sql: POINT_QUERIES[kind].sql,
          params: pointParams(kind, id, ctx.params),
        })),
      );
      delete m.result;
      dd.restorePeer = m;
      rows.push(
        row({
          fig: "1",
          label: `cold lookups after full download (restore + better-sqlite3), ${ds.label}`,
          pagecast: `restore: ${m.at.open.roundTrips} RT, ${m.requests} req, ${fmtBytes(m.bytesDown)}, ${fmtMs(m.ms)}`,
          peer: "(this row is the full-download peer)",
          verdict: "info",
        }),
      );
    } catch (err) {
      dd.restorePeer = { error: errorInfo(err) };
      rows.push(unavailableRow("1", `full download peer, ${ds.label}`, "", err));
    }
  }
  return { rows, details };
}
