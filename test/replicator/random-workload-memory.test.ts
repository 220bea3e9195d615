/** Acceptance: random workload, restores at >= 20 TXIDs, on the in-memory store. */
import { describe, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { runWorkload } from "./random-workload.js";

describe("random workload", () => {
  test("memory store", async () => {
    await runWorkload(1234, () => new MemoryStore());
  });
});
