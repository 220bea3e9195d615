/**
 * Runs the reader inside workerd (miniflare): a Worker opens a replica on the
 * loopback S3 server (fauxqs) and answers queries.
 */
import { describe, expect, inject, test } from "vitest";
import { S3Store } from "../../src/storage/s3-store.js";
import { primaryValues, ScriptedWriter } from "./helpers.js";
import { workerMiniflare } from "./worker-harness.js";

const s3 = inject("s3");

describe("replica in a Cloudflare Worker (miniflare)", () => {
  test("opens a replica on S3 and answers queries", async () => {
    const prefix = `worker-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    const store = new S3Store({
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials,
    });
    const writer = new ScriptedWriter(store);
    await writer.commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    await writer.commit(() => {
      const ins = writer.db.prepare("INSERT INTO t (v) VALUES (?)");
      for (let i = 0; i < 500; i++) ins.run(`row ${i}`.padEnd(200, "w"));
    });

    // No nodejs_compat: the reader needs nothing from Node.
    const mf = await workerMiniflare("replica-worker.ts");
    try {
      const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}&region=${s3.region}`;
      const sql = "SELECT count(*), sum(length(v)), max(v) FROM t WHERE id % 7 = 3";
      const ask = async () => {
        const res = await mf.dispatchFetch("http://worker/", {
          method: "POST",
          body: JSON.stringify({ url, sql, credentials }),
        });
        const out = (await res.json()) as {
          rows?: unknown;
          txid?: number;
          pageRequests?: number;
          error?: string;
        };
        expect(out.error).toBeUndefined();
        expect(res.status).toBe(200);
        expect(out.rows).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
        expect(out.txid).toBe(writer.txid);
        expect(out.pageRequests).toBeGreaterThan(0);
      };
      await ask();
      await writer.commit("DELETE FROM t WHERE id < 100");
      await ask();

      // The Cache API as persistent cache: the next invocation reads pages from it.
      const cached = async (hydrate: boolean) => {
        const res = await mf.dispatchFetch("http://worker/", {
          method: "POST",
          body: JSON.stringify({ url, sql, credentials, cache: true, hydrate }),
        });
        const out = (await res.json()) as {
          rows?: unknown;
          error?: string;
          fetched: number;
          indexRequests: number;
          cacheHits: number | null;
          cacheCorrupt: number | null;
        };
        expect(out.error).toBeUndefined();
        expect(out.rows).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
        return out;
      };
      const first = await cached(true);
      expect(first.fetched).toBeGreaterThan(0);
      const second = await cached(true);
      expect(second.fetched).toBe(0);
      expect(second.indexRequests).toBe(0);
      expect(second.cacheHits).toBeGreaterThan(0);
      expect(second.cacheCorrupt).toBe(0);
    } finally {
      await mf.dispose();
      writer.close();
      await store.close();
    }
  });
});
