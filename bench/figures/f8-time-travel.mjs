/**
 * Figure 8: time-travel open (a replica pinned at a past TXID) after a short
 * and a long simulated history (see history-layout.mjs): round trips and
 * time of the open and of a first query. The goal is that they do not grow
 * with history length. Peer: restore at the same TXID (a full download).
 * Targets are TXIDs: the emulator stamps objects with upload times, so a
 * time target would not be meaningful on a simulated history.
 */
import { pagecastCold, restoreThenQuery } from "../lib/engines.mjs";
import { errorInfo, fmtBytes, fmtMs, row, unavailableRow, verdict } from "../lib/figure-kit.mjs";
import { writeHistoryLayout } from "../lib/history-layout.mjs";
import { median, min } from "../lib/measure.mjs";
import { need } from "../lib/pagecast-api.mjs";

export const figure = {
  id: "8",
  title: "Time-travel open after a long history (many L0/L1/L2/L3 files)",
  goal: "round trips and time independent of history length",
};

const QUERY = { sql: "SELECT count(*) AS n FROM users", params: [] };

function med(samples, f) {
  return median(samples.map(f));
}

export async function run(ctx) {
  const lengths = ctx.quick ? [1, 4] : [1, 24];
  const reps = ctx.quick ? 3 : 5;
  const rows = [];
  const details = { delayMs: ctx.servers.delay("s3"), histories: [] };
  const base = ctx.timeTravelBase();
  try {
    need(ctx.api, "openReplica", "S3Store", "LtxEncoder", "ltxKey", "restore");
    for (const hours of lengths) {
      const prefix = `history-${hours}h-${Date.now()}`;
      const store = ctx.store("direct", prefix);
      const t0 = performance.now();
      let layout;
      try {
        layout = await writeHistoryLayout(ctx.api, store, { basePath: base.path, hours });
      } finally {
        await store.close();
      }
      const h = { hours, prefix, layout, writeSeconds: (performance.now() - t0) / 1000 };
      details.histories.push(h);
      const pinned = [];
      const latest = [];
      for (let i = 0; i < reps; i++) {
        const m = await pagecastCold(ctx, prefix, [QUERY], { at: { txid: layout.pastTxid } });
        delete m.result;
        pinned.push(m);
        const l = await pagecastCold(ctx, prefix, [QUERY]);
        delete l.result;
        latest.push(l);
      }
      const restorePeer = await restoreThenQuery(ctx, prefix, [QUERY], {
        txid: layout.pastTxid,
      }).catch((err) => ({
        error: errorInfo(err),
      }));
      delete restorePeer.result;
      h.pinned = {
        openRoundTrips: min(pinned.map((s) => s.at.open.roundTrips)),
        openRoundTripsMax: Math.max(...pinned.map((s) => s.at.open.roundTrips)),
        openMs: med(pinned, (s) => s.at.open.ms),
        openRequests: med(pinned, (s) => s.at.open.requests),
        roundTrips: min(pinned.map((s) => s.roundTrips)),
        requests: med(pinned, (s) => s.requests),
        bytesDown: med(pinned, (s) => s.bytesDown),
        ms: med(pinned, (s) => s.ms),
        byKind: pinned[0]?.byKind,
        raw: pinned,
      };
      h.latest = {
        openRoundTrips: min(latest.map((s) => s.at.open.roundTrips)),
        openMs: med(latest, (s) => s.at.open.ms),
        roundTrips: min(latest.map((s) => s.roundTrips)),
        ms: med(latest, (s) => s.ms),
        byKind: latest[0]?.byKind,
      };
      h.restorePeer = restorePeer;
      await ctx.dropPrefix(prefix);
    }
    const [short, long] = details.histories;
    const desc = (h) =>
      `${h.hours} h (${h.layout.files} files): open ${h.pinned.openRoundTrips} RT / ${h.pinned.openRequests} req / ${fmtMs(h.pinned.openMs)}, +query ${h.pinned.roundTrips} RT / ${fmtMs(h.pinned.ms)}`;
    const restoreDesc = (h) =>
      h.restorePeer.error
        ? `restore failed (${h.restorePeer.error.message})`
        : `restore at the TXID: ${h.restorePeer.roundTrips} RT, ${fmtBytes(h.restorePeer.bytesDown)}, ${fmtMs(h.restorePeer.ms)}`;
    rows.push(
      row({
        fig: "8",
        label: `time-travel open (pinned TXID) after ${long.hours} h vs ${short.hours} h of history`,
        pagecast: desc(long),
        peer: desc(short),
        ratio: `${(long.pinned.openRoundTrips / short.pinned.openRoundTrips).toFixed(2)}x RT, ${(long.pinned.openMs / short.pinned.openMs).toFixed(2)}x time`,
        goal: "same round trips at both lengths",
        verdict: verdict(long.pinned.openRoundTrips <= short.pinned.openRoundTrips),
        note: `${long.hours} h plan/listing: ${JSON.stringify(long.layout.perLevel)}; latest open ${long.latest.openRoundTrips} RT / ${fmtMs(long.latest.openMs)}`,
      }),
    );
    rows.push(
      row({
        fig: "8",
        label: `full-download peer at the same TXID, ${long.hours} h vs ${short.hours} h`,
        pagecast: restoreDesc(long),
        peer: restoreDesc(short),
        verdict: "info",
      }),
    );
  } catch (err) {
    details.error = errorInfo(err);
    rows.push(unavailableRow("8", "time-travel open", figure.goal, err));
  }
  return { rows, details };
}
