/**
 * Example 1 without an R2 binding: the Cloudflare Worker in workerd
 * (miniflare) reading a replica by s3:// URL from an S3 server (fauxqs)
 * through FetchS3Store (fetch + pagecast's SigV4): the Worker bundle holds no AWS
 * SDK, and signing, ranged gets and listing work inside workerd.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { tempDir } from "../router/helpers.js";
import { bundleForWorker, readUntil, s3Url, uniquePrefix } from "./support/examples.js";

const s3 = inject("s3");
const prefix = uniquePrefix("worker-s3");
let cleanup: () => void;
let primary: Database.Database;
let store: S3Store;
let replicator: Replicator;
let mf: Miniflare;
let bundle: string;

beforeAll(async () => {
  const tmp = tempDir("pagecast-example-worker-s3-");
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
  store = new S3Store({
    bucket: s3.bucket,
    prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  replicator = await Replicator.start({ db: path, store, syncInterval: 0, compaction: false });
  bundle = await bundleForWorker("cloudflare-worker/worker.ts");
  const require = createRequire(import.meta.url);
  const wasm = (name: string) => ({
    type: "CompiledWasm" as const,
    path: name,
    contents: readFileSync(require.resolve(`@journeyapps/wa-sqlite/dist/${name}`)),
  });
  mf = new Miniflare({
    modules: [
      { type: "ESModule", path: "index.mjs", contents: bundle },
      wasm("wa-sqlite-async.wasm"),
      wasm("wa-sqlite.wasm"),
    ],
    compatibilityDate: "2025-09-01",
    bindings: {
      REPLICA_URL: s3Url(s3, prefix),
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    },
  });
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

test("the Worker bundle carries no AWS SDK", () => {
  expect(bundle).not.toMatch(/@aws-sdk|S3Client|smithy/);
  expect(bundle).toMatch(/AWS4-HMAC-SHA256/);
});

test("example Worker reads a replica by s3:// URL through fetch + SigV4 in workerd", async () => {
  const tools = await get("/products?category=tools");
  if (tools.status !== 200) throw new Error(JSON.stringify(tools.body));
  expect(tools.body).toEqual(
    primary
      .prepare(
        "SELECT id, name, category, price FROM products WHERE category = 'tools' ORDER BY price, id LIMIT 100",
      )
      .all(),
  );
  expect(await get("/products/42")).toEqual({
    status: 200,
    body: primary.prepare("SELECT * FROM products WHERE id = 42").get(),
  });
  primary.prepare("UPDATE products SET price = 0.5 WHERE id = 42").run();
  const pos = await replicator.sync();
  await new Promise((r) => setTimeout(r, 1100)); // the Worker polls at most once a second
  // The first request past the interval polls; a later one at the latest answers from it.
  const product = await readUntil(
    async () => (await get("/products/42")).body as { price?: number },
    (body) => body.price === 0.5,
  );
  expect(product).toMatchObject({ id: 42, price: 0.5 });
  expect(((await get("/status")).body as { txid: number }).txid).toBe(pos.txid);
});
