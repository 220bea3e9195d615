/**
 * A Cloudflare Worker answering catalog queries from a pagecast replica in
 * S3 (or R2, through its S3 API): no database server, pages fetched on
 * demand, cached for as long as the isolate lives.
 *
 *   GET /products?category=tools   products of a category, cheapest first
 *   GET /products/42               one product
 *   GET /status                    the replica's status (TXID, lag, cache, requests)
 *
 * Deploy with wrangler (it bundles the `.wasm` import as a WebAssembly
 * module); set REPLICA_URL as a var and the S3 keys as secrets.
 */
import syncWasm from "@journeyapps/wa-sqlite/dist/wa-sqlite.wasm";
import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm";
import { asc, eq } from "drizzle-orm";
import { drizzleReplica, openReplica, type Replica, vfsStatus } from "pagecast";
import { products } from "./schema.js";

/** The Worker's bindings. */
export interface Env {
  /** e.g. s3://my-bucket/catalog?endpoint=https://<account>.r2.cloudflarestorage.com&region=auto */
  REPLICA_URL: string;
  S3_ACCESS_KEY_ID: string;
  S3_SECRET_ACCESS_KEY: string;
}

// One replica per isolate: its page cache outlives requests. It polls
// lazily (when a query starts and a second has passed), never on a timer.
let replica: Promise<Replica> | undefined;

function open(env: Env): Promise<Replica> {
  replica ??= openReplica(env.REPLICA_URL, {
    wasm, // the async build: reads that must wait for S3
    syncWasm, // the plain build: statements whose pages are cached run synchronously
    pollIntervalMs: 1000,
    cacheBytes: 16 * 1024 * 1024,
    storeOptions: {
      credentials: {
        accessKeyId: env.S3_ACCESS_KEY_ID,
        secretAccessKey: env.S3_SECRET_ACCESS_KEY,
      },
    },
  }).catch((err: unknown) => {
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
