/**
 * A long-lived replica across retention cycles (found by the soak): periodic
 * snapshots keep the writer's generation, so a following replica extends its
 * version incrementally; pages it has not seen change stay located in the
 * snapshot (and deltas) it first planned from. Once retention deletes those
 * files, a read inside a transaction failed with SQLITE_IOERR. The replica
 * must move to the head's new snapshot before retention can delete the old one.
 *
 * Against the in-memory store always, and Ceph RGW when PAGECAST_RGW_ENDPOINT is set.
 */
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, test } from "vitest";
import {
  listAllLevels,
  MemoryStore,
  type ObjectStore,
  openReplica,
  S3Store,
} from "../../src/index.node.js";
import { Replicator } from "../../src/node.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retentionSuite(name: string, rounds: number, makeStore: () => Promise<ObjectStore>) {
  test(`${name}: a following replica keeps answering while retention deletes old snapshots`, async () => {
    const { dir, cleanup } = tempDir("pagecast-retention-");
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const insert = app.prepare("INSERT INTO t (v) VALUES (?)");
    app.transaction(() => {
      for (let i = 0; i < 3000; i++) insert.run("x".repeat(200));
    })();
    const store = await makeStore();
    // Scaled down: a snapshot, retention and compaction every few tens of ms.
    const replicator = await Replicator.start({
      db: dbPath,
      store,
      syncInterval: 0,
      snapshotInterval: 40,
      retention: 40,
      retentionGrace: 1,
      compaction: { l1: 1, l2: 1, l3: 1 },
    });
    cleanups.push(() => replicator.close());
    const first = (await listAllLevels(store)).find((f) => f.level === 9)!.key;
    // A tiny cache: most pages come from storage on every scan.
    const replica = await openReplica({
      store,
      pollIntervalMs: 0,
      // Every scan sees the newest version: no bound on the wait for its poll
      // (the default 1 s is passed by storage round trips on a loaded machine).
      pollWaitMs: Number.POSITIVE_INFINITY,
      cacheBytes: 65536,
      sqliteCacheBytes: 65536,
    });
    cleanups.push(() => replica.close());
    const scan = () =>
      replica.transaction((tx) => tx.values("SELECT count(*), sum(length(v)) FROM t"));
    expect(await scan()).toEqual([[3000, 600_000]]);
    for (let round = 1; round <= rounds; round++) {
      await sleep(50);
      app.prepare("UPDATE t SET v = ? WHERE id = 3000").run(String(round % 10).repeat(200));
      insert.run("z");
      await replicator.sync();
      await replicator.compactNow();
      // Every version, in one read transaction, from a replica that has been following all along.
      expect(await scan(), `round ${round}`).toEqual([[3000 + round, 600_000 + round]]);
      expect(replica.status().txid).toBe(replicator.position.txid);
    }
    // Retention did delete what the replica first planned from.
    const left = await listAllLevels(store);
    expect(left.some((f) => f.key === first)).toBe(false);
    expect(replicator.stats().retentionDeletes).toBeGreaterThan(rounds);
    expect(replica.status().lastError).toBeNull();
  });
}

describe("replica across retention cycles", () => {
  retentionSuite("memory", 12, async () => new MemoryStore());

  const endpoint = process.env.PAGECAST_RGW_ENDPOINT;
  const credentials = {
    accessKeyId: process.env.PAGECAST_RGW_ACCESS_KEY ?? "S3RVER",
    secretAccessKey: process.env.PAGECAST_RGW_SECRET_KEY ?? "S3RVER",
  };
  if (endpoint) {
    // Fewer rounds: every scan reads most pages over the network.
    retentionSuite("Ceph RGW", 5, async () => {
      const bucket = `pagecast-retention-${Date.now().toString(36)}`;
      const client = new S3Client({
        endpoint,
        region: "us-east-1",
        forcePathStyle: true,
        credentials,
      });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      client.destroy();
      const store = new S3Store({ bucket, prefix: "db", endpoint, credentials });
      cleanups.push(async () => {
        const page = await store.list();
        await store.deleteMany(page.objects.map((o) => o.key));
        await store.close();
      });
      return store;
    });
  }
});
