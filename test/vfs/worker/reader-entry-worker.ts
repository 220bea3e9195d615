/**
 * A Cloudflare Worker on `pagecast/reader` (src/reader.ts): one replica per
 * isolate over the R2 binding BUCKET, one query per request. With `url` in
 * the request it tries to open that URL instead, to show the typed error.
 * Bundled by the miniflare test; `./wa-sqlite-async.wasm` is provided to
 * workerd as a CompiledWasm module (the async build only).
 */
import {
  openReplica,
  type R2BucketLike,
  type Replica,
  ReplicaError,
  r2Store,
} from "../../../src/reader.js";
import wasm from "./wa-sqlite-async.wasm";

interface Env {
  BUCKET: R2BucketLike;
  PREFIX: string;
}

let replica: Promise<Replica> | undefined;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const body = (await request.json()) as { sql: string; url?: string };
    try {
      if (body.url !== undefined) await openReplica(body.url as never);
      replica ??= openReplica({ store: r2Store(env.BUCKET, env.PREFIX), wasm, pollIntervalMs: 0 });
      const r = await replica;
      const rows = await r.values(body.sql);
      return Response.json({ rows, txid: r.status().txid });
    } catch (err) {
      const e = err as { message?: string; code?: string };
      return Response.json(
        {
          error: e.message ?? String(err),
          code: e.code,
          replicaError: err instanceof ReplicaError,
        },
        { status: 500 },
      );
    }
  },
};
