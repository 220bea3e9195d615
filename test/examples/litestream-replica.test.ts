/**
 * Example 4: reading a replica laid out as Litestream 0.5 writes it (LTX
 * files by level, no pagecast head object). No Litestream binary is
 * available in CI, so the files come from pagecast's Replicator (same
 * layout and format) with the head object removed afterwards.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, inject, test } from "vitest";
import { HEAD_OBJECT_KEY, listAllLevels } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { tempDir } from "../router/helpers.js";
import { awsEnv, bundleForNode, runNode, s3Url, uniquePrefix } from "./support/examples.js";

const s3 = inject("s3");
const tmp = tempDir("pagecast-example-litestream-");
const prefix = uniquePrefix("litestream");
const store = new S3Store({
  bucket: s3.bucket,
  prefix,
  endpoint: s3.endpoint,
  region: s3.region,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
});

afterAll(async () => {
  await store.close();
  tmp.cleanup();
});

describe("example: reading a Litestream-layout replica", () => {
  test("lists the schema and answers a query, discovering files by LIST", async () => {
    const path = join(tmp.dir, "app.db");
    const db = new Database(path);
    db.pragma("journal_mode = wal");
    db.exec(
      "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, at INTEGER NOT NULL)",
    );
    db.exec("CREATE INDEX events_kind ON events (kind)");
    const replicator = await Replicator.start({
      db: path,
      store,
      syncInterval: 0,
      compaction: false,
    });
    const insert = db.prepare("INSERT INTO events (kind, at) VALUES (?, ?)");
    for (let batch = 0; batch < 3; batch++) {
      db.transaction(() => {
        for (let i = 0; i < 200; i++)
          insert.run(["click", "view", "buy"][i % 3]!, batch * 1000 + i);
      })();
      await replicator.sync();
    }
    await replicator.close();
    const query =
      "SELECT kind, count(*) AS n, max(at) AS last FROM events GROUP BY kind ORDER BY kind";
    const expected = db
      .prepare(query)
      .all()
      .map((r) => JSON.stringify(r));
    db.close();
    await store.deleteMany([HEAD_OBJECT_KEY]);
    const files = await listAllLevels(store);
    expect(files.length).toBeGreaterThan(2);

    const bundle = await bundleForNode("litestream-replica/read-replica.ts");
    const env = { ...awsEnv(s3), PAGECAST_REPLICA_URL: s3Url(s3, prefix) };
    const schema = await runNode(bundle, env);
    expect(schema.code, schema.stderr).toBe(0);
    const lines = schema.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^replica at TXID \d+ \(committed .*\), discovery: list, \d+ pages of 4096 bytes$/,
    );
    expect(lines.slice(1, 3)).toEqual([
      JSON.stringify({ name: "events", type: "table" }),
      JSON.stringify({ name: "events_kind", type: "index" }),
    ]);

    const counts = await runNode(bundle, env, [query]);
    expect(counts.code, counts.stderr).toBe(0);
    expect(counts.stdout.split("\n").slice(1, 4)).toEqual(expected);
    expect(counts.stdout).toMatch(/\d+ requests, \d+ of them for pages/);
  });
});
