/**
 * A Cloudflare Worker answering catalog queries from a pagecast replica in
 * R2, through the Worker's R2 binding (no keys, no signing, no egress), or in
 * any S3 bucket: no database server, pages fetched on demand, cached for as
 * long as the isolate lives.
 *
 *   GET /products?category=tools   products of a category, cheapest first
 *   GET /products/42               one product
 *   GET /status                    the replica's status (TXID, lag, cache, requests)
 *
 * Deploy with wrangler (it bundles the `.wasm` import as a WebAssembly
 * module). R2: bind the bucket as BUCKET (`[[r2_buckets]] binding = "BUCKET"`)
 * and set REPLICA_PREFIX; elsewhere: set REPLICA_URL as a var and the S3 keys
 * as secrets.
 */
import syncWasm from "@journeyapps/wa-sqlite/dist/wa-sqlite.wasm";
import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm";
import { asc, eq } from "drizzle-orm";
import {
  drizzleReplica,
  openReplica,
  type R2BucketLike,
  type Replica,
  type ReplicaOptions,
  r2Store,
  vfsStatus,
} from "pagecast";
import { products } from "./schema.js";

/** The Worker's bindings. */
export interface Env {
  /** The R2 bucket holding the replica (an R2 binding). */
  BUCKET?: R2BucketLike;
  /** The replica's prefix in BUCKET, e.g. `catalog`. */
  REPLICA_PREFIX?: string;
  /** Without BUCKET: e.g. s3://my-bucket/catalog?endpoint=https://s3.example.com&region=auto */
  REPLICA_URL?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
}

// One replica per isolate: its page cache outlives requests. It polls
// lazily (when a query starts and a second has passed), never on a timer.
let replica: Promise<Replica> | undefined;

function open(env: Env): Promise<Replica> {
  const options: ReplicaOptions = {
    wasm, // the async build: reads that must wait for S3
    syncWasm, // the plain build: statements whose pages are cached run synchronously
    pollIntervalMs: 1000,
    cacheBytes: 16 * 1024 * 1024,
  };
  replica ??= (
    env.BUCKET
      ? openReplica({ ...options, store: r2Store(env.BUCKET, env.REPLICA_PREFIX ?? "") })
      : openReplica(env.REPLICA_URL ?? "", {
          ...options,
          storeOptions: {
            credentials: {
              accessKeyId: env.S3_ACCESS_KEY_ID ?? "",
              secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? "",
            },
          },
        })
  ).catch((err: unknown) => {
    replica = undefined; // try again on the next request
    throw err;
  });
  return replica;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      const r = await open(env);
      if (url.pathname === "/status") return Response.json(vfsStatus(r));
      const db = drizzleReplica(r);
      const one = /^\/products\/(\d+)$/.exec(url.pathname);
      if (one) {
        const [row] = await db
          .select()
          .from(products)
          .where(eq(products.id, Number(one[1])));
        return row ? Response.json(row) : Response.json({ error: "not found" }, { status: 404 });
      }
      if (url.pathname === "/products") {
        const category = url.searchParams.get("category");
        const query = db.select().from(products);
        const rows = await (category ? query.where(eq(products.category, category)) : query)
          .orderBy(asc(products.price), asc(products.id))
          .limit(100);
        return Response.json(rows);
      }
      return Response.json({ error: "no such route" }, { status: 404 });
    } catch (err) {
      const e = err as { message?: string; code?: string };
      return Response.json({ error: e.message ?? String(err), code: e.code }, { status: 500 });
    }
  },
};
