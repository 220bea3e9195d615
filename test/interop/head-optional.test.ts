/**
 * The head object is an optimisation, never a requirement: a replica whose
 * head is missing, damaged or from a writer this reader does not understand
 * is read from its LTX files alone (LIST), by replicas, pinned replicas and
 * restore alike; and a young replica (no level-9 snapshot) keeps being
 * followed as it grows.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ltxKey } from "../../src/format/index.js";
import { HEAD_OBJECT_KEY } from "../../src/layout/index.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { tempDir } from "../replicator/helpers.js";
import { fixtureReplicas, fixtureState } from "./fixtures.js";

const tmp = tempDir("pagecast-head-optional-");
afterAll(() => tmp.cleanup());

async function copyFixture(prefix: string, maxTXID = Number.POSITIVE_INFINITY) {
  const store = new MemoryStore({ name: `head-optional-${Math.random().toString(36).slice(2)}` });
  const replica = fixtureReplicas().find((r) => r.name.startsWith(prefix))!;
  const put = async (f: (typeof replica.files)[number]) =>
    store.put(ltxKey(f.level, f.minTXID, f.maxTXID), readFileSync(f.path));
  for (const f of replica.files) if (f.maxTXID <= maxTXID) await put(f);
  return { store, replica, put };
}

describe("replicas without a usable head object", () => {
  test.each([
    ["damaged", new TextEncoder().encode('{"format":"pagecast-head","version":1,')],
    ["from a newer writer", new TextEncoder().encode('{"format":"pagecast-head","version":2}')],
  ])("a %s head: replicas, pinned replicas and restore read the LTX files", async (_kind, body) => {
    const { store } = await copyFixture("A-");
    await store.put(HEAD_OBJECT_KEY, body);
    const replica = await openReplica({ store, wasm: readSqliteWasm });
    try {
      expect(replica.status().txid).toBe(6);
      expect(await replica.values("SELECT count(*) FROM t")).toEqual([[250]]);
    } finally {
      await replica.close();
    }
    const pinned = await openReplica({ store, wasm: readSqliteWasm, at: { txid: 4 } });
    try {
      expect(pinned.status().txid).toBe(4);
    } finally {
      await pinned.close();
    }
    const out = join(tmp.dir, `restored-${Math.random().toString(36).slice(2)}.db`);
    expect(await restore(store, out)).toMatchObject({ txid: 6, checksumVerified: "none" });
    expect(Buffer.compare(readFileSync(out), fixtureState(6))).toBe(0);
    await store.close();
  });

  test("a young replica (level 0 only) is followed as it grows", async () => {
    const { store, replica: files, put } = await copyFixture("E-", 3);
    const replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
    try {
      expect(replica.status().txid).toBe(3);
      const count = "SELECT count(*) FROM t";
      const before = await replica.values(count);
      for (const f of files.files.filter((x) => x.minTXID > 3)) await put(f);
      await replica.poll();
      expect(replica.status().txid).toBe(6);
      expect(await replica.values(count)).toEqual([[250]]);
      expect(before).not.toEqual([[250]]);
    } finally {
      await replica.close();
      await store.close();
    }
  });
});
