import { inject } from "vitest";
import { S3Store } from "../../src/storage/s3-store.js";
import { defineStoreContract } from "./contract.js";

const s3 = inject("s3");
let n = 0;
const run = `contract-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

// fauxqs ignores conditions on PUT and sorts listings with localeCompare.
defineStoreContract(
  "S3 on fauxqs",
  async () =>
    new S3Store({
      bucket: s3.bucket,
      prefix: `${run}/t${++n}`,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    }),
  { conditionalPut: false, byteOrderListing: false },
);
