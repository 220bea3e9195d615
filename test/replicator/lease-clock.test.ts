/**
 * The lease under skewed clocks: never judged by comparing absolute times
 * written on one host with another host's clock. A crashed writer whose clock
 * ran 400 days ahead locks nobody out for long; a live writer whose clock is
 * 20 minutes behind is not taken over. Judged on the storage server's clock
 * (memory store, S3 on fauxqs and RGW), or by watching for renewals on this
 * host's monotonic clock when the store has no server clock (file store).
 * Hosts are played with the `hostname` option; clocks with `now`.
 */
import { afterEach, describe, expect, inject, test } from "vitest";
import { LEASE_KEY, Lease } from "../../src/replicator/lease.js";
import { LeaseHeldError, LeaseLostError } from "../../src/replicator/replicator-error.js";
import { FileStore } from "../../src/storage/file-store.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { createBucket, rgwServer } from "../support/s3-server.js";
import { tempDir } from "./helpers.js";

const DAY = 86_400_000;
const ahead400Days = () => Date.now() + 400 * DAY;
const behind20Min = () => Date.now() - 20 * 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The suite for stores that know the server's time (lastModified is judged on it). */
function serverClockSuite(name: string, makeStore: () => Promise<ObjectStore>, ttlMs: number) {
  describe(name, () => {
    test("a crashed writer whose clock is 400 days ahead holds the lease one lifetime, not 400 days", async () => {
      const store = await makeStore();
      expect(store.serverTime).toBeTypeOf("function");
      await Lease.acquire(store, {
        writerId: "crashed",
        hostname: "host-a",
        now: ahead400Days,
        ttlMs,
      });
      // host-b right away: the lease was renewed a moment ago (server's clock).
      const early = await Lease.acquire(store, { writerId: "b", hostname: "host-b" }).catch(
        (e: unknown) => e,
      );
      expect(early).toBeInstanceOf(LeaseHeldError);
      expect((early as LeaseHeldError).expiresInMs).toBeLessThanOrEqual(ttlMs + 2_000);
      expect((early as Error).message).toMatch(/lapses in \d+ s unless renewed/);
      await sleep(ttlMs + 2_100);
      const taken = await Lease.acquire(store, { writerId: "b", hostname: "host-b" });
      expect(taken.record.writerId).toBe("b");
    });

    test("a live writer whose clock is 20 minutes behind is not taken over", async () => {
      const store = await makeStore();
      const live = await Lease.acquire(store, {
        writerId: "live",
        hostname: "host-a",
        now: behind20Min,
        ttlMs: 60_000,
      });
      const error = await Lease.acquire(store, { writerId: "b", hostname: "host-b" }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LeaseHeldError);
      expect((error as LeaseHeldError).holder.writerId).toBe("live");
      // Still the holder: its renewal succeeds.
      await live.ensure();
      await live.release();
      // Released: free at once, whatever the clocks.
      expect(
        (await Lease.acquire(store, { writerId: "b", hostname: "host-b" })).record.writerId,
      ).toBe("b");
    });
  });
}

serverClockSuite("lease clocks (memory store)", async () => new MemoryStore(), 600);

const s3 = inject("s3");
let s3n = 0;
serverClockSuite(
  "lease clocks (S3 on fauxqs)",
  async () => {
    const store = new S3Store({
      bucket: s3.bucket,
      prefix: `lease-clock-${Date.now().toString(36)}-${++s3n}`,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    cleanups.push(() => store.close());
    return store;
  },
  1_000,
);

const rgw = rgwServer();
describe.skipIf(!rgw)("on Ceph RGW", () => {
  const bucket = `pagecast-lease-clock-${Date.now().toString(36)}`;
  let created: Promise<void> | undefined;
  let n = 0;
  serverClockSuite(
    "lease clocks (RGW)",
    async () => {
      created ??= createBucket(rgw!.endpoint, bucket, rgw!.credentials);
      await created;
      const store = new S3Store({
        bucket,
        prefix: `l${++n}`,
        endpoint: rgw!.endpoint,
        credentials: rgw!.credentials,
      });
      cleanups.push(() => store.close());
      return store;
    },
    1_000,
  );
});

describe("lease clocks without a server clock (file store shared by hosts)", () => {
  function fileStore(): FileStore {
    const { dir, cleanup } = tempDir("pagecast-lease-clock-");
    cleanups.push(cleanup);
    const store = new FileStore({ root: dir, fsync: false });
    expect((store as ObjectStore).serverTime).toBeUndefined();
    return store;
  }

  test("a crashed writer 400 days ahead: the contender watches one lifetime, then takes over", async () => {
    const store = fileStore();
    await Lease.acquire(store, {
      writerId: "crashed",
      hostname: "host-a",
      now: ahead400Days,
      ttlMs: 500,
    });
    const waits: number[] = [];
    const started = performance.now();
    const taken = await Lease.acquire(store, {
      writerId: "b",
      hostname: "host-b",
      clockToleranceMs: 100,
      onWait: (info) => {
        expect(info.holder.writerId).toBe("crashed");
        waits.push(info.waitMs);
      },
    });
    const waited = performance.now() - started;
    expect(taken.record.writerId).toBe("b");
    // It waited for the holder's lifetime (from the document), not 400 days nor nothing.
    expect(waits).toEqual([600]);
    expect(waited).toBeGreaterThanOrEqual(550);
    expect(waited).toBeLessThan(10_000);
  });

  test("a live writer 20 minutes behind keeps renewing: the contender sees it and backs off", async () => {
    const store = fileStore();
    const live = await Lease.acquire(store, {
      writerId: "live",
      hostname: "host-a",
      now: behind20Min,
      ttlMs: 400,
    });
    // The writer's writes, each preceded by ensure() (renews past half its lifetime).
    let writing = true;
    const writes = (async () => {
      while (writing) {
        await live.ensure();
        await sleep(50);
      }
    })();
    const error = await Lease.acquire(store, {
      writerId: "b",
      hostname: "host-b",
      clockToleranceMs: 100,
    }).catch((e: unknown) => e);
    writing = false;
    await writes;
    expect(error).toBeInstanceOf(LeaseHeldError);
    expect((error as Error).message).toMatch(/renewed its lease while this one waited/);
    expect(live.lost).toBe(false);
  });

  test("the wait can be aborted", async () => {
    const store = fileStore();
    await Lease.acquire(store, { writerId: "a", hostname: "host-a", ttlMs: 60_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      Lease.acquire(store, { writerId: "b", hostname: "host-b", signal: controller.signal }),
    ).rejects.toMatchObject({ code: "STORE_ABORTED" });
  });
});

describe("lease renewal schedule", () => {
  test("a holder whose wall clock is frozen still renews, on its monotonic clock", async () => {
    const store = new MemoryStore();
    const frozen = Date.now();
    const lease = await Lease.acquire(store, {
      writerId: "frozen",
      hostname: "host-a",
      now: () => frozen,
      ttlMs: 600,
    });
    const first = (await store.head(LEASE_KEY))!.etag;
    await lease.ensure();
    expect((await store.head(LEASE_KEY))!.etag).toBe(first);
    await sleep(350);
    await lease.ensure();
    const renewed = (await store.head(LEASE_KEY))!.etag;
    expect(renewed).not.toBe(first);
    // Renewed on the server's clock: another host sees it held.
    await sleep(350);
    await expect(
      Lease.acquire(store, { writerId: "b", hostname: "host-b", clockToleranceMs: 100 }),
    ).rejects.toBeInstanceOf(LeaseHeldError);
  });

  test("a holder taken over after going idle stops with LeaseLostError", async () => {
    const store = new MemoryStore();
    const idle = await Lease.acquire(store, {
      writerId: "idle",
      hostname: "host-a",
      ttlMs: 300,
    });
    await sleep(450);
    await Lease.acquire(store, { writerId: "b", hostname: "host-b", clockToleranceMs: 50 });
    await expect(idle.ensure()).rejects.toBeInstanceOf(LeaseLostError);
  });

  test("documents written now keep every field older writers read", async () => {
    const store = new MemoryStore();
    await Lease.acquire(store, { writerId: "w", ttlMs: 10_000 });
    const doc = JSON.parse(new TextDecoder().decode((await store.get(LEASE_KEY)).body!));
    expect(doc).toMatchObject({
      format: "pagecast-lease",
      version: 1,
      writerId: "w",
      ttlMs: 10_000,
    });
    for (const field of ["hostname", "pid", "acquiredAt", "expiresAt", "renewedAt"]) {
      expect(typeof doc[field]).toMatch(/number|string/);
    }
    expect(doc.expiresAt - doc.acquiredAt).toBe(10_000);
    // An older writer's document (no ttlMs) is read, with this writer's lifetime as the guess.
    const old = { ...doc, writerId: "old", hostname: "host-old" };
    delete old.ttlMs;
    delete old.renewedAt;
    await store.put(LEASE_KEY, new TextEncoder().encode(JSON.stringify(old)));
    await expect(
      Lease.acquire(store, { writerId: "new", hostname: "host-new", ttlMs: 60_000 }),
    ).rejects.toMatchObject({ code: "LEASE_HELD", holder: { writerId: "old" } });
  });

  test("a huge lease object is replaced without being downloaded", async () => {
    const store = new MemoryStore();
    await store.put(LEASE_KEY, new Uint8Array(8 * 1024 * 1024).fill(0x20));
    const before = store.counters().bytesIn;
    const lease = await Lease.acquire(store, { writerId: "w" });
    expect(lease.record.writerId).toBe("w");
    expect(store.counters().bytesIn - before).toBeLessThan(64 * 1024);
    expect((await store.head(LEASE_KEY))!.size).toBeLessThan(1024);
  });
});
