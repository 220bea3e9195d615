/**
 * A Cloudflare Worker that opens a replica from S3 and answers one query per
 * request: the reader's Workers path (wasm imported as a module, no node:).
 * Bundled by the miniflare test with esbuild; `./wa-sqlite-async.wasm` is
 * provided to workerd as a CompiledWasm module.
 */

import { cacheApiBackend, openReplica } from "../../../src/vfs/index.js";
import wasm from "./wa-sqlite-async.wasm";

interface QueryRequest {
  url: string;
  sql: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Keep pages in the Cache API (`caches.default`) across invocations. */
  cache?: boolean;
  hydrate?: boolean;
}

declare const caches: { default: Parameters<typeof cacheApiBackend>[0] };

export default {
  async fetch(request: Request): Promise<Response> {
    const body = (await request.json()) as QueryRequest;
    try {
      const replica = await openReplica(body.url, {
        wasm,
        storeOptions: { credentials: body.credentials },
        ...(body.cache ? { persistentCache: cacheApiBackend(caches.default) } : {}),
        ...(body.hydrate !== undefined ? { hydrate: body.hydrate } : {}),
      });
      try {
        const rows = await replica.values(body.sql);
        if (body.hydrate) await replica.hydrate();
        const st = replica.status();
        const fetched =
          st.requests.page.requests + st.requests.bulk.requests + st.requests.hydrate.requests;
        return Response.json({
          rows,
          txid: st.txid,
          pageRequests: st.requests.page.requests,
          fetched,
          indexRequests: st.requests.index.requests,
          cacheHits: st.persistentCache?.hits ?? null,
          cacheCorrupt: st.persistentCache?.corrupt ?? null,
        });
      } finally {
        await replica.close();
      }
    } catch (err) {
      const e = err as { message?: string; code?: string };
      return Response.json({ error: e.message ?? String(err), code: e.code }, { status: 500 });
    }
  },
};
