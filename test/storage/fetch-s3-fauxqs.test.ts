/**
 * The storage contract against FetchS3Store (fetch + pagecast's SigV4, no AWS SDK:
 * what Workers, browsers, Deno and Bun use for s3://) on fauxqs, and on Ceph
 * RGW when PAGECAST_RGW_ENDPOINT is set (conditional puts are honoured there).
 * Twice: over the runtime's fetch with WebCrypto signatures (Workers, browsers),
 * and over node:http with node:crypto signatures (what Node readers use).
 */
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { FetchS3Store, type FetchS3StoreOptions } from "../../src/storage/fetch-s3-store.js";
import { nodeHttpFetch } from "../../src/storage/node-http-fetch.js";
import type { AttemptFailure } from "../../src/storage/object-store.js";
import { nodeSigV4Crypto } from "../../src/storage/sigv4-node.js";
import { startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { createBucket, rgwServer } from "../support/s3-server.js";
import { defineStoreContract } from "./contract.js";

const s3 = inject("s3");
const run = `fetch-contract-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let n = 0;

const TRANSPORTS: [string, Pick<FetchS3StoreOptions, "fetch" | "signingCrypto">][] = [
  ["fetch + WebCrypto", {}],
  [
    "node:http + node:crypto",
    { fetch: nodeHttpFetch as unknown as typeof fetch, signingCrypto: nodeSigV4Crypto },
  ],
];

describe.each(TRANSPORTS)("FetchS3Store over %s", (transport, runtime) => {
  // fauxqs ignores conditions on PUT and sorts listings with localeCompare.
  defineStoreContract(
    `FetchS3 on fauxqs (${transport})`,
    async () =>
      new FetchS3Store({
        ...runtime,
        bucket: s3.bucket,
        prefix: `${run}/t${++n}`,
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      }),
    { conditionalPut: false, byteOrderListing: false },
  );

  const rgw = rgwServer();
  const bucket = `pagecast-fetch-${transport.startsWith("node") ? "n" : "f"}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

  describe.skipIf(!rgw)("FetchS3Store on Ceph RGW", () => {
    const open = (prefix = `t${++n}`, credentials = rgw!.credentials) =>
      new FetchS3Store({ ...runtime, bucket, prefix, endpoint: rgw!.endpoint, credentials });

    beforeAll(async () => {
      await createBucket(rgw!.endpoint, bucket, rgw!.credentials);
    });

    afterAll(async () => {
      const sweeper = open("");
      for (;;) {
        const page = await sweeper.list();
        if (page.objects.length === 0) break;
        await sweeper.deleteMany(page.objects.map((o) => o.key));
      }
      await sweeper.close();
    });

    defineStoreContract(`FetchS3 on RGW (${transport})`, async () => open(), {
      conditionalPut: true,
      byteOrderListing: true,
    });

    test("a wrong secret fails with a typed, non-retryable error that does not reveal it", async () => {
      const secret = "Wrong+Secret/Value-0123456789abcdefXYZ";
      const store = open("wrong", {
        accessKeyId: rgw!.credentials.accessKeyId,
        secretAccessKey: secret,
      });
      const error = await store.get("anything").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "STORE_REQUEST_FAILED", retryable: false, status: 403 });
      const { inspect } = await import("node:util");
      for (const rendered of [String(error), inspect(error, { depth: 8 })]) {
        expect(rendered).not.toContain(secret);
      }
      expect(store.counters().retries).toBe(0);
      await store.close();
    });

    test("deleteMany is one DeleteObjects request per batch (not single deletes)", async () => {
      const store = open();
      const keys = Array.from({ length: 30 }, (_, i) => `d/${i}`);
      for (const key of keys) await store.put(key, new Uint8Array([1]));
      const before = store.counters().requests.delete;
      await store.deleteMany([...keys, "absent"]);
      expect(store.counters().requests.delete - before).toBe(1);
      expect((await store.list({ prefix: "d/" })).objects).toEqual([]);
      await store.close();
    });

    test("keys needing URL escapes round-trip and list back exactly", async () => {
      const store = open();
      const keys = ["a+b", "sp ace/x", "q?&=#%", "ü/é", "star*(paren)!'"];
      for (const key of keys) await store.put(key, new TextEncoder().encode(key));
      const listed = (await store.list()).objects.map((o) => o.key).sort();
      expect(listed).toEqual([...keys].sort());
      for (const key of keys)
        expect(new TextDecoder().decode((await store.get(key)).body)).toBe(key);
      await store.deleteMany(keys);
      expect((await store.list()).objects).toEqual([]);
      await store.close();
    });
  });

  describe("FetchS3Store with a skewed clock", () => {
    test.each([
      ["20 minutes behind", -20 * 60_000],
      ["400 days ahead", 400 * 86_400_000],
    ])(
      "host clock %s: refused once, corrected from the server's time, then every request passes (maxAttempts 1)",
      async (_name, offset) => {
        const proxy = await startFaultProxy({ target: s3.endpoint, clock: { offsetMs: 0 } });
        const failures: AttemptFailure[] = [];
        const store = new FetchS3Store({
          ...runtime,
          bucket: s3.bucket,
          prefix: `${run}/skew${++n}`,
          endpoint: proxy.endpoint,
          region: s3.region,
          credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
          clockOffsetMs: offset,
          retry: { maxAttempts: 1, onAttemptFailure: (f) => failures.push(f) },
        });
        try {
          await store.put("k", new TextEncoder().encode("v"));
          expect(proxy.skewRefusals).toBe(1);
          expect(failures).toHaveLength(1);
          expect(failures[0]).toMatchObject({ willRetry: true, delayMs: 0 });
          expect(failures[0]!.error).toMatchObject({
            status: 403,
            serverCode: "RequestTimeTooSkewed",
            clockSkew: true,
            retryable: true,
          });
          for (let i = 0; i < 3; i++)
            expect(new TextDecoder().decode((await store.get("k")).body)).toBe("v");
          await store.list();
          await store.deleteMany(["k"]);
          expect(proxy.skewRefusals).toBe(1);
          expect(Math.abs(store.serverTime()! - Date.now())).toBeLessThan(60_000);
        } finally {
          await store.close();
          await proxy.close();
        }
      },
    );
  });

  describe("FetchS3Store without credentials or with a dead endpoint", () => {
    test("no credentials: a typed error, nothing sent", async () => {
      const saved = {
        id: process.env.AWS_ACCESS_KEY_ID,
        secret: process.env.AWS_SECRET_ACCESS_KEY,
      };
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      try {
        let sent = 0;
        const store = new FetchS3Store({
          ...runtime,
          bucket: "b",
          endpoint: s3.endpoint,
          fetch: async () => {
            sent++;
            return new Response(null, { status: 500 });
          },
        });
        await expect(store.get("k")).rejects.toMatchObject({
          code: "STORE_NO_CREDENTIALS",
          retryable: false,
        });
        expect(sent).toBe(0);
      } finally {
        if (saved.id !== undefined) process.env.AWS_ACCESS_KEY_ID = saved.id;
        if (saved.secret !== undefined) process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      }
    });

    test("a refused connection is a retryable network error after the configured attempts", async () => {
      const store = new FetchS3Store({
        ...runtime,
        bucket: "b",
        endpoint: "http://127.0.0.1:9",
        credentials: { accessKeyId: "a", secretAccessKey: "b" },
        retry: { maxAttempts: 2, baseDelayMs: 1 },
      });
      const error = await store.head("k").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "STORE_REQUEST_FAILED", retryable: true });
      expect((error as Error).message).toMatch(/network error/);
      expect(store.counters().requests.head).toBe(2);
      expect(store.health().consecutiveFailures).toBe(2);
    });

    test("a body that stalls midway fails the attempt after idleTimeoutMs; a cut one is retried", async () => {
      const { createServer } = await import("node:http");
      let requests = 0;
      const failures: AttemptFailure[] = [];
      const server = createServer((req, res) => {
        requests++;
        req.resume();
        res.writeHead(200, { "content-length": "100", etag: '"e"' });
        res.write(Buffer.alloc(10, 1));
        // The first answer stalls; the second is cut (the connection drops).
        if (requests === 2) setTimeout(() => res.destroy(), 20);
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const port = (server.address() as { port: number }).port;
      try {
        const store = new FetchS3Store({
          ...runtime,
          bucket: "b",
          endpoint: `http://127.0.0.1:${port}`,
          credentials: { accessKeyId: "a", secretAccessKey: "b" },
          idleTimeoutMs: 300,
          retry: { maxAttempts: 2, baseDelayMs: 1, onAttemptFailure: (f) => failures.push(f) },
        });
        const error = await store.get("k").catch((e: unknown) => e);
        expect(requests).toBe(2);
        expect(failures[0]!.error).toMatchObject({ serverCode: "Timeout", retryable: true });
        expect(error).toMatchObject({ code: "STORE_REQUEST_FAILED", retryable: true });
        expect(store.counters().requests.get).toBe(2);
        await store.close();
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });

    test("an endpoint that never answers fails the attempt after idleTimeoutMs", async () => {
      const store = new FetchS3Store({
        ...runtime,
        bucket: "b",
        endpoint: "http://127.0.0.1:1",
        credentials: { accessKeyId: "a", secretAccessKey: "b" },
        idleTimeoutMs: 200,
        retry: { maxAttempts: 1 },
        fetch: (_input, init) =>
          new Promise((_, reject) =>
            init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
          ),
      });
      const error = await store.get("k").catch((e: unknown) => e);
      expect(error).toMatchObject({ retryable: true, serverCode: "Timeout" });
      expect((error as Error).message).toMatch(/no data for 200 ms/);
    });
  });
});
