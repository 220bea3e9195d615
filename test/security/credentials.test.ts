/**
 * Credentials and request signatures never appear in errors, replica status
 * or CLI output (issue 7): failing S3 operations with a wrong secret against
 * RGW (which checks signatures; fauxqs does not), and a server that echoes
 * the request's Authorization header, access key and signature back in its
 * error bodies (as AWS does for SignatureDoesNotMatch).
 */
import { inspect } from "node:util";
import { afterEach, describe, expect, inject, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";

const s3 = inject("s3");
const RGW = process.env.PAGECAST_RGW_ENDPOINT;
const ACCESS_KEY = "AKIAPAGECASTLEAKTEST";
const SECRET_KEY = "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";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Every rendering of a value a user or a log could see. */
function renderings(value: unknown): string[] {
  const out = [String(value), inspect(value, { depth: 20, showHidden: true })];
  try {
    out.push(JSON.stringify(value) ?? "");
  } catch {
    // Cyclic: inspect covers it.
  }
  for (let e: unknown = value, depth = 0; e && depth < 8; depth++) {
    const err = e as { message?: unknown; stack?: unknown; cause?: unknown };
    out.push(String(err.message ?? ""), String(err.stack ?? ""));
    e = err.cause;
  }
  return out;
}

/** Fails when any rendering of `value` contains a credential or a signature. */
function expectClean(value: unknown, secrets: readonly string[], label: string): void {
  for (const text of renderings(value)) {
    for (const secret of secrets) {
      expect(
        text.includes(secret),
        `${label}: leaked ${secret.slice(0, 12)}... in ${text.slice(0, 400)}`,
      ).toBe(false);
    }
    expect(text, label).not.toMatch(
      /X-Amz-Signature=|Signature=[0-9a-f]{16}|AWS4-HMAC-SHA256 Credential/,
    );
  }
}

/** A proxy that answers every request with 403 echoing its Authorization header, key and signature. */
async function echoingProxy(target: string) {
  const seen = new Set<string>([ACCESS_KEY, SECRET_KEY]);
  let failing = false;
  const proxy = await startFaultProxy(target, (req) => {
    const auth = String(req.headers.authorization ?? "");
    const signature = /Signature=([0-9a-f]+)/.exec(auth)?.[1];
    if (signature) seen.add(signature);
    if (!failing) return undefined;
    return {
      status: 403,
      body:
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>` +
        `<Message>The request signature we calculated does not match ${auth}</Message>` +
        `<AWSAccessKeyId>${ACCESS_KEY}</AWSAccessKeyId><StringToSign>${auth}</StringToSign>` +
        `<SignatureProvided>${signature ?? ""}</SignatureProvided><Secret>${SECRET_KEY}</Secret></Error>`,
    };
  });
  cleanups.push(() => proxy.close());
  return {
    proxy,
    secrets: () => [...seen],
    fail: (on: boolean) => {
      failing = on;
    },
  };
}

describe("credentials never leak", () => {
  test("store errors, replica status and errors, with a server echoing signatures", async () => {
    const echo = await echoingProxy(s3.endpoint);
    const prefix = `leak-${Date.now().toString(36)}`;
    const store = new S3Store({
      bucket: s3.bucket,
      prefix,
      endpoint: echo.proxy.endpoint,
      region: s3.region,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    cleanups.push(() => store.close());
    const writer = new ScriptedWriter(store);
    cleanups.push(() => writer.close());
    await writer.commit("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: 0,
      cacheBytes: 65536,
    });
    cleanups.push(() => replica.close());
    echo.fail(true);
    const errors = await Promise.all([
      store.get("k").catch((e: unknown) => e),
      store.head("k").catch((e: unknown) => e),
      store.put("k", new Uint8Array(1)).catch((e: unknown) => e),
      store.list().catch((e: unknown) => e),
      store.deleteMany(["k"]).catch((e: unknown) => e),
      replica.poll().catch((e: unknown) => e),
      replica.values("SELECT * FROM t").catch((e: unknown) => e),
      openReplica({ store, wasm: readSqliteWasm }).catch((e: unknown) => e),
    ]);
    for (const [i, err] of errors.entries()) {
      expect(err, `operation ${i}`).toBeInstanceOf(Error);
      expectClean(err, echo.secrets(), `operation ${i}`);
    }
    const status = replica.status();
    expect(status.lastError).not.toBeNull();
    expectClean(status, echo.secrets(), "status");
    expectClean(store.url, echo.secrets(), "url");
    // The echo proxy really saw signatures (the check above was not vacuous).
    expect(echo.secrets().length).toBeGreaterThan(2);
  });

  test("CLI stderr and stdout carry no credentials or signatures", async () => {
    const echo = await echoingProxy(s3.endpoint);
    echo.fail(true);
    const saved = { ...process.env };
    process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = SECRET_KEY;
    process.env.AWS_REGION = "us-east-1";
    process.env.AWS_EC2_METADATA_DISABLED = "true";
    try {
      const url = `s3://${s3.bucket}/cli-leak?endpoint=${encodeURIComponent(echo.proxy.endpoint)}`;
      for (const argv of [
        ["query", url, "SELECT 1"],
        ["query", url, "SELECT 1", "--at", "txid:1"],
        ["ltx", "list", url],
        ["restore", url, "/nonexistent-pagecast/out.db"],
        ["query", `s3://${ACCESS_KEY}:${SECRET_KEY}@bucket/x`, "SELECT 1"],
        ["query", `s3://bucket/x?secretAccessKey=${SECRET_KEY}`, "SELECT 1"],
      ]) {
        let out = "";
        const code = await main(argv, {
          stdout: (t) => {
            out += t;
          },
          stderr: (t) => {
            out += t;
          },
          isTTY: false,
          env: { ...process.env },
          signal: new AbortController().signal,
        });
        expect([1, 2], argv.join(" ")).toContain(code);
        expectClean(out, echo.secrets(), argv.join(" "));
      }
    } finally {
      process.env = saved;
    }
  });

  describe.skipIf(!RGW)("against RGW (checks signatures)", () => {
    test("a wrong secret fails every operation without echoing credentials", async () => {
      const bucket = `pagecast-leak-${Date.now().toString(36)}`;
      const good = new S3Store({
        bucket,
        prefix: "db",
        endpoint: RGW!,
        region: "us-east-1",
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      });
      cleanups.push(() => good.close());
      const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
      const client = new S3Client({
        endpoint: RGW!,
        region: "us-east-1",
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
        forcePathStyle: true,
      });
      await client.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => {});
      client.destroy();
      const writer = new ScriptedWriter(good);
      cleanups.push(() => writer.close());
      await writer.commit("CREATE TABLE t (x); INSERT INTO t VALUES (1)");

      const wrongSecret = "Wrong+Secret/ForRGW-0123456789abcdef";
      const bad = new S3Store({
        bucket,
        prefix: "db",
        endpoint: RGW!,
        region: "us-east-1",
        credentials: { accessKeyId: "S3RVER", secretAccessKey: wrongSecret },
        retry: { maxAttempts: 2, baseDelayMs: 1 },
      });
      cleanups.push(() => bad.close());
      const secrets = [wrongSecret, "S3RVER:"];
      const errors = await Promise.all([
        bad.get("pagecast-head.json").catch((e: unknown) => e),
        bad.put("k", new Uint8Array(1)).catch((e: unknown) => e),
        bad.list().catch((e: unknown) => e),
        bad.deleteMany(["k"]).catch((e: unknown) => e),
        openReplica({ store: bad, wasm: readSqliteWasm }).catch((e: unknown) => e),
      ]);
      for (const [i, err] of errors.entries()) {
        expect(err, `rgw operation ${i}`).toMatchObject({
          code: "STORE_REQUEST_FAILED",
          status: 403,
        });
        expectClean(err, secrets, `rgw operation ${i}`);
      }
      // A replica that was fine, then lost its credentials' validity: status stays clean.
      const replica = await openReplica({ store: good, wasm: readSqliteWasm, pollIntervalMs: 0 });
      cleanups.push(() => replica.close());
      expect(await replica.values("SELECT x FROM t")).toEqual([[1]]);
      const url = `s3://${bucket}/db?endpoint=${encodeURIComponent(RGW!)}`;
      let stderr = "";
      const saved = { ...process.env };
      // The CLI takes credentials from the environment: a wrong secret there.
      process.env.AWS_ACCESS_KEY_ID = "S3RVER";
      process.env.AWS_SECRET_ACCESS_KEY = wrongSecret;
      process.env.AWS_EC2_METADATA_DISABLED = "true";
      const code = await main(["query", url, "SELECT x FROM t"], {
        stdout: () => {},
        stderr: (t) => {
          stderr += t;
        },
        isTTY: false,
        env: { ...process.env },
        signal: new AbortController().signal,
      }).finally(() => {
        process.env = saved;
      });
      expect(code).toBe(1);
      expect(stderr).toMatch(/STORE_REQUEST_FAILED/);
      expectClean(stderr, secrets, "rgw cli");
    });
  });
});
