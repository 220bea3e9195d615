/**
 * Example 1: the Cloudflare Worker, run in workerd (miniflare) over an R2
 * binding, against a replica the Replicator publishes into that same bucket
 * (through miniflare's R2 API from Node). The Worker keeps
 * its replica across requests and sees new commits.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { type R2BucketLike, type R2Store, r2Store } from "../../src/storage/r2-store.js";
import { tempDir } from "../router/helpers.js";
import { bundleForWorker, readUntil, uniquePrefix } from "./support/examples.js";

const prefix = uniquePrefix("worker");
let cleanup: () => void;
let primary: Database.Database;
let store: R2Store;
let replicator: Replicator;
let mf: Miniflare;

beforeAll(async () => {
  const tmp = tempDir("pagecast-example-worker-");
  cleanup = tmp.cleanup;
  const path = join(tmp.dir, "catalog.db");
  primary = new Database(path);
  primary.pragma("journal_mode = wal");
  primary.exec(
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price REAL NOT NULL)",
  );
  const insert = primary.prepare("INSERT INTO products (name, category, price) VALUES (?, ?, ?)");
  primary.transaction(() => {
    for (let i = 1; i <= 300; i++) {
      insert.run(`product ${i}`, ["tools", "garden", "kitchen"][i % 3]!, (i * 37) % 101);
    }
  })();
  const require = createRequire(import.meta.url);
  mf = new Miniflare({
    modules: [
      {
        type: "ESModule",
        path: "index.mjs",
        contents: await bundleForWorker("cloudflare-worker/worker.ts"),
      },
      {
        type: "CompiledWasm",
        path: "wa-sqlite-async.wasm",
        contents: readFileSync(require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm")),
      },
      {
        type: "CompiledWasm",
        path: "wa-sqlite.wasm",
        contents: readFileSync(require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite.wasm")),
      },
    ],
    compatibilityDate: "2025-09-01",
    r2Buckets: ["BUCKET"],
    bindings: { REPLICA_PREFIX: prefix },
  });
  const bucket = (await mf.getR2Bucket("BUCKET")) as unknown as R2BucketLike;
  store = r2Store(bucket, prefix);
  replicator = await Replicator.start({ db: path, store, syncInterval: 0, compaction: false });
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  await replicator?.close();
  primary?.close();
  await store?.close();
  cleanup?.();
});

async function get(path: string): Promise<{ status: number; body: unknown }> {
  const res = await mf.dispatchFetch(`http://worker${path}`);
  return { status: res.status, body: await res.json() };
}

describe("example: Cloudflare Worker serving queries from a replica", () => {
  test("answers like the primary, across requests, and follows new commits", async () => {
    const expected = (category: string) =>
      primary
        .prepare(
          "SELECT id, name, category, price FROM products WHERE category = ? ORDER BY price, id LIMIT 100",
        )
        .all(category);

    const tools = await get("/products?category=tools");
    if (tools.status !== 200) throw new Error(JSON.stringify(tools.body));
    expect(tools.status).toBe(200);
    expect(tools.body).toEqual(expected("tools"));
    expect(await get("/products/42")).toEqual({
      status: 200,
      body: primary.prepare("SELECT * FROM products WHERE id = 42").get(),
    });
    expect((await get("/products/4242")).status).toBe(404);

    const before = (await get("/status")).body as {
      txid: number;
      requests: { head: { requests: number } };
    };
    expect(before.txid).toBe(replicator.position.txid);

    // A new commit on the primary, published: the Worker's replica picks it up on a later request.
    primary.prepare("UPDATE products SET price = 0.5 WHERE id = 42").run();
    const pos = await replicator.sync();
    await new Promise((r) => setTimeout(r, 1100)); // the Worker polls at most once a second
    // The first request past the interval polls; a later one at the latest answers from it.
    const product = await readUntil(
      async () => (await get("/products/42")).body as { price?: number },
      (body) => body.price === 0.5,
    );
    expect(product).toMatchObject({ id: 42, price: 0.5 });
    const after = (await get("/status")).body as {
      txid: number;
      requests: { head: { requests: number } };
    };
    expect(after.txid).toBe(pos.txid);
    // The same replica served every request: the head object was read once.
    expect(after.requests.head.requests).toBe(before.requests.head.requests);
    expect((await get("/products?category=garden")).body).toEqual(expected("garden"));
  });
});
