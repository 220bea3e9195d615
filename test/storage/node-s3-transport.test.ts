/**
 * Which store s3:// opens in Node: FetchS3Store (no AWS SDK to load, a faster
 * cold start) when the credentials are static, the AWS SDK's S3Store (its
 * credential chain) otherwise; and, in a real process on the built package,
 * that a replica-style program with static credentials never loads the SDK.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, inject, test } from "vitest";
import { FetchS3Store } from "../../src/storage/fetch-s3-store.js";
import { nodeS3Transport, openNodeStore } from "../../src/storage/open-node-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { InvalidStoreArgumentError } from "../../src/storage/store-errors.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const KEYS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
const where = { bucket: "b", prefix: "p" };
const ENV_NAMES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_S3",
  "AWS_USE_FIPS_ENDPOINT",
  "AWS_USE_DUALSTACK_ENDPOINT",
];
const saved = Object.fromEntries(ENV_NAMES.map((k) => [k, process.env[k]]));

afterEach(() => {
  for (const k of ENV_NAMES) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe("nodeS3Transport (s3Transport: auto)", () => {
  test("static keys, given or from AWS_* variables, go through fetch", () => {
    expect(nodeS3Transport(where, { credentials: KEYS }, {})).toBe("fetch");
    expect(nodeS3Transport(where, {}, { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" })).toBe(
      "fetch",
    );
    expect(
      nodeS3Transport(
        { ...where, endpoint: "http://127.0.0.1:9000" },
        { credentials: KEYS },
        { AWS_ENDPOINT_URL: "http://elsewhere" },
      ),
    ).toBe("fetch");
  });

  test("the SDK's chain (no static keys), SDK-only settings and SDK-only variables keep the SDK", () => {
    // No credentials at all: profiles, SSO, instance roles are the SDK's.
    expect(nodeS3Transport(where, {}, {})).toBe("aws-sdk");
    expect(nodeS3Transport(where, {}, { AWS_ACCESS_KEY_ID: "a" })).toBe("aws-sdk");
    // The SDK reads AWS_PROFILE before the key variables.
    expect(
      nodeS3Transport(
        where,
        {},
        { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s", AWS_PROFILE: "dev" },
      ),
    ).toBe("aws-sdk");
    // A provider function may refresh its keys.
    expect(nodeS3Transport(where, { credentials: async () => KEYS }, {})).toBe("aws-sdk");
    for (const s3 of [{ clientConfig: {} }, { connectTimeoutMs: 1000 }]) {
      expect(nodeS3Transport(where, { credentials: KEYS, s3 }, {})).toBe("aws-sdk");
    }
    for (const env of [
      { AWS_ENDPOINT_URL: "http://127.0.0.1:9000" },
      { AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000" },
      { AWS_USE_FIPS_ENDPOINT: "true" },
      { AWS_USE_DUALSTACK_ENDPOINT: "true" },
    ]) {
      expect(nodeS3Transport(where, { credentials: KEYS }, env)).toBe("aws-sdk");
    }
  });

  test("s3Transport forces either", () => {
    expect(nodeS3Transport(where, { s3Transport: "fetch" }, {})).toBe("fetch");
    expect(nodeS3Transport(where, { credentials: KEYS, s3Transport: "aws-sdk" }, {})).toBe(
      "aws-sdk",
    );
  });
});

describe("openNodeStore(s3://)", () => {
  const url = "s3://bucket/prefix?endpoint=http://127.0.0.1:9&region=us-east-1";

  test("static credentials: FetchS3Store; none: the SDK's S3Store", async () => {
    for (const k of ENV_NAMES) delete process.env[k];
    const viaFetch = await openNodeStore(url, { credentials: KEYS });
    expect(viaFetch).toBeInstanceOf(FetchS3Store);
    expect(viaFetch.url).toBe(url.replace("http://127.0.0.1:9", "http%3A%2F%2F127.0.0.1%3A9"));
    await viaFetch.close();
    const viaSdk = await openNodeStore(url);
    expect(viaSdk).toBeInstanceOf(S3Store);
    await viaSdk.close();
    process.env.AWS_ACCESS_KEY_ID = "a";
    process.env.AWS_SECRET_ACCESS_KEY = "s";
    const fromEnv = await openNodeStore(url);
    expect(fromEnv).toBeInstanceOf(FetchS3Store);
    await fromEnv.close();
    const forced = await openNodeStore(url, { s3Transport: "aws-sdk" });
    expect(forced).toBeInstanceOf(S3Store);
    await forced.close();
  });

  test('outside Node (no opener registered) s3Transport "aws-sdk" is refused, typed', async () => {
    await expect(openStore(url, { s3Transport: "aws-sdk" })).rejects.toBeInstanceOf(
      InvalidStoreArgumentError,
    );
  });
});

const built = existsSync(join(ROOT, "dist", "index.node.js"));

describe.skipIf(!built)("a fresh process on the built package", () => {
  test("reads over s3:// with static credentials without loading the AWS SDK or undici (fetch)", async () => {
    const s3 = inject("s3");
    const prefix = `node-transport-${Date.now().toString(36)}`;
    const script = `
      import { createRequire } from "node:module";
      const { openStore } = await import("pagecast");
      const [url, accessKeyId, secretAccessKey] = process.argv.slice(1);
      const store = await openStore(url, { credentials: { accessKeyId, secretAccessKey } });
      await store.put("k", new TextEncoder().encode("v"));
      const got = await store.get("k");
      const sdk = Object.keys(createRequire(import.meta.url).cache).some((k) =>
        k.includes("@aws-sdk/client-s3"),
      );
      // Node's fetch (undici) costs a cold start tens of ms: Node readers use node:http.
      const undici = process.moduleLoadList.some((m) => m.includes("undici"));
      console.log(JSON.stringify({ store: store.constructor.name, body: new TextDecoder().decode(got.body), sdk, undici }));
      await store.close();
    `;
    const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}&region=${s3.region}`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script, url, s3.accessKeyId, s3.secretAccessKey],
      { cwd: ROOT, timeout: 60_000 },
    );
    expect(JSON.parse(stdout.trim())).toEqual({
      store: "FetchS3Store",
      body: "v",
      sdk: false,
      undici: false,
    });
  }, 90_000);

  test("restore keeps the AWS SDK with static credentials (streamed range bodies)", async () => {
    const s3 = inject("s3");
    const script = `
      import { createRequire } from "node:module";
      import { mkdtempSync, rmSync } from "node:fs";
      import { tmpdir } from "node:os";
      import { join } from "node:path";
      const { restore } = await import("pagecast/node");
      const dir = mkdtempSync(join(tmpdir(), "pagecast-transport-"));
      let code;
      try {
        await restore(process.argv[1], join(dir, "out.db"));
      } catch (e) {
        code = e.code;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const sdk = Object.keys(createRequire(import.meta.url).cache).some((k) =>
        k.includes("@aws-sdk/client-s3"),
      );
      console.log(JSON.stringify({ code, sdk }));
    `;
    const url = `s3://${s3.bucket}/node-transport-empty-${Date.now().toString(36)}?endpoint=${encodeURIComponent(s3.endpoint)}&region=${s3.region}`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script, url],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
          AWS_PROFILE: "",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        },
      },
    );
    // An empty prefix: nothing to restore, after the SDK listed it.
    expect(JSON.parse(stdout.trim())).toMatchObject({ sdk: true });
    expect(JSON.parse(stdout.trim()).code).toMatch(/EMPTY|NO_|NOT_FOUND/);
  }, 90_000);
});
