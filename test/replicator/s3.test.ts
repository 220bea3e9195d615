/**
 * Replication through the S3 backend (in-process fauxqs; it ignores
 * conditional puts, so only the data path is exercised here: the lease and
 * CAS paths are covered by lease.test.ts on memory and RGW).
 */
import { join } from "node:path";
import { afterEach, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { dump, dumpFile, integrity, openApp, tempDir, verifyAllFiles } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe("S3 (fauxqs)", () => {
  test("replicate, compact, restore latest and a past TXID through S3", async () => {
    const s3 = inject("s3");
    const store = new S3Store({
      bucket: s3.bucket,
      prefix: `replicator-${Date.now().toString(36)}`,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    cleanups.push(() => store.close());
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, checkpointPages: 20 });
    cleanups.push(() => r.close());
    const dumps = new Map<number, string>();
    for (let i = 0; i < 15; i++) {
      app.prepare("INSERT INTO t (v) VALUES (?)").run(Buffer.alloc(3000, i));
      const pos = await r.sync();
      dumps.set(pos.txid, dump(app));
      if (i === 9) await r.compactNow();
    }
    expect(await verifyAllFiles(store)).toBeGreaterThan(10);
    const latest = join(dir, "latest.db");
    const res = await restore(store, latest);
    expect(res.checksumVerified).toBe("head");
    expect(dumpFile(latest)).toBe(dump(app));
    expect(integrity(latest)).toBe("ok");
    const [txid, expected] = [...dumps.entries()][4]!;
    const past = join(dir, "past.db");
    await restore(store, past, { txid });
    expect(dumpFile(past)).toBe(expected);
  });
});
