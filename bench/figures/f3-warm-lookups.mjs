/**
 * Figure 3: warm point lookups per second (every page already cached), one
 * query at a time, against better-sqlite3 on a local file with a prepared
 * statement (the ceiling). sql.js-httpvfs is shown for reference.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Database from "better-sqlite3";
import { profileText, profileWhile } from "../lib/cpu-profile.mjs";
import {
  errorInfo,
  fmtNum,
  fmtRatio,
  row,
  safeRatio,
  unavailableRow,
  verdict,
} from "../lib/figure-kit.mjs";
import { HttpVfsPeer } from "../lib/httpvfs-client.mjs";
import { need } from "../lib/pagecast-api.mjs";
import { POINT_QUERIES, pointParams, randomIds } from "../lib/workload.mjs";

export const figure = {
  id: "3",
  title: "Warm point lookups per second",
  goal: ">= 1.0x better-sqlite3 on a local file",
};

/**
 * wa-sqlite's plain (synchronous) build, which pagecast runs warm statements
 * on beside the async build (`syncWasm`; `pagecast/node` registers it by
 * default, the figures pass modules explicitly). Older builds ignore it.
 */
let syncWasm;
function plainBuildWasm() {
  syncWasm ??= WebAssembly.compile(
    readFileSync(
      createRequire(import.meta.url).resolve("@journeyapps/wa-sqlite/dist/wa-sqlite.wasm"),
    ),
  );
  return syncWasm;
}

/** Runs `fn` over `keys` (continuing at `state.next`) for `ms`; adds to `state`. */
async function slice(state, keys, ms, fn) {
  const t0 = performance.now();
  let t = t0;
  let n = 0;
  while (t - t0 < ms) {
    await fn(keys[state.next++ % keys.length]);
    n++;
    if ((n & 15) === 0) t = performance.now();
  }
  state.lookups += n;
  state.ms += performance.now() - t0;
}

function sliceSync(state, keys, ms, fn) {
  const t0 = performance.now();
  let t = t0;
  let n = 0;
  while (t - t0 < ms) {
    fn(keys[state.next++ % keys.length]);
    n++;
    if ((n & 255) === 0) t = performance.now();
  }
  state.lookups += n;
  state.ms += performance.now() - t0;
}

function rate(state) {
  return { lookups: state.lookups, ms: state.ms, perSecond: (state.lookups * 1000) / state.ms };
}

export async function run(ctx) {
  const ds = ctx.datasetList()[0];
  // Engines take turns in short slices, so drift in the machine's load hits all alike.
  const durationMs = ctx.quick ? 1000 : 5000;
  const sliceMs = 250;
  const ids = randomIds(ctx.params, ctx.quick ? 200 : 1000, 31);
  const delay = ctx.opts.throughputDelay;
  const details = {
    dataset: ds.key,
    durationMs,
    sliceMs,
    keys: ids.length,
    delayMs: delay,
    kinds: {},
  };
  const rows = [];
  await ctx.servers.setDelay("s3", delay);
  await ctx.servers.setDelay("http", delay);
  try {
    for (const [kind, q] of Object.entries(POINT_QUERIES)) {
      const keys = ids.map((id) => pointParams(kind, id, ctx.params));
      const kd = {};
      details.kinds[kind] = kd;
      const db = new Database(ds.path, { readonly: true });
      const store = ctx.store("s3", ds.prefix);
      let replica;
      let peer;
      try {
        // better-sqlite3, prepared once (the ceiling).
        const stmt = db.prepare(q.sql);
        const engines = [
          {
            name: "better-sqlite3 local",
            state: { next: 0, lookups: 0, ms: 0 },
            sync: (k) => stmt.get(...k),
          },
        ];
        try {
          need(ctx.api, "openReplica", "S3Store");
          replica = await ctx.api.openReplica({
            store,
            wasm: ctx.wasm,
            syncWasm: await plainBuildWasm(),
            closeStore: true,
          });
          engines.push({
            name: "pagecast",
            state: { next: 0, lookups: 0, ms: 0 },
            run: (k) => replica.values(q.sql, k),
          });
        } catch (err) {
          kd.pagecast = { error: errorInfo(err) };
        }
        try {
          // Reference only: every query crosses a worker boundary.
          peer = await HttpVfsPeer.create();
          await peer.open(ds.url);
          engines.push({
            name: "sql.js-httpvfs",
            state: { next: 0, lookups: 0, ms: 0 },
            run: (k) => peer.query(q.sql, k),
          });
        } catch (err) {
          kd["sql.js-httpvfs"] = { error: errorInfo(err) };
        }
        // Warm every cache: each key once.
        for (const e of engines) {
          for (const k of keys) await (e.sync ? e.sync(k) : e.run(k));
        }
        const before = replica?.status();
        const rounds = Math.max(1, Math.round(durationMs / sliceMs));
        for (let i = 0; i < rounds; i++) {
          for (let j = 0; j < engines.length; j++) {
            const e = engines[(i + j) % engines.length];
            if (e.sync) sliceSync(e.state, keys, sliceMs, e.sync);
            else await slice(e.state, keys, sliceMs, e.run);
          }
        }
        for (const e of engines) kd[e.name] = rate(e.state);
        if (replica) {
          const after = replica.status();
          const r = kd.pagecast;
          r.cacheMissesDuringLoop = after.cache.misses - before.cache.misses;
          r.pollsDuringLoop = after.requests.poll.requests - before.requests.poll.requests;
          r.pageRequestsDuringLoop = after.requests.page.requests - before.requests.page.requests;
          // Where the time goes: a separate, profiled slice of the same loop.
          [, r.profile] = await profileWhile(
            () =>
              slice({ next: 0, lookups: 0, ms: 0 }, keys, ctx.quick ? 500 : 1000, (k) =>
                replica.values(q.sql, k),
              ),
            12,
          );
        }
      } finally {
        await replica?.close().catch(() => {});
        if (!replica) await store.close().catch(() => {});
        await peer?.close();
        db.close();
      }
      const label = `warm ${q.label}, ${ds.label}`;
      const goal = ">= 1.0x better-sqlite3 local";
      if (kd.pagecast.error) {
        rows.push(unavailableRow("3", label, goal, kd.pagecast.error));
        continue;
      }
      const bsq = kd["better-sqlite3 local"].perSecond;
      const ratio = safeRatio(kd.pagecast.perSecond, bsq);
      const hv = kd["sql.js-httpvfs"];
      rows.push(
        row({
          fig: "3",
          label,
          pagecast: `${fmtNum(kd.pagecast.perSecond)}/s`,
          peer: `better-sqlite3 local: ${fmtNum(bsq)}/s; sql.js-httpvfs: ${hv.error ? "failed" : `${fmtNum(hv.perSecond)}/s`}`,
          ratio: fmtRatio(ratio, 3),
          goal,
          verdict: verdict(ratio === null ? null : ratio >= 1),
          note:
            `${(1e6 / kd.pagecast.perSecond).toFixed(1)} us/lookup vs ${(1e6 / bsq).toFixed(1)} us; ` +
            `${kd.pagecast.cacheMissesDuringLoop} cache misses and ${kd.pagecast.pollsDuringLoop} polls during the timed loop; ` +
            `profile: ${profileText(kd.pagecast.profile, 6)}`,
        }),
      );
    }
  } finally {
    await ctx.servers.setDelay("s3", ctx.opts.delay);
    await ctx.servers.setDelay("http", ctx.opts.delay);
  }
  return { rows, details };
}
