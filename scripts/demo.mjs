// The README's demo: the whole pagecast loop on this machine, with an embedded
// S3 server (fauxqs) on loopback. Run with `npm run demo` (builds first).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { startFauxqs } from "fauxqs";
import { encodeDatabaseFile } from "../dist/cli/ltx-encode.js";
import { main as cli } from "../dist/cli/main.js";
import { readLtxPageIndex, storeRangeReader } from "../dist/format/index.js";
import { openStore } from "../dist/index.js";

const step = (text) => console.log(`\n▶ ${text}`);
const dir = await mkdtemp(join(tmpdir(), "pagecast-demo-"));
const server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
server.createBucket("demo");
const endpoint = `http://127.0.0.1:${server.port}`;
// fauxqs accepts any credentials; real deployments use the SDK's standard chain.
process.env.AWS_ACCESS_KEY_ID ??= "demo";
process.env.AWS_SECRET_ACCESS_KEY ??= "demo";
// The demo runs on Node 20 on purpose; the SDK's future-support notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

try {
  step("create a sample database (better-sqlite3)");
  const dbPath = join(dir, "app.db");
  const db = new Database(dbPath);
  db.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL)");
  db.exec("CREATE INDEX orders_customer ON orders(customer)");
  const insert = db.prepare("INSERT INTO orders (customer, total) VALUES (?, ?)");
  db.transaction(() => {
    for (let i = 0; i < 50_000; i++) insert.run(`customer-${i % 997}`, (i % 1000) / 10);
  })();
  db.close();
  console.log(`  ${dbPath}: ${(await readFile(dbPath)).length} bytes`);

  step("encode it as an LTX v3 snapshot");
  const ltxPath = join(dir, "snapshot.ltx");
  const encoded = await encodeDatabaseFile(dbPath, ltxPath, { txid: 1 });
  console.log(`  ${encoded.pageCount} pages -> ${encoded.bytes} bytes (LZ4)`);

  step(`upload it to the embedded S3 server (${endpoint})`);
  const store = await openStore(`s3://demo/app?endpoint=${encodeURIComponent(endpoint)}`);
  const key = "0009/0000000000000001-0000000000000001.ltx";
  await store.put(key, await readFile(ltxPath), { ifNoneMatch: "*" });

  step("read its page index back with one suffix range GET");
  const before = store.counters().requests.get;
  const index = await readLtxPageIndex(storeRangeReader(store, key));
  console.log(
    `  ${index.entries.length} pages indexed, ${store.counters().requests.get - before} GET(s)`,
  );

  step("download, apply and verify with `pagecast ltx`");
  const got = await store.get(key);
  const downloaded = join(dir, "downloaded.ltx");
  await (await import("node:fs/promises")).writeFile(downloaded, got.body);
  const io = {
    stdout: (t) => process.stdout.write(`  ${t}`),
    stderr: (t) => process.stderr.write(`  ${t}`),
    isTTY: false,
    env: process.env,
    signal: new AbortController().signal,
  };
  if ((await cli(["ltx", "verify", downloaded], io)) !== 0) throw new Error("verify failed");
  const restored = join(dir, "restored.db");
  if ((await cli(["ltx", "apply", restored, downloaded], io)) !== 0)
    throw new Error("apply failed");
  const same = Buffer.compare(await readFile(restored), await readFile(dbPath)) === 0;
  const check = new Database(restored, { readonly: true });
  const integrity = check.pragma("integrity_check", { simple: true });
  const count = check.prepare("SELECT count(*) AS n FROM orders").get().n;
  check.close();
  console.log(`  byte-identical: ${same}, integrity_check: ${integrity}, rows: ${count}`);
  if (!same || integrity !== "ok" || count !== 50_000) throw new Error("demo verification failed");
  const c = store.counters();
  console.log(`\n✔ demo ok — S3 requests: ${JSON.stringify(c.requests)}, bytes out ${c.bytesOut}`);
  await store.close();
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
