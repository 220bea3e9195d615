/**
 * The contract suite against a real S3 implementation (Ceph RGW); runs only
 * when PAGECAST_RGW_ENDPOINT is set (see ../shared/tools/rgw-up.sh).
 */
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openStore } from "../../src/storage/open-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { defineStoreContract } from "./contract.js";

const endpoint = process.env.PAGECAST_RGW_ENDPOINT;
const credentials = {
  accessKeyId: process.env.PAGECAST_RGW_ACCESS_KEY ?? "S3RVER",
  secretAccessKey: process.env.PAGECAST_RGW_SECRET_KEY ?? "S3RVER",
};
const bucket = `pagecast-storage-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let n = 0;
const opened: S3Store[] = [];

function client(): S3Client {
  return new S3Client({
    endpoint: endpoint!,
    region: "us-east-1",
    forcePathStyle: true,
    credentials,
  });
}

describe.skipIf(!endpoint)("S3 on Ceph RGW", () => {
  beforeAll(async () => {
    const c = client();
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
    c.destroy();
  });

  afterAll(async () => {
    const sweeper = new S3Store({ bucket, endpoint: endpoint!, credentials });
    for (;;) {
      const page = await sweeper.list();
      if (page.objects.length === 0) break;
      await sweeper.deleteMany(page.objects.map((o) => o.key));
    }
    await sweeper.close();
    const c = client();
    await c.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    c.destroy();
  });

  defineStoreContract(
    "S3 on RGW",
    async () => {
      const store = new S3Store({ bucket, prefix: `t${++n}`, endpoint: endpoint!, credentials });
      opened.push(store);
      return store;
    },
    { conditionalPut: true, byteOrderListing: true },
  );

  test("a wrong secret fails with a typed, non-retryable error that does not reveal it", async () => {
    const secret = "Wrong+Secret/Value-0123456789abcdefXYZ";
    const store = new S3Store({
      bucket,
      endpoint: endpoint!,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: secret },
    });
    const error = await store.get("anything").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STORE_REQUEST_FAILED", retryable: false, status: 403 });
    const { inspect } = await import("node:util");
    for (const rendered of [
      String(error),
      (error as Error).message,
      inspect(error, { depth: 8 }),
    ]) {
      expect(rendered).not.toContain(secret);
    }
    expect(store.counters().retries).toBe(0);
    await store.close();
  });

  test("openStore reaches RGW through an s3:// URL with endpoint and region", async () => {
    const url = `s3://${bucket}/via-url?endpoint=${encodeURIComponent(endpoint!)}&region=us-east-1`;
    const store = await openStore(url, { credentials });
    await store.put("x", new TextEncoder().encode("y"));
    const again = await openStore(store.url, { credentials });
    expect(new TextDecoder().decode((await again.get("x")).body)).toBe("y");
    await store.close();
    await again.close();
  });
});
