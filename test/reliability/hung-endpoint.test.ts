/**
 * An S3 endpoint that hangs, with the store's DEFAULT timeouts (the fault
 * tests elsewhere shorten them; these must not): a request against an
 * endpoint that accepts connections and never answers fails within a stated
 * bound with a typed error, the failure shows from the first timed-out
 * attempt (listener and health), a retry never rides on a dead keep-alive
 * connection, a dripping or stalled body is cut, and an endpoint that comes
 * back is used at once. The tests wait for real timeouts (10-30 s), so they
 * run concurrently.
 */
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import type { AttemptFailure } from "../../src/storage/object-store.js";
import { RETRY_DEFAULTS } from "../../src/storage/request-runner.js";
import { S3_TIMEOUT_DEFAULTS, S3Store } from "../../src/storage/s3-store.js";
import { StoreTimeoutError } from "../../src/storage/store-errors.js";
import { type FaultProxy, startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const s3 = inject("s3");
const run = `hung-${Date.now().toString(36)}`;
let n = 0;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c().catch(() => {});
});

/** The store's defaults, stated where the bounds below come from. */
const IDLE = S3_TIMEOUT_DEFAULTS.idleTimeoutMs;
const DEADLINE = RETRY_DEFAULTS.operationTimeoutMs;
/** Slack for a loaded 2-core machine (a bound on hangs, not a speed check). */
const SLACK = 8_000;

async function setup(plan?: Parameters<typeof startFaultProxy>[1]) {
  const proxy: FaultProxy = await startFaultProxy(s3.endpoint, plan);
  const store = new S3Store({
    bucket: s3.bucket,
    prefix: `${run}/${++n}`,
    endpoint: proxy.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    // No retry, timeout or deadline option: the defaults are what is tested.
  });
  const failures: (AttemptFailure & { at: number })[] = [];
  store.onAttemptFailure((f) => failures.push({ ...f, at: Date.now() }));
  cleanups.push(
    () => store.close(),
    () => proxy.close(),
  );
  return { proxy, store, failures };
}

describe.concurrent("S3 store against a hung endpoint, default timeouts", () => {
  test("a blackholed endpoint fails the request at its deadline, and shows from the first timeout", async () => {
    const { proxy, store, failures } = await setup();
    await store.put("k", new TextEncoder().encode("v"));
    proxy.blackhole = true;
    const started = Date.now();
    let healthAtFirstFailure: Date | null = null;
    store.onAttemptFailure(() => {
      healthAtFirstFailure ??= store.health().failingSince;
    });
    const error = await store.get("k").catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(error).toBeInstanceOf(StoreTimeoutError);
    expect(error).toMatchObject({ code: "STORE_TIMEOUT", retryable: true });
    expect((error as Error).message).toMatch(/no answer within 30 s/);
    expect(took).toBeGreaterThanOrEqual(DEADLINE - 500);
    expect(took).toBeLessThan(DEADLINE + SLACK);
    // The first attempt failed after the idle timeout, long before the request gave up.
    const first = failures[0]!;
    expect(first.reason).toBe("timeout: no data for 10 s");
    expect(first.willRetry).toBe(true);
    expect(first.at - started).toBeGreaterThanOrEqual(IDLE - 500);
    expect(first.at - started).toBeLessThan(IDLE + SLACK);
    expect(healthAtFirstFailure).not.toBeNull();
    expect(failures.at(-1)!.willRetry).toBe(false);
    expect(store.health().failingSince).not.toBeNull();
    expect(proxy.swallowed).toBeGreaterThanOrEqual(3);
    console.log(
      `blackhole: request failed after ${(took / 1000).toFixed(1)} s; first attempt failure reported after ${((first.at - started) / 1000).toFixed(1)} s; attempts ${failures.length}`,
    );
  });

  test("a replica's status shows the storage failing from the first timed-out attempt of a hung poll", async () => {
    const { proxy, store } = await setup();
    const { dir, cleanup } = tempDir("pagecast-hung-replica-");
    cleanups.push(async () => cleanup());
    const db = join(dir, "app.db");
    const app = openApp(db);
    cleanups.push(async () => app.close());
    app.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')");
    const r = await Replicator.start({ db, store, syncInterval: 0 });
    await r.sync();
    await r.close();
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    cleanups.push(() => replica.close());
    expect(replica.status().storage).toMatchObject({ failingSince: null, inFlight: 0 });
    proxy.blackhole = true;
    const started = Date.now();
    const polling = replica.poll().catch((e: unknown) => e);
    await sleep(2_000);
    // Hung, not failed yet: the request in flight shows.
    expect(replica.status().storage?.oldestInFlightSince).toBeInstanceOf(Date);
    expect(replica.status().storage?.failingSince).toBeNull();
    await sleep(IDLE - 2_000 + 2_000);
    const during = replica.status().storage!;
    expect(during.failingSince).toBeInstanceOf(Date);
    expect(during.lastError?.reason).toBe("timeout: no data for 10 s");
    expect(await polling).toBeInstanceOf(StoreTimeoutError);
    expect(Date.now() - started).toBeLessThan(DEADLINE + SLACK);
  });

  test("dead keep-alive connections: the retry connects afresh instead of trying the next dead one", async () => {
    const { proxy, store, failures } = await setup();
    await store.put("k", new TextEncoder().encode("v"));
    // Several requests at once leave several idle keep-alive connections.
    await Promise.all(Array.from({ length: 6 }, () => store.get("k")));
    const before = Math.max(...proxy.connections);
    expect(before).toBeGreaterThan(1);
    proxy.killOpenConnections();
    const started = Date.now();
    const got = await store.get("k");
    const took = Date.now() - started;
    expect(new TextDecoder().decode(got.body)).toBe("v");
    // One attempt lost on a dead connection, then a new connection.
    expect(proxy.swallowed).toBe(1);
    expect(failures).toHaveLength(1);
    expect(proxy.connections.at(-1)!).toBeGreaterThan(before);
    expect(took).toBeLessThan(IDLE + SLACK);
    expect(store.health().failingSince).toBeNull();
  });

  test("an endpoint back after a hang is used by the next attempt", async () => {
    const { proxy, store } = await setup();
    await store.put("k", new TextEncoder().encode("back"));
    proxy.blackhole = true;
    setTimeout(() => {
      proxy.blackhole = false;
    }, IDLE / 2);
    const started = Date.now();
    const got = await store.get("k");
    const took = Date.now() - started;
    expect(new TextDecoder().decode(got.body)).toBe("back");
    // The hung attempt ends at the idle timeout; the retry succeeds right away.
    expect(took).toBeLessThan(IDLE + SLACK);
    expect(store.health().failingSince).toBeNull();
  });

  test("a body that drips forever is cut by the attempt limit and the request by its deadline", async () => {
    let drip = false;
    const { proxy, store, failures } = await setup((req) =>
      drip && req.method === "GET" ? { drip: { bytes: 1, everyMs: 1000 } } : undefined,
    );
    await store.put("k", new Uint8Array(200).fill(7));
    drip = true;
    const started = Date.now();
    const error = await store.get("k").catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(error).toBeInstanceOf(StoreTimeoutError);
    expect(took).toBeLessThan(DEADLINE + SLACK);
    expect(failures[0]!.reason).toBe("timeout after 20 s");
    expect(proxy.injected.planned).toBe(2);
  });

  test("a body that stalls after its headers fails the attempt at the idle timeout; the retry succeeds", async () => {
    let stalls = 0;
    const { store, failures } = await setup((req) =>
      req.method === "GET" && stalls++ === 0 ? "stall" : undefined,
    );
    const body = new Uint8Array(100_000).fill(3);
    await store.put("k", body);
    const started = Date.now();
    const got = await store.get("k");
    const took = Date.now() - started;
    expect(got.body).toEqual(body);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.reason).toMatch(/^timeout/);
    expect(took).toBeLessThan(IDLE + SLACK);
  });
});

test("the S3 client the store builds carries the connect and idle timeouts", async () => {
  const store = new S3Store({
    bucket: s3.bucket,
    prefix: `${run}/config`,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  cleanups.push(() => store.close());
  await store.head("x");
  const handler = (
    store as unknown as {
      client: { config: { requestHandler: { httpHandlerConfigs(): Record<string, unknown> } } };
    }
  ).client.config.requestHandler;
  expect(handler.httpHandlerConfigs()).toMatchObject({
    connectionTimeout: S3_TIMEOUT_DEFAULTS.connectTimeoutMs,
    socketTimeout: S3_TIMEOUT_DEFAULTS.idleTimeoutMs - 3000,
  });
  expect(() => new S3Store({ bucket: "b", idleTimeoutMs: -1 })).toThrow(/idleTimeoutMs/);
});
