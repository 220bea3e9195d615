/**
 * One cold (or warm) operation per engine, measured the same way: pagecast's
 * replica over S3, sql.js-httpvfs over HTTP, restore + better-sqlite3, and
 * better-sqlite3 on a local file.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { HttpVfsPeer } from "./httpvfs-client.mjs";
import { measured } from "./measure.mjs";

/** Cold pagecast: a new store client and replica, open + queries, through proxy `s3`. */
export async function pagecastCold(ctx, prefix, queries, options = {}) {
  const store = ctx.store("s3", prefix);
  let replica;
  try {
    const m = await measured(ctx.servers, "s3", async (mark) => {
      replica = await ctx.api.openReplica({
        store,
        wasm: ctx.wasm,
        closeStore: true,
        ...options,
      });
      mark("open");
      const out = [];
      for (const q of queries) out.push(await replica.query(q.sql, q.params));
      return out;
    });
    m.replicaRequests = replica.status().requests;
    return m;
  } finally {
    if (replica) await replica.close();
    else await store.close();
  }
}

/** Cold sql.js-httpvfs: a new worker (its cache lives and dies with it), open + queries. */
export async function httpvfsCold(ctx, url, queries) {
  const peer = await HttpVfsPeer.create();
  try {
    const m = await measured(ctx.servers, "http", async (mark) => {
      await peer.open(url);
      mark("open");
      const out = [];
      for (const q of queries) out.push(await peer.query(q.sql, q.params));
      return out;
    });
    m.peerStats = await peer.stats();
    return m;
  } finally {
    await peer.close();
  }
}

/** Full download with pagecast's restore, then better-sqlite3 on the restored file. */
export async function restoreThenQuery(ctx, prefix, queries, restoreOptions = {}) {
  const store = ctx.store("s3x", prefix);
  const out = join(ctx.scratch, `restored-${prefix}-${Date.now()}.db`);
  try {
    return await measured(ctx.servers, "s3x", async (mark) => {
      await ctx.api.restore(store, out, restoreOptions);
      mark("open");
      const db = new Database(out, { readonly: true });
      try {
        return queries.map((q) => db.prepare(q.sql).all(...q.params));
      } finally {
        db.close();
      }
    });
  } finally {
    await store.close();
    rmSync(out, { force: true });
  }
}

/** better-sqlite3 on the local file: open + queries (the OS page cache is warm). */
export function localQuery(path, queries) {
  const t0 = performance.now();
  const db = new Database(path, { readonly: true });
  const opened = performance.now();
  try {
    const result = queries.map((q) => db.prepare(q.sql).all(...q.params));
    return { result, ms: performance.now() - t0, openMs: opened - t0, roundTrips: 0, requests: 0 };
  } finally {
    db.close();
  }
}
