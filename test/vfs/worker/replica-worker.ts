/**
 * A Cloudflare Worker that opens a replica from S3 and answers one query per
 * request: the reader's Workers path (wasm imported as a module, no node:).
 * Bundled by the miniflare test with esbuild; `./wa-sqlite-async.wasm` is
 * provided to workerd as a CompiledWasm module.
 */

import { openReplica } from "../../../src/vfs/index.js";
import wasm from "./wa-sqlite-async.wasm";

interface QueryRequest {
  url: string;
  sql: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export default {
  async fetch(request: Request): Promise<Response> {
    const body = (await request.json()) as QueryRequest;
    try {
      const replica = await openReplica(body.url, {
        wasm,
        storeOptions: { credentials: body.credentials },
      });
      try {
        const rows = await replica.values(body.sql);
        const st = replica.status();
        return Response.json({ rows, txid: st.txid, pageRequests: st.requests.page.requests });
      } finally {
        await replica.close();
      }
    } catch (err) {
      const e = err as { message?: string; code?: string };
      return Response.json({ error: e.message ?? String(err), code: e.code }, { status: 500 });
    }
  },
};
