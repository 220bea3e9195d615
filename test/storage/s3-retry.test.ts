import { inspect } from "node:util";
import { afterEach, describe, expect, inject, test } from "vitest";
import { S3Store, type S3StoreOptions } from "../../src/storage/s3-store.js";
import {
  NotFoundError,
  StoreAbortedError,
  StoreRequestError,
} from "../../src/storage/store-errors.js";
import {
  type Fault,
  type FaultProxy,
  startFaultProxy,
} from "../../src/testing/fault-proxy-node.js";

const s3 = inject("s3");
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
let proxy: FaultProxy | undefined;
let store: S3Store | undefined;
let n = 0;

afterEach(async () => {
  await store?.close();
  await proxy?.close();
  store = undefined;
  proxy = undefined;
});

async function setup(
  plan: (method: string, url: string, index: number) => Fault | undefined,
  options: Partial<S3StoreOptions> = {},
): Promise<S3Store> {
  proxy = await startFaultProxy(s3.endpoint, (req, index) =>
    plan(req.method ?? "", req.url ?? "", index),
  );
  store = new S3Store({
    bucket: s3.bucket,
    prefix: `retry-${Date.now().toString(36)}-${++n}`,
    endpoint: proxy.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    retry: { baseDelayMs: 1, maxDelayMs: 5, maxAttempts: 4 },
    ...options,
  });
  return store;
}

/** Faults the first `count` requests matching `method` (after `skip` such requests). */
function firstOf(method: string, count: number, fault: Fault) {
  let matched = 0;
  return (m: string) => (m === method && matched++ < count ? fault : undefined);
}

describe("S3Store retries", () => {
  test("503 SlowDown is retried until it succeeds", async () => {
    const s = await setup(firstOf("GET", 2, { status: 503, code: "SlowDown" }));
    await s.put("k", text("value"));
    const got = await s.get("k");
    expect(str(got.body)).toBe("value");
    const c = s.counters();
    expect(c.requests.get).toBe(3);
    expect(c.errors).toBe(2);
    expect(c.retries).toBe(2);
    expect(c.bytesIn).toBe(5);
  });

  test("500 on a put and 429 on a list are retried", async () => {
    let puts = 0;
    let lists = 0;
    const s = await setup((method, url) => {
      if (method === "PUT" && puts++ === 0) return { status: 500, code: "InternalError" };
      if (method === "GET" && url.includes("list-type=2") && lists++ === 0) {
        return { status: 429, code: "TooManyRequests" };
      }
      return undefined;
    });
    await s.put("k", text("v"));
    expect((await s.list()).objects.map((o) => o.key)).toEqual(["k"]);
    expect(s.counters()).toMatchObject({ retries: 2, errors: 2, requests: { put: 2, list: 2 } });
  });

  test("403, 404 and 412 are never retried", async () => {
    const s = await setup((method) =>
      method === "GET" ? { status: 403, code: "AccessDenied" } : undefined,
    );
    const denied = await s.get("k").catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(StoreRequestError);
    expect(denied).toMatchObject({ retryable: false, status: 403, serverCode: "AccessDenied" });
    expect(s.counters()).toMatchObject({ requests: { get: 1 }, errors: 1, retries: 0 });
    await proxy!.close();
    const t = await setup(() => undefined);
    await expect(t.get("absent")).rejects.toBeInstanceOf(NotFoundError);
    expect(t.counters()).toMatchObject({ requests: { get: 1 }, errors: 0, retries: 0 });
    await proxy!.close();
    const u = await setup((method) =>
      method === "PUT" ? { status: 412, code: "PreconditionFailed" } : undefined,
    );
    await expect(u.put("k", text("x"), { ifNoneMatch: "*" })).rejects.toMatchObject({
      code: "STORE_PRECONDITION_FAILED",
      ambiguous: false,
    });
    expect(u.counters()).toMatchObject({ requests: { put: 1 }, errors: 0, retries: 0 });
  });

  test("attempts are bounded: a server that keeps failing yields a retryable error", async () => {
    const s = await setup(() => ({ status: 503, code: "ServiceUnavailable" }), {
      retry: { baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 },
    });
    const error = await s.head("k").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STORE_REQUEST_FAILED", retryable: true, status: 503 });
    expect(s.counters()).toMatchObject({ requests: { head: 3 }, errors: 3, retries: 2 });
  });

  test("connection resets and truncated bodies are retried", async () => {
    let gets = 0;
    const s = await setup((method) => {
      if (method !== "GET") return undefined;
      gets += 1;
      if (gets === 1) return "reset";
      if (gets === 2) return { truncate: 100 };
      return undefined;
    });
    await s.put("k", text("complete body"));
    expect(str((await s.get("k")).body)).toBe("complete body");
    expect(s.counters()).toMatchObject({ requests: { get: 3 }, retries: 2 });
  });

  test("an attempt that hangs times out and is retried", async () => {
    let gets = 0;
    const s = await setup((method) => (method === "GET" && gets++ === 0 ? "hang" : undefined), {
      retry: { baseDelayMs: 1, maxDelayMs: 2, attemptTimeoutMs: 300 },
    });
    await s.put("k", text("late"));
    expect(str((await s.get("k")).body)).toBe("late");
    expect(s.counters()).toMatchObject({ requests: { get: 2 }, retries: 1, errors: 1 });
  });

  test("the caller's AbortSignal ends the backoff and the attempt", async () => {
    const s = await setup(() => ({ status: 503, code: "SlowDown" }), {
      retry: {
        baseDelayMs: 60_000,
        maxDelayMs: 60_000,
        maxAttempts: 5,
        random: () => 0.99,
        operationTimeoutMs: 0,
      },
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(s.get("k", { signal: controller.signal })).rejects.toBeInstanceOf(
      StoreAbortedError,
    );
    await proxy!.close();
    const t = await setup(() => "hang");
    const hanging = new AbortController();
    setTimeout(() => hanging.abort(), 50);
    await expect(t.get("k", { signal: hanging.signal })).rejects.toBeInstanceOf(StoreAbortedError);
  });

  test("a server that refuses DeleteObjects gets single deletes instead", async () => {
    const s = await setup((method, url) =>
      method === "POST" && url.includes("delete")
        ? { status: 501, code: "NotImplemented" }
        : undefined,
    );
    await s.put("a", text("1"));
    await s.put("b", text("2"));
    await s.deleteMany(["a", "b", "absent"]);
    expect((await s.list()).objects).toEqual([]);
    const seenDeletes = proxy!.seen.filter((r) => r.startsWith("DELETE "));
    expect(seenDeletes).toHaveLength(3);
    const posts = proxy!.seen.filter((r) => r.startsWith("POST ")).length;
    await s.put("c", text("3"));
    await s.deleteMany(["c"]);
    // Once refused, the batch call is not tried again.
    expect(proxy!.seen.filter((r) => r.startsWith("POST ")).length).toBe(posts);
    expect(await s.head("c")).toBeUndefined();
  });

  test("a failed multipart upload is aborted, and one failed part is retried alone", async () => {
    let parts = 0;
    const s = await setup((method, url) => {
      if (method === "PUT" && url.includes("partNumber=2") && parts++ === 0) {
        return { status: 500, code: "InternalError" };
      }
      return undefined;
    });
    const body = new Uint8Array(8 * 1024 * 1024 + 10).fill(7);
    await s.put("big", body);
    expect((await s.head("big"))?.size).toBe(body.length);
    const partPuts = proxy!.seen.filter((r) => r.startsWith("PUT ") && r.includes("partNumber"));
    expect(partPuts).toHaveLength(3);
    await proxy!.close();
    const t = await setup((method, url) =>
      method === "PUT" && url.includes("partNumber=2")
        ? { status: 403, code: "AccessDenied" }
        : undefined,
    );
    await expect(t.put("big2", body)).rejects.toMatchObject({ status: 403 });
    expect(proxy!.seen.some((r) => r.startsWith("DELETE ") && r.includes("uploadId="))).toBe(true);
    expect(await t.head("big2")).toBeUndefined();
  });

  test("a streamed upload holds few parts, retries a failed part, and is aborted when its source fails", async () => {
    let parts = 0;
    const s = await setup((method, url) => {
      if (method === "PUT" && url.includes("partNumber=3") && parts++ === 0) {
        return { status: 500, code: "InternalError" };
      }
      return undefined;
    });
    const MIB = 1024 * 1024;
    const total = 5 * 8 * MIB + 99;
    let yielded = 0;
    let worstAhead = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      const chunk = new Uint8Array(MIB);
      while (yielded < total) {
        const n = Math.min(chunk.length, total - yielded);
        chunk.fill(yielded / MIB);
        // Bytes taken from the source but not yet sent: what the store holds.
        worstAhead = Math.max(worstAhead, yielded - s.counters().bytesOut);
        yielded += n;
        yield chunk.subarray(0, n);
      }
    }
    await s.putStream("streamed", source());
    expect((await s.head("streamed"))?.size).toBe(total);
    const got = await s.get("streamed", { range: { offset: 3 * MIB + 5, length: 1 } });
    expect(got.body?.[0]).toBe(3);
    // One part being filled (plus the chunk in hand), never the whole body.
    expect(worstAhead).toBeLessThanOrEqual(8 * MIB + MIB);
    const partPuts = proxy!.seen.filter((r) => r.startsWith("PUT ") && r.includes("partNumber"));
    expect(partPuts).toHaveLength(7);
    const broken = new Error("source failed");
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10 * MIB);
      throw broken;
    }
    await expect(s.putStream("broken", failing())).rejects.toBe(broken);
    expect(proxy!.seen.some((r) => r.startsWith("DELETE ") && r.includes("uploadId="))).toBe(true);
    expect(await s.head("broken")).toBeUndefined();
  });

  test("a server that ignores Range still yields exactly the range asked for", async () => {
    const s = await setup((method) => (method === "GET" ? { dropHeaders: ["range"] } : undefined));
    await s.put("k", text("hello world"));
    const mid = await s.get("k", { range: { offset: 2, length: 3 } });
    expect(str(mid.body)).toBe("llo");
    expect(mid).toMatchObject({ offset: 2, meta: { size: 11 } });
    const tail = await s.get("k", { range: { suffix: 5 } });
    expect(str(tail.body)).toBe("world");
    expect(tail.offset).toBe(6);
  });

  test("error messages and objects never carry credentials", async () => {
    const accessKeyId = "AKIAPAGECASTTESTKEY1";
    const secretAccessKey = "pagecast/Secret+Key/ShouldNeverLeak0123";
    const echo = `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message><AWSAccessKeyId>${accessKeyId}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 ${accessKeyId}</StringToSign></Error>`;
    const s = await setup(() => ({ status: 403, body: echo }), {
      credentials: { accessKeyId, secretAccessKey },
    });
    const errors = await Promise.all([
      s.get("k").catch((e: unknown) => e),
      s.put("k", text("x")).catch((e: unknown) => e),
      s.list().catch((e: unknown) => e),
      s.deleteMany(["k"]).catch((e: unknown) => e),
    ]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(StoreRequestError);
      for (const rendered of [
        String(error),
        inspect(error, { depth: 10 }),
        JSON.stringify(error),
      ]) {
        expect(rendered).not.toContain(secretAccessKey);
        expect(rendered).not.toContain(accessKeyId);
      }
    }
    expect(s.url).not.toContain(accessKeyId);
  });
});
