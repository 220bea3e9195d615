/**
 * Example 2: the analytics script comparing now with 24 hours ago, against a
 * replica whose history spans two days (commit times set by a scripted
 * writer publishing LTX files the way the Replicator does).
 */
import { afterAll, describe, expect, inject, test } from "vitest";
import { S3Store } from "../../src/storage/s3-store.js";
import { ScriptedWriter } from "../vfs/helpers.js";
import { awsEnv, bundleForNode, runNode, s3Url, uniquePrefix } from "./support/examples.js";

const s3 = inject("s3");
const HOUR = 3_600_000;
const prefix = uniquePrefix("analytics");
const store = new S3Store({
  bucket: s3.bucket,
  prefix,
  endpoint: s3.endpoint,
  region: s3.region,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
});

afterAll(() => store.close());

describe("example: analytics, today vs 24 hours ago", () => {
  test("prints the figures of both moments", async () => {
    const now = Date.now();
    const times = [now - 48 * HOUR, now - 47 * HOUR, now - 30 * HOUR, now - 20 * HOUR, now - HOUR];
    let t = 0;
    const writer = new ScriptedWriter(store, { clock: () => times[t++]! });
    const order = (customer: string, amount: number) =>
      `INSERT INTO orders (customer, amount, created_at) VALUES ('${customer}', ${amount}, 0);`;
    await writer.commit(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount REAL NOT NULL, created_at INTEGER NOT NULL)",
    );
    await writer.commit(order("ada", 10) + order("bob", 5));
    await writer.commit(order("ada", 7.5) + order("cy", 20)); // 30 h ago: the state "24 hours ago" shows
    await writer.commit(order("dan", 100) + order("bob", 1)); // 20 h ago
    await writer.commit(order("eve", 3)); // 1 h ago
    writer.close();

    const bundle = await bundleForNode("analytics/compare-yesterday.ts");
    const env = { ...awsEnv(s3), PAGECAST_REPLICA_URL: s3Url(s3, prefix) };
    const json = await runNode(bundle, env, ["--json"]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      yesterday: { txid: 3, orders: 4, revenue: 42.5, customers: 3, topCustomer: "cy" },
      today: { txid: 5, orders: 7, revenue: 146.5, customers: 5, topCustomer: "dan" },
    });

    const table = await runNode(bundle, env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split("\n").slice(0, 6)).toEqual([
      "              24 h ago  now     change",
      "TXID          3         5",
      "orders        4         7       +75.0%",
      "revenue       42.50     146.50  +244.7%",
      "customers     3         5       +66.7%",
      "top customer  cy        dan",
    ]);

    const missing = await runNode(bundle, { PAGECAST_REPLICA_URL: "" });
    expect(missing.code).toBe(2);
  });
});
