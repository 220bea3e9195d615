/**
 * `pagecast/reader` in workerd (miniflare): a Worker bundled from the reader
 * entry alone (no URL opener, no plain build; only the async wasm given to
 * workerd) opens a replica over its R2 binding, answers like the primary,
 * follows a new commit, and refuses a URL with the typed error.
 */
import { describe, expect, test } from "vitest";
import { type R2BucketLike, r2Store } from "../../src/storage/r2-store.js";
import { primaryValues, ScriptedWriter } from "./helpers.js";
import { workerMiniflare } from "./worker-harness.js";

describe("pagecast/reader in a Cloudflare Worker (miniflare, R2 binding)", () => {
  test("opens over the binding, answers like the primary, follows commits, refuses URLs", async () => {
    const prefix = `reader-${Date.now().toString(36)}`;
    const mf = await workerMiniflare("reader-entry-worker.ts", {
      r2Buckets: ["BUCKET"],
      bindings: { PREFIX: prefix },
    });
    const store = r2Store((await mf.getR2Bucket("BUCKET")) as unknown as R2BucketLike, prefix);
    const writer = new ScriptedWriter(store, { head: true });
    try {
      await writer.commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
      await writer.commit(() => {
        const ins = writer.db.prepare("INSERT INTO t (v) VALUES (?)");
        for (let i = 0; i < 400; i++) ins.run(`row ${i}`.padEnd(200, "r"));
      });
      const ask = async (body: object) => {
        const res = await mf.dispatchFetch("http://worker/", {
          method: "POST",
          body: JSON.stringify(body),
        });
        return { status: res.status, out: (await res.json()) as Record<string, unknown> };
      };
      const sql = "SELECT count(*), sum(length(v)), max(v) FROM t WHERE id % 5 = 2";
      const first = await ask({ sql });
      expect(first.out.error).toBeUndefined();
      expect(first.out).toEqual({ rows: primaryValues(writer.db, sql), txid: writer.txid });
      await writer.commit("DELETE FROM t WHERE id < 100");
      const second = await ask({ sql });
      expect(second.out).toEqual({ rows: primaryValues(writer.db, sql), txid: writer.txid });

      const refused = await ask({ sql, url: `s3://bucket/${prefix}` });
      expect(refused.status).toBe(500);
      expect(refused.out).toMatchObject({ code: "REPLICA_INVALID_ARGUMENT", replicaError: true });
      expect(refused.out.error).toMatch(/pass \{ store \}/);
    } finally {
      await mf.dispose();
      writer.close();
    }
  }, 90_000);
});

describe("a poll that outlives its Worker request", () => {
  test("is given up after pollAbandonMs: the replica follows new commits again", async () => {
    // workerd cancels a request's outstanding I/O once it has answered: a poll
    // still waiting on storage then never settles. Before pollAbandonMs the
    // replica stayed on its version for the isolate's life.
    const prefix = `slow-poll-${Date.now().toString(36)}`;
    const mf = await workerMiniflare("slow-poll-worker.ts", {
      r2Buckets: ["BUCKET"],
      bindings: { PREFIX: prefix },
    });
    const store = r2Store((await mf.getR2Bucket("BUCKET")) as unknown as R2BucketLike, prefix);
    const writer = new ScriptedWriter(store, { head: true });
    const sql = "SELECT count(*) FROM t";
    const ask = async (body: object) => {
      const res = await mf.dispatchFetch("http://worker/", {
        method: "POST",
        body: JSON.stringify(body),
      });
      return (await res.json()) as { rows: unknown; txid: number };
    };
    try {
      await writer.commit("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
      expect(await ask({ sql })).toEqual({ rows: [[1]], txid: 1 });
      await writer.commit("INSERT INTO t VALUES (2)");
      // Storage answers in 1.5 s: the request answers after pollWaitMs (0.1 s)
      // on the version it has, and its poll is cancelled with it.
      expect(await ask({ sql, slowMs: 1500 })).toEqual({ rows: [[1]], txid: 1 });
      await new Promise((r) => setTimeout(r, 2500));
      await writer.commit("INSERT INTO t VALUES (3)");
      expect(await ask({ sql })).toEqual({ rows: [[3]], txid: writer.txid });
    } finally {
      await mf.dispose();
      writer.close();
    }
  }, 90_000);
});
