// The README's demo: the pagecast loop on this machine, with an embedded S3
// server (fauxqs) on loopback. Run with `npm run demo` (it builds first).
//   1. an app writes to a WAL-mode SQLite file; the Replicator publishes LTX files to S3
//   2. a replica reads it page by page straight from S3 and follows new commits
//   3. a pinned replica and a restore show a past state; `ltx verify` checks every file
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { sql } from "drizzle-orm";
import { startFauxqs } from "fauxqs";
import { main as cli } from "../dist/cli/main.js";
import { openReplica, timeTravel, vfsStatus } from "../dist/index.node.js";
import { openNodeStore, Replicator, restore } from "../dist/node.js";

// fauxqs accepts any credentials; real deployments use the SDK's standard chain.
process.env.AWS_ACCESS_KEY_ID ??= "demo";
process.env.AWS_SECRET_ACCESS_KEY ??= "demo";
// The demo runs on Node 20 on purpose; the SDK's future-support notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const step = (text) => console.log(`\n▶ ${text}`);
const check = (ok, what) => {
  if (!ok) throw new Error(`demo check failed: ${what}`);
  console.log(`  ✔ ${what}`);
};
const dir = await mkdtemp(join(tmpdir(), "pagecast-demo-"));
const server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
server.createBucket("demo");
const endpoint = `http://127.0.0.1:${server.port}`;
const url = `s3://demo/app?endpoint=${encodeURIComponent(endpoint)}`;
const cleanups = [];

try {
  step(`an app writes to a WAL-mode SQLite file; the Replicator publishes to ${url}`);
  const dbPath = join(dir, "app.db");
  const app = new Database(dbPath);
  cleanups.push(() => app.close());
  app.pragma("journal_mode = WAL");
  app.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL)");
  app.exec("CREATE INDEX orders_customer ON orders(customer)");
  const replicator = await Replicator.start({ db: dbPath, url, syncInterval: 100 });
  cleanups.push(() => replicator.close());
  const insert = app.prepare("INSERT INTO orders (customer, total) VALUES (?, ?)");
  const addOrders = app.transaction((n, base) => {
    for (let i = 0; i < n; i++)
      insert.run(`customer-${(base + i) % 997}`, ((base + i) % 1000) / 10);
  });
  addOrders(50_000, 0);
  const first = await replicator.sync();
  console.log(`  synced TXID ${first.txid} at ${new Date(first.timestamp).toISOString()}`);

  step("a replica queries it straight from S3, fetching only the pages it needs");
  const replica = await openReplica(url, { pollIntervalMs: 50 });
  cleanups.push(() => replica.close());
  const [{ n }] = await replica.query("SELECT count(*) AS n FROM orders");
  check(n === 50_000, `replica sees ${n} orders`);
  const rows = await replica.query(
    "SELECT id, total FROM orders WHERE customer = ? ORDER BY id LIMIT 3",
    ["customer-42"],
  );
  console.log(`  customer-42's first orders: ${JSON.stringify(rows)}`);
  let status = replica.status();
  console.log(
    `  status: TXID ${status.txid}, lag ${status.lagSeconds?.toFixed(2)} s, ${status.health}, ` +
      `cache ${status.cache.entries} pages`,
  );

  step("the app writes more; the replica follows");
  addOrders(1_000, 50_000);
  const second = await replicator.sync();
  await new Promise((r) => setTimeout(r, 60));
  const [{ n: n2 }] = await replica.query("SELECT count(*) AS n FROM orders");
  check(n2 === 51_000, `replica now sees ${n2} orders (TXID ${second.txid})`);

  step("time travel: a replica pinned at the first TXID, and a restore of it");
  const past = await openReplica(url, { at: { txid: first.txid } });
  cleanups.push(() => past.close());
  const [{ n: nPast }] = await past.query("SELECT count(*) AS n FROM orders");
  check(nPast === 50_000, `pinned replica at TXID ${first.txid} sees ${nPast} orders`);
  const nTravel = await timeTravel(replica, { txid: first.txid }, async (db) => {
    const [[count]] = await db.values(sql`SELECT count(*) FROM orders`);
    return count;
  });
  check(nTravel === 50_000, `timeTravel(replica, { txid: ${first.txid} }) sees ${nTravel} orders`);
  const restoredPath = join(dir, "restored.db");
  const result = await restore(url, restoredPath, { txid: first.txid });
  const restored = new Database(restoredPath, { readonly: true });
  const nRestored = restored.prepare("SELECT count(*) AS n FROM orders").get().n;
  restored.close();
  check(
    nRestored === 50_000,
    `restore of TXID ${result.txid}: ${nRestored} orders, integrity ok, checksum ${result.checksumVerified}`,
  );

  step("`pagecast status`, `pagecast ltx list` and `pagecast ltx verify`");
  const io = {
    stdout: (t) => process.stdout.write(t.replace(/^/gm, "  ")),
    stderr: (t) => process.stderr.write(t.replace(/^/gm, "  ")),
    isTTY: false,
    env: process.env,
    signal: new AbortController().signal,
  };
  check((await cli(["status", url], io)) === 0, "status");
  check((await cli(["ltx", "list", url], io)) === 0, "ltx list");
  const store = await openNodeStore(url);
  cleanups.push(() => store.close());
  const files = [];
  for (let token; ; ) {
    const page = await store.list({ continuationToken: token });
    for (const o of page.objects) if (o.key.endsWith(".ltx")) files.push(o.key);
    token = page.continuationToken;
    if (!token) break;
  }
  const local = [];
  for (const key of files) {
    const path = join(dir, key.replaceAll("/", "_"));
    await writeFile(path, (await store.get(key)).body);
    local.push(path);
  }
  check((await cli(["ltx", "verify", ...local], io)) === 0, `${files.length} LTX files verify`);

  status = vfsStatus(replica);
  const r = status.requests;
  console.log(
    `\n✔ demo ok — replica requests: ${Object.entries(r)
      .map(([k, v]) => `${k} ${v.requests}`)
      .join(", ")}; writer: ${JSON.stringify(replicator.stats().store.requests)}`,
  );
} finally {
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
