/**
 * Multipart completion whose answer was lost: the retried
 * CompleteMultipartUpload finds the upload gone (NoSuchUpload) although the
 * object was written. Seen against fauxqs under load while publishing a
 * 1.1 GB snapshot (the put failed although the object was complete).
 */
import { describe, expect, it } from "vitest";
import {
  bodyParts,
  type MultipartSteps,
  uploadMultipart,
} from "../../src/storage/multipart-upload.js";
import type { ObjectMeta } from "../../src/storage/object-store.js";
import { StoreRequestError } from "../../src/storage/store-errors.js";

function steps(head: ObjectMeta | undefined, log: string[]): MultipartSteps {
  return {
    create: async () => "upload-1",
    upload: async (_id, n) => `"etag-${n}"`,
    complete: async () => {
      log.push("complete");
      throw new StoreRequestError("S3 complete multipart upload failed: HTTP 404 NoSuchUpload", {
        retryable: false,
        status: 404,
        serverCode: "NoSuchUpload",
      });
    },
    abort: async () => {
      log.push("abort");
    },
    head: async () => {
      log.push("head");
      return head;
    },
  };
}

const body = new Uint8Array(25).fill(1);
const meta = (size: number, etag: string): ObjectMeta => ({
  key: "k",
  size,
  etag,
  lastModified: new Date(),
});

describe("uploadMultipart: completion answered NoSuchUpload", () => {
  it("succeeds when the object has this upload's size and part count", async () => {
    const log: string[] = [];
    const etag = await uploadMultipart(
      "k",
      "s3://b",
      bodyParts(body, 10),
      steps(meta(25, "abc-3"), log),
      {},
      2,
    );
    expect(etag).toBe("abc-3");
    expect(log).toEqual(["complete", "head"]);
  });

  it("fails when the object is missing, another size, or another part count", async () => {
    for (const head of [undefined, meta(24, "abc-3"), meta(25, "abc-2"), meta(25, "abc")]) {
      const log: string[] = [];
      await expect(
        uploadMultipart("k", "s3://b", bodyParts(body, 10), steps(head, log), {}, 2),
      ).rejects.toMatchObject({ serverCode: "NoSuchUpload" });
      expect(log).toEqual(["complete", "head", "abort"]);
    }
  });
});
