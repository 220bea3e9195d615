/**
 * The loopback fault proxy in front of S3 (fauxqs; RGW when
 * PAGECAST_RGW_ENDPOINT is set): every kind of fault happens on the wire and
 * is counted, the S3 store's retries absorb the transient ones, and a replica
 * reading through it at a 10% fault rate answers exactly like the primary.
 */
import { afterEach, describe, expect, inject, test } from "vitest";
import { S3Store } from "../../src/storage/s3-store.js";
import { PreconditionFailedError, StoreRequestError } from "../../src/storage/store-errors.js";
import { type FaultProxy, startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import type { FaultKind } from "../../src/testing/faulty-store.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";
import {
  differentialQuery,
  randomQuery,
  randomWrite,
  SCHEMA,
  seedRows,
  tally,
  topUser,
} from "./helpers.js";

interface Target {
  name: string;
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  createBucket: boolean;
  /** Honours If-None-Match on PUT (fauxqs ignores it). */
  conditionalPuts: boolean;
}

const s3 = inject("s3");
const targets: Target[] = [
  {
    name: "fauxqs",
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    createBucket: false,
    conditionalPuts: false,
  },
];
if (process.env.PAGECAST_RGW_ENDPOINT) {
  targets.push({
    name: "rgw",
    endpoint: process.env.PAGECAST_RGW_ENDPOINT,
    bucket: `pagecast-rel-${Date.now().toString(36)}`,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    createBucket: true,
    conditionalPuts: true,
  });
}

/**
 * Rounds of the replica-behind-the-proxy test: PAGECAST_PROXY_ROUNDS, else a
 * quarter of PAGECAST_FAULT_ROUNDS (every request crosses the wire: 400
 * rounds take ~25 min), else 12.
 */
const ROUNDS = Number(
  process.env.PAGECAST_PROXY_ROUNDS ??
    (process.env.PAGECAST_FAULT_ROUNDS
      ? Math.ceil(Number(process.env.PAGECAST_FAULT_ROUNDS) / 4)
      : 12),
);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
let n = 0;

async function ensureBucket(t: Target): Promise<void> {
  if (!t.createBucket) return;
  const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    endpoint: t.endpoint,
    region: t.region,
    credentials: t.credentials,
    forcePathStyle: true,
  });
  await client.send(new CreateBucketCommand({ Bucket: t.bucket })).catch(() => {});
  client.destroy();
}

function storeVia(
  t: Target,
  proxy: FaultProxy,
  prefix: string,
  maxAttempts = 6,
  attemptTimeoutMs = 400,
): S3Store {
  const store = new S3Store({
    bucket: t.bucket,
    prefix,
    endpoint: proxy.endpoint,
    region: t.region,
    credentials: t.credentials,
    retry: { baseDelayMs: 1, maxDelayMs: 20, maxAttempts, attemptTimeoutMs },
  });
  cleanups.push(() => store.close());
  return store;
}

async function proxyTo(
  t: Target,
  options: Parameters<typeof startFaultProxy>[0] extends infer O
    ? Omit<Extract<O, object>, "target">
    : never,
) {
  await ensureBucket(t);
  const proxy = await startFaultProxy({ target: t.endpoint, hangMs: 1000, ...options });
  cleanups.push(() => proxy.close());
  return proxy;
}

describe.each(targets)("fault proxy over $name", (t) => {
  // Retries are counted around the ranged GET alone: on a freshly started RGW the first
  // object PUT creates the data pool (~2 s), so the setup PUT itself can exceed the 400 ms
  // attempt timeout and be retried; that is RGW warming up, not the fault under test.
  test("each transient kind is injected once, counted, and absorbed by the store's retries", async () => {
    const kinds: FaultKind[] = ["error500", "slowDown", "timeout", "reset", "truncate", "slow"];
    for (const kind of kinds) {
      let armed = true;
      const proxy = await proxyTo(t, {
        plan: (req) => {
          if (armed && req.method === "GET" && !(req.url ?? "").includes("list-type")) {
            armed = false;
            return { kind };
          }
          return undefined;
        },
      });
      const store = storeVia(t, proxy, `kinds-${Date.now().toString(36)}-${++n}`);
      await store.put("obj", text("x".repeat(5000)));
      const before = store.counters();
      const seenBefore = proxy.seen.length;
      const got = await store.get("obj", { range: { offset: 10, length: 3000 } });
      expect(got.body, kind).toHaveLength(3000);
      expect(proxy.injected[kind], kind).toBe(1);
      const c = store.counters();
      const attempts = kind === "slow" ? 1 : 2;
      expect(c.retries - before.retries, kind).toBe(attempts - 1);
      expect(c.requests.get - before.requests.get, kind).toBe(attempts);
      // What reached the wire: one GET per counted attempt (the SDK itself never retries).
      expect(proxy.seen.length - seenBefore, kind).toBe(attempts);
      await proxy.close();
    }
  });

  test("412 from a racing writer is final; a lost PUT response makes the retry ambiguous", async () => {
    const proxy = await proxyTo(t, {});
    const prefix = `race-${Date.now().toString(36)}-${++n}`;
    const store = storeVia(t, proxy, prefix);
    let plan: FaultKind | undefined = "precondition";
    const proxy2 = await proxyTo(t, {
      plan: (req) => {
        if (req.method !== "PUT" || !plan) return undefined;
        const kind = plan;
        plan = undefined;
        return { kind };
      },
    });
    const racing = storeVia(t, proxy2, prefix);
    await expect(racing.put("lease", text("a"), { ifNoneMatch: "*" })).rejects.toMatchObject({
      code: "STORE_PRECONDITION_FAILED",
      ambiguous: false,
    });
    expect(proxy2.injected.precondition).toBe(1);
    expect(racing.counters().retries).toBe(0);
    expect(await store.head("lease")).toBeUndefined();

    // The create-only PUT reaches the server; its answer is lost; the retry finds the key taken.
    if (!t.conditionalPuts) return;
    plan = "lostResponse";
    const err = await racing.put("lease", text("b"), { ifNoneMatch: "*" }).catch((e: unknown) => e);
    expect(proxy2.injected.lostResponse).toBe(1);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err).toMatchObject({ ambiguous: true });
    expect(str((await store.get("lease")).body)).toBe("b");
  });

  test("a bit flip on the wire reaches the caller (S3 response checksums are not validated)", async () => {
    let armed = false;
    const proxy = await proxyTo(t, {
      plan: (req) => (armed && req.method === "GET" ? { kind: "bitflip" } : undefined),
    });
    const store = storeVia(t, proxy, `flip-${Date.now().toString(36)}-${++n}`);
    const body = new Uint8Array(4096).fill(0x33);
    await store.put("obj", body);
    armed = true;
    const got = (await store.get("obj")).body!;
    expect(proxy.injected.bitflip).toBe(1);
    let differing = 0;
    for (let i = 0; i < body.length; i++) if (got[i] !== body[i]) differing++;
    // Only what reads the bytes (the LTX frame checks) can notice: see replica-faults.test.ts.
    expect(differing).toBe(1);
  });

  test("10% random faults on every request: every store operation completes with the right data", async () => {
    const proxy = await proxyTo(t, {
      rate: 0.1,
      seed: 77,
      kinds: ["error500", "slowDown", "timeout", "reset", "truncate", "slow", "lostResponse"],
      slowMs: 5,
      hangMs: 0,
    });
    const store = storeVia(t, proxy, `rand-${Date.now().toString(36)}-${++n}`, 8);
    const r = prng(5);
    const expected = new Map<string, string>();
    for (let i = 0; i < 120; i++) {
      const key = `k${r.int(0, 15)}`;
      const op = r.int(0, 9);
      if (op < 4) {
        const value = `${key}-${i}-`.padEnd(r.int(10, 3000), "v");
        await store.put(key, text(value));
        expected.set(key, value);
      } else if (op < 8) {
        const want = expected.get(key);
        if (want === undefined)
          await expect(store.get(key)).rejects.toMatchObject({ code: "STORE_NOT_FOUND" });
        else expect(str((await store.get(key)).body)).toBe(want);
      } else if (op < 9) {
        const listed = [];
        let token: string | undefined;
        do {
          const page = await store.list({
            maxKeys: 5,
            ...(token ? { continuationToken: token } : {}),
          });
          listed.push(...page.objects.map((o) => o.key));
          token = page.continuationToken;
        } while (token);
        expect(listed.sort()).toEqual([...expected.keys()].sort());
      } else {
        await store.deleteMany([key]);
        expected.delete(key);
      }
    }
    expect(proxy.faults).toBeGreaterThan(5);
    expect(store.counters().retries).toBeGreaterThan(0);
    console.info(
      `[fault-proxy ${t.name}] ${proxy.seen.length} requests, ${proxy.faults} faults ${JSON.stringify(proxy.injected)}`,
    );
  });

  test(
    `a replica behind the proxy at 10% faults answers like the primary (${ROUNDS} rounds)`,
    async () => {
      const r = prng(99);
      const proxy = await proxyTo(t, {
        rate: 0,
        seed: 4242,
        kinds: ["error500", "slowDown", "timeout", "reset", "truncate", "slow"],
        slowMs: 5,
        hangMs: 0,
      });
      const prefix = `replica-${Date.now().toString(36)}-${++n}`;
      await ensureBucket(t);
      const direct = new S3Store({
        bucket: t.bucket,
        prefix,
        endpoint: t.endpoint,
        region: t.region,
        credentials: t.credentials,
      });
      cleanups.push(() => direct.close());
      const writer = new ScriptedWriter(direct);
      cleanups.push(() => writer.close());
      await writer.commit(SCHEMA);
      await writer.commit(() => seedRows(writer.db, r, 400));
      const replica = await openReplica({
        // Short attempt timeouts: injected timeouts cost little (loopback answers in ms).
        store: storeVia(t, proxy, prefix, 6, 150),
        wasm: readSqliteWasm,
        pollIntervalMs: 0,
        cacheBytes: 64 * 1024,
      });
      cleanups.push(() => replica.close());
      proxy.rate = 0.1;
      const tl = tally();
      for (let round = 0; round < ROUNDS; round++) {
        await writer.commit(() => randomWrite(writer.db, r, round));
        if (round % 9 === 8) await writer.compact(1);
        const top = topUser(writer, writer.txid);
        for (let q = 0; q < 6; q++) {
          const [sql, params] = randomQuery(r, top);
          await differentialQuery(replica, writer, sql, params, tl, `${t.name} round ${round}`);
        }
      }
      proxy.rate = 0;
      await replica.poll();
      expect(replica.status().txid).toBe(writer.txid);
      expect(proxy.faults).toBeGreaterThan(10);
      // Retries absorb nearly everything; the few SQLITE_IOERR are retries exhausted, never wrong answers.
      expect(tl.equal).toBeGreaterThan(tl.ioErrors * 5);
      console.info(
        `[fault-proxy ${t.name}] replica: ${proxy.seen.length} requests, ${proxy.faults} faults ` +
          `${JSON.stringify(proxy.injected)}; ${tl.equal} equal, ${tl.ioErrors} SQLITE_IOERR, 0 wrong`,
      );
    },
    Math.max(120_000, ROUNDS * 4000),
  );
});

test("StoreRequestError is what a store reports when the proxy keeps failing", async () => {
  const proxy = await startFaultProxy({ target: s3.endpoint, rate: 1, kinds: ["slowDown"] });
  cleanups.push(() => proxy.close());
  const store = new S3Store({
    bucket: s3.bucket,
    prefix: `down-${Date.now().toString(36)}`,
    endpoint: proxy.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    retry: { baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 },
  });
  cleanups.push(() => store.close());
  const err = await store.get("k").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StoreRequestError);
  expect(err).toMatchObject({ retryable: true, status: 503, serverCode: "SlowDown" });
  expect(proxy.injected.slowDown).toBe(3);
  proxy.rate = 0;
  await store.put("k", text("back"));
  expect(str((await store.get("k")).body)).toBe("back");
});
