/**
 * A Worker whose store answers slowly when a request asks it to (`slow` ms
 * before every GET), for the miniflare test of a poll that outlives its
 * request: workerd cancels a request's outstanding I/O once it has answered.
 */
import {
  type ObjectStore,
  openReplica,
  type R2BucketLike,
  type Replica,
  r2Store,
} from "../../../src/reader.js";
import wasm from "./wa-sqlite-async.wasm";

interface Env {
  BUCKET: R2BucketLike;
  PREFIX: string;
}

let replica: Promise<Replica> | undefined;
let slowMs = 0;

/** `store` with every GET delayed by the current `slowMs`. */
function slowed(store: ObjectStore): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "get") {
        return async (...args: Parameters<ObjectStore["get"]>) => {
          if (slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
          return target.get(...args);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const body = (await request.json()) as { sql: string; slowMs?: number };
    slowMs = body.slowMs ?? 0;
    replica ??= openReplica({
      store: slowed(r2Store(env.BUCKET, env.PREFIX)),
      wasm,
      pollIntervalMs: 0,
      pollWaitMs: 100,
      pollAbandonMs: 2000,
    });
    const r = await replica;
    const rows = await r.values(body.sql);
    return Response.json({ rows, txid: r.status().txid });
  },
};
