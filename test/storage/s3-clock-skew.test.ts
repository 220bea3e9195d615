/**
 * Clock skew against servers that refuse skewed signatures: the fault proxy
 * (its own server clock, S3's 15-minute limit, `RequestTimeTooSkewed` with
 * `ServerTime`) always, Ceph RGW when PAGECAST_RGW_ENDPOINT is set. The
 * host's clock is played by the S3 client's `systemClockOffset` (an
 * injectable clock: the client signs as if its clock were off by that much)
 * or by the proxy's server clock. The first request is refused, the SDK takes
 * the server's offset from the answer and the store repeats it, even with
 * retries off; later requests are signed right.
 */
import { afterEach, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import type { AttemptFailure } from "../../src/storage/object-store.js";
import { S3Store, type S3StoreOptions } from "../../src/storage/s3-store.js";
import type { StoreRequestError } from "../../src/storage/store-errors.js";
import { type FaultProxy, startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { openApp, tempDir } from "../replicator/helpers.js";
import { createBucket, rgwServer } from "../support/s3-server.js";

const s3 = inject("s3");
const DAY = 86_400_000;
const text = (s: string) => new TextEncoder().encode(s);
let n = 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function proxied(clockOffsetMs: number): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: s3.endpoint, clock: { offsetMs: clockOffsetMs } });
  cleanups.push(() => proxy.close());
  return proxy;
}

function store(endpoint: string, options: Partial<S3StoreOptions> = {}): S3Store {
  const s = new S3Store({
    bucket: s3.bucket,
    prefix: `skew-${Date.now().toString(36)}-${++n}`,
    endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...options,
  });
  cleanups.push(() => s.close());
  return s;
}

describe("S3 requests with a skewed clock", () => {
  test.each([
    ["20 minutes behind", -20 * 60_000],
    ["400 days ahead", 400 * DAY],
  ])(
    "host clock %s: refused once, corrected, then every request passes (maxAttempts 1)",
    async (_name, offset) => {
      const proxy = await proxied(0);
      const failures: AttemptFailure[] = [];
      const s = store(proxy.endpoint, {
        retry: { maxAttempts: 1, onAttemptFailure: (f) => failures.push(f) },
        clientConfig: { systemClockOffset: offset },
      });
      await s.put("k", text("v"));
      expect(proxy.skewRefusals).toBe(1);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ willRetry: true, delayMs: 0 });
      expect(failures[0]!.error).toMatchObject({
        status: 403,
        serverCode: "RequestTimeTooSkewed",
        clockSkew: true,
        retryable: true,
      });
      expect(failures[0]!.reason).toMatch(/RequestTimeTooSkewed \(clock skew/);
      for (let i = 0; i < 5; i++)
        expect(new TextDecoder().decode((await s.get("k")).body)).toBe("v");
      await s.list();
      await s.deleteMany(["k"]);
      expect(proxy.skewRefusals).toBe(1);
      expect(s.health().failingSince).toBeNull();
    },
  );

  test("a HEAD as the first request (its refusal has no body, hence no code) is corrected too", async () => {
    const proxy = await proxied(0);
    const s = store(proxy.endpoint, {
      retry: { maxAttempts: 1 },
      clientConfig: { systemClockOffset: -20 * 60_000 },
    });
    expect(await s.head("absent")).toBeUndefined();
    expect(proxy.skewRefusals).toBe(1);
    await s.put("k", text("v"));
    expect((await s.head("k"))?.size).toBe(1);
    expect(proxy.skewRefusals).toBe(1);
  });

  test("the server's clock 400 days ahead: the store's serverTime follows the server", async () => {
    const proxy = await proxied(400 * DAY);
    const s = store(proxy.endpoint);
    expect(s.serverTime()).toBeUndefined();
    await s.put("k", text("v"));
    expect(proxy.skewRefusals).toBe(1);
    const skew = s.serverTime()! - Date.now();
    expect(Math.abs(skew - 400 * DAY)).toBeLessThan(5_000);
  });

  test("a server that keeps refusing is not retried forever (two corrections at most)", async () => {
    // A refusal without any server time cannot be corrected.
    const proxy = await startFaultProxy(s3.endpoint, () => ({
      status: 403,
      code: "RequestTimeTooSkewed",
    }));
    cleanups.push(() => proxy.close());
    const s = store(proxy.endpoint, { retry: { maxAttempts: 1 } });
    await expect(s.get("k")).rejects.toMatchObject({
      code: "STORE_REQUEST_FAILED",
      status: 403,
      serverCode: "RequestTimeTooSkewed",
    });
    expect(proxy.seen).toHaveLength(3);
  });

  test("Replicator.start and openReplica start through a skewed clock", async () => {
    const proxy = await proxied(0);
    const { dir, cleanup } = tempDir("pagecast-skew-");
    cleanups.push(cleanup);
    const db = `${dir}/app.db`;
    const app = openApp(db);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('written')");
    const writerStore = store(proxy.endpoint, {
      clientConfig: { systemClockOffset: -20 * 60_000 },
    });
    const r = await Replicator.start({ db, store: writerStore, syncInterval: 0 });
    cleanups.push(() => r.close());
    await r.sync();
    const readerStore = new S3Store({
      bucket: s3.bucket,
      prefix: writerStore.prefix.replace(/\/$/, ""),
      endpoint: proxy.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      clientConfig: { systemClockOffset: 400 * DAY },
    });
    cleanups.push(() => readerStore.close());
    const replica = await openReplica({ store: readerStore, wasm: readSqliteWasm });
    cleanups.push(() => replica.close());
    expect(await replica.values("SELECT v FROM t")).toEqual([["written"]]);
    expect(proxy.skewRefusals).toBeGreaterThanOrEqual(2);
  });
});

const rgw = rgwServer();
describe.skipIf(!rgw)("clock skew on Ceph RGW (a real server refusing skewed signatures)", () => {
  test("a client 20 minutes behind, then one 400 days ahead: refused once each, then served", async () => {
    const { endpoint, credentials } = rgw!;
    const bucket = `pagecast-skew-${Date.now().toString(36)}`;
    await createBucket(endpoint, bucket, credentials);
    for (const offset of [-20 * 60_000, 400 * DAY]) {
      const failures: AttemptFailure[] = [];
      const s = new S3Store({
        bucket,
        prefix: `o${offset}`,
        endpoint,
        credentials,
        retry: { maxAttempts: 1, onAttemptFailure: (f) => failures.push(f) },
        clientConfig: { systemClockOffset: offset },
      });
      cleanups.push(() => s.close());
      await s.put("k", text("v"));
      expect(new TextDecoder().decode((await s.get("k")).body)).toBe("v");
      expect(
        failures.map((f) => [
          (f.error as StoreRequestError).status,
          (f.error as StoreRequestError).serverCode,
        ]),
      ).toEqual([[403, "RequestTimeTooSkewed"]]);
      await s.deleteMany(["k"]);
    }
  });
});
