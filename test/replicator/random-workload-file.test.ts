/** Acceptance: random workload, restores at >= 20 TXIDs, on the file store. */
import { join } from "node:path";
import { describe, test } from "vitest";
import { FileStore } from "../../src/storage/file-store.js";
import { runWorkload } from "./random-workload.js";

describe("random workload", () => {
  test("file store", async () => {
    await runWorkload(98765, (dir) => new FileStore({ root: join(dir, "replica"), fsync: false }));
  });
});
