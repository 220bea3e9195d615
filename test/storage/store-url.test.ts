import { describe, expect, test } from "vitest";
import { openStore } from "../../src/storage/open-store.js";
import { InvalidStoreUrlError } from "../../src/storage/store-errors.js";
import { parseStoreUrl } from "../../src/storage/store-url.js";

describe("parseStoreUrl", () => {
  test("s3 URLs: bucket, prefix, endpoint, region, path style", () => {
    expect(parseStoreUrl("s3://bucket")).toEqual({ scheme: "s3", bucket: "bucket", prefix: "" });
    expect(parseStoreUrl("s3://bucket/")).toMatchObject({ prefix: "" });
    expect(parseStoreUrl("s3://my-bucket/db/prod/")).toMatchObject({ prefix: "db/prod" });
    expect(
      parseStoreUrl(
        "s3://bucket/p?endpoint=http://127.0.0.1:9000&region=eu-west-1&forcePathStyle=true",
      ),
    ).toEqual({
      scheme: "s3",
      bucket: "bucket",
      prefix: "p",
      endpoint: "http://127.0.0.1:9000",
      region: "eu-west-1",
      forcePathStyle: true,
    });
    expect(parseStoreUrl("s3://b/p%20q?endpoint=https%3A%2F%2Fs3.example.com%2F")).toMatchObject({
      prefix: "p q",
      endpoint: "https://s3.example.com",
    });
    expect(parseStoreUrl("S3://b?forcePathStyle=0")).toMatchObject({ forcePathStyle: false });
  });

  test("file and memory URLs", () => {
    expect(parseStoreUrl("file:///var/lib/replica")).toEqual({
      scheme: "file",
      path: "/var/lib/replica",
    });
    expect(parseStoreUrl("file://localhost/a%20b")).toEqual({ scheme: "file", path: "/a b" });
    expect(parseStoreUrl("memory://demo")).toEqual({ scheme: "memory", name: "demo", prefix: "" });
    expect(parseStoreUrl("memory://demo/db1")).toEqual({
      scheme: "memory",
      name: "demo",
      prefix: "db1",
    });
  });

  test("malformed URLs are refused with InvalidStoreUrlError", () => {
    for (const url of [
      "",
      "bucket/prefix",
      "http://bucket/x",
      "s3:bucket",
      "s3://",
      "s3://bad bucket/x",
      "s3://bucket:9000/x",
      "s3://bucket/a/../b",
      "s3://bucket/%2e%2e/b",
      "file:///a/../b",
      "memory://demo/./x",
      "s3://bucket/a%ZZ",
      "s3://bucket#frag",
      "s3://b?endpoint=ftp://x",
      "s3://b?endpoint=notaurl",
      "s3://b?region=../../x",
      "s3://b?forcePathStyle=maybe",
      "s3://b?region=a&region=b",
      "file://remote-host/x",
      "file:///",
      "file:///a?x=1",
      "file:///a%00b",
      "memory://",
      "memory://a?x=1",
      `s3://b/${"x".repeat(5000)}`,
    ]) {
      expect(() => parseStoreUrl(url), url).toThrow(InvalidStoreUrlError);
    }
  });

  test("credentials in a URL are refused without being echoed", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const keyId = "AKIAIOSFODNN7EXAMPLE";
    for (const url of [
      `s3://${keyId}:${encodeURIComponent(secret)}@bucket/prefix`,
      `s3://${keyId}@bucket`,
      `s3://bucket/p?accessKeyId=${keyId}&secretAccessKey=${encodeURIComponent(secret)}`,
      `s3://bucket/p?secret=${encodeURIComponent(secret)}`,
      `s3://bucket/p?X-Amz-Credential=${keyId}&X-Amz-Signature=${secret}`,
      `s3://bucket/p?${keyId}`,
      `s3://bucket/p?endpoint=${encodeURIComponent(`http://${keyId}:${secret}@127.0.0.1:9000`)}`,
      `s3://bucket/p?endpoint=${encodeURIComponent(`http://127.0.0.1:9000/?X-Amz-Signature=${secret}`)}`,
      `memory://${keyId}:${secret}@name`,
      `file://${keyId}:${secret}@localhost/x`,
    ]) {
      let error: unknown;
      try {
        parseStoreUrl(url);
      } catch (e) {
        error = e;
      }
      expect(error, url).toBeInstanceOf(InvalidStoreUrlError);
      const rendered = `${String(error)} ${JSON.stringify(error)} ${String((error as Error).cause ?? "")}`;
      expect(rendered).not.toContain(secret);
      expect(rendered).not.toContain(encodeURIComponent(secret));
      expect(rendered).not.toContain(keyId);
    }
  });
});

describe("openStore", () => {
  test("refuses file:// and points to pagecast/node", async () => {
    const error = await openStore("file:///tmp/x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidStoreUrlError);
    expect((error as Error).message).toContain("pagecast/node");
  });

  test("opens s3:// stores whose url carries no credentials and round-trips", async () => {
    const store = await openStore(
      "s3://bucket/a/b?endpoint=http://127.0.0.1:1&region=us-east-1&forcePathStyle=true",
      { credentials: { accessKeyId: "AKIAEXAMPLEKEY000001", secretAccessKey: "hidden-secret" } },
    );
    expect(store.url).not.toContain("AKIAEXAMPLEKEY000001");
    expect(store.url).not.toContain("hidden-secret");
    expect(parseStoreUrl(store.url)).toEqual({
      scheme: "s3",
      bucket: "bucket",
      prefix: "a/b",
      endpoint: "http://127.0.0.1:1",
      region: "us-east-1",
      forcePathStyle: true,
    });
    await store.close();
  });
});
