/**
 * Acceptance: single writer. A second replicator fails at start naming the
 * holder; a writer that lost the path to another stops with a typed error and
 * never overwrites the other's data. Against the in-memory store always, and
 * against real S3 (Ceph RGW) when PAGECAST_RGW_ENDPOINT is set.
 */
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, test } from "vitest";
import { HEAD_OBJECT_KEY, parseHeadObject } from "../../src/layout/index.js";
import { LEASE_KEY, Lease } from "../../src/replicator/lease.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { LeaseHeldError, LeaseLostError } from "../../src/replicator/replicator-error.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function setup() {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  return { dir, dbPath, app };
}

function leaseSuite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(name, () => {
    test("a second replicator fails at start naming the holder; after close it can start", async () => {
      const { dbPath, app } = setup();
      const store = await makeStore();
      const r1 = await Replicator.start({
        db: dbPath,
        store,
        syncInterval: 0,
        writerId: "first-writer",
      });
      cleanups.push(() => r1.close());
      let caught: unknown;
      try {
        await Replicator.start({ db: dbPath, store, syncInterval: 0, writerId: "second-writer" });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(LeaseHeldError);
      expect((caught as LeaseHeldError).code).toBe("LEASE_HELD");
      expect((caught as Error).message).toContain("first-writer");
      expect((caught as LeaseHeldError).holder.pid).toBe(process.pid);
      app.prepare("INSERT INTO t (v) VALUES ('a')").run();
      await r1.sync();
      await r1.close();
      const r2 = await Replicator.start({
        db: dbPath,
        store,
        syncInterval: 0,
        writerId: "second-writer",
      });
      cleanups.push(() => r2.close());
      app.prepare("INSERT INTO t (v) VALUES ('b')").run();
      const pos = await r2.sync();
      expect(pos.txid).toBeGreaterThan(2);
    });

    test("a writer whose lease expired and was taken over stops with LeaseLostError", async () => {
      const { dir, dbPath, app } = setup();
      const store = await makeStore();
      const r1 = await Replicator.start({
        db: dbPath,
        store,
        syncInterval: 0,
        leaseTtl: 400,
        writerId: "old-writer",
      });
      cleanups.push(() => r1.close().catch(() => {}));
      app.prepare("INSERT INTO t (v) VALUES ('a')").run();
      await r1.sync();
      // Idle: no renewal on a timer, so the lease runs out.
      await new Promise((r) => setTimeout(r, 500));
      const r2 = await Replicator.start({
        db: dbPath,
        store,
        syncInterval: 0,
        leaseTtl: 60_000,
        writerId: "new-writer",
      });
      cleanups.push(() => r2.close());
      app.prepare("INSERT INTO t (v) VALUES ('b')").run();
      await expect(r1.sync()).rejects.toBeInstanceOf(LeaseLostError);
      // Stopped for good, with a clear error.
      await expect(r1.sync()).rejects.toMatchObject({ code: "REPLICATOR_CLOSED" });
      const pos = await r2.sync();
      const head = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
      expect(head.writerId).toBe("new-writer");
      expect(head.txid).toBe(pos.txid);
      const out = join(dir, "restored.db");
      await restore(store, out);
      expect(dumpFile(out)).toBe(dump(app));
    });

    test("a writer whose head was replaced by another stops without overwriting it", async () => {
      const { dbPath, app } = setup();
      const store = await makeStore();
      const r1 = await Replicator.start({ db: dbPath, store, syncInterval: 0, writerId: "w1" });
      cleanups.push(() => r1.close().catch(() => {}));
      // Another writer (e.g. with a clock far ahead) rewrites the head.
      const headBytes = (await store.get(HEAD_OBJECT_KEY)).body!;
      const foreign = { ...parseHeadObject(headBytes), writerId: "intruder" };
      const { serializeHeadObject } = await import("../../src/layout/index.js");
      await store.put(HEAD_OBJECT_KEY, serializeHeadObject(foreign));
      app.prepare("INSERT INTO t (v) VALUES ('x')").run();
      await expect(r1.sync()).rejects.toBeInstanceOf(LeaseLostError);
      expect(parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!).writerId).toBe("intruder");
    });

    test("lease takeover is a CAS: two contenders for an expired lease, one wins", async () => {
      const store = await makeStore();
      let clock = 1000;
      const first = await Lease.acquire(store, { writerId: "a", ttlMs: 10, now: () => clock });
      expect(first.record.writerId).toBe("a");
      const results = await Promise.allSettled([
        Lease.acquire(store, { writerId: "b", ttlMs: 60_000, now: () => 5000 }),
        Lease.acquire(store, { writerId: "c", ttlMs: 60_000, now: () => 5000 }),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won.length).toBe(1);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(LeaseHeldError);
      const stored = JSON.parse(new TextDecoder().decode((await store.get(LEASE_KEY)).body!));
      expect(stored.writerId).toBe((won[0] as PromiseFulfilledResult<Lease>).value.record.writerId);
      clock = 5000;
      await expect(first.ensure()).rejects.toBeInstanceOf(LeaseLostError);
    });
  });
}

leaseSuite("lease (memory store)", async () => new MemoryStore());

const rgw = process.env.PAGECAST_RGW_ENDPOINT;
describe.skipIf(!rgw)("lease on Ceph RGW", () => {
  const credentials = {
    accessKeyId: process.env.PAGECAST_RGW_ACCESS_KEY ?? "S3RVER",
    secretAccessKey: process.env.PAGECAST_RGW_SECRET_KEY ?? "S3RVER",
  };
  const bucket = `pagecast-lease-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  let created = false;
  let n = 0;
  leaseSuite("lease (RGW)", async () => {
    if (!created) {
      const c = new S3Client({
        endpoint: rgw!,
        region: "us-east-1",
        forcePathStyle: true,
        credentials,
      });
      await c.send(new CreateBucketCommand({ Bucket: bucket }));
      c.destroy();
      created = true;
    }
    const store = new S3Store({ bucket, prefix: `lease-${++n}`, endpoint: rgw!, credentials });
    cleanups.push(() => store.close());
    return store;
  });
});
