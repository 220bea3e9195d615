/**
 * `r2Store` on miniflare's R2 binding (the same implementation Workers run
 * locally; it honours conditional puts): the full storage contract.
 */
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, expect, test } from "vitest";
import { r2Store } from "../../src/index.js";
import type { R2BucketLike } from "../../src/storage/r2-store.js";
import { InvalidStoreArgumentError } from "../../src/storage/store-errors.js";
import { defineStoreContract } from "./contract.js";

let mf: Miniflare;
let bucket: R2BucketLike;
let n = 0;

beforeAll(async () => {
  mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response('') } }",
    r2Buckets: ["BUCKET"],
    compatibilityDate: "2025-09-01",
  });
  bucket = (await mf.getR2Bucket("BUCKET")) as unknown as R2BucketLike;
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
});

defineStoreContract("R2 binding (miniflare)", async () => r2Store(bucket, `t${++n}`), {
  conditionalPut: true,
  byteOrderListing: true,
  // miniflare moves large bodies to its Node side slowly (~40 s for these two).
  largeBodies: false,
});

test("r2Store refuses what is not a bucket binding", () => {
  expect(() => r2Store(undefined as unknown as R2BucketLike)).toThrow(InvalidStoreArgumentError);
});
