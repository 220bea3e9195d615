/**
 * Pinned replicas (`openReplica({ at })`, `Replica.pinned`, time travel)
 * across a file deleted under them (review by a helper): Litestream drops
 * level-0 files a few minutes after compacting them into level 1, and
 * retention deletes what a newer snapshot covers. A pinned replica never
 * re-planned, so every read that missed the cache failed with SQLITE_IOERR
 * until it was closed, although its TXID was still restorable from other
 * files. It now plans the TXID it serves again; when that TXID is gone for
 * good, the error says so (REPLICA_TARGET_EXPIRED).
 */
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { listAllLevels, type MemoryStore, openReplica, planTarget } from "../../src/index.node.js";
import { HEAD_OBJECT_KEY } from "../../src/layout/index.js";
import type { Replicator } from "../../src/node.js";
import { level0History } from "../replicator/helpers.js";
import { RecordingStore } from "../vfs/helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Every uncached page comes from storage: a tiny cache, no bulk fetching, no hydration. */
const SMALL = {
  cacheBytes: 65536,
  sqliteCacheBytes: 65536,
  hydrate: false as const,
  bulkFetchBytes: 0,
  maxRequestsPerQuery: Number.POSITIVE_INFINITY,
};
const SCAN = "SELECT count(*), sum(length(v)), max(v) FROM t";

async function setup() {
  const { store, replicator } = await level0History(3000, cleanups);
  return { store, replicator, txid: replicator.position.txid };
}

/** Litestream's level-0 retention after a compaction into level 1: the covered level-0 files go. */
async function dropCompactedLevel0(store: MemoryStore, replicator: Replicator): Promise<string[]> {
  await replicator.compactNow();
  const level0 = (await listAllLevels(store)).filter((f) => f.level === 0 && f.minTXID > 1);
  const keys = level0.map((f) => f.key);
  await store.deleteMany(keys);
  return keys;
}

test("a pinned replica and a pinned view of a live one keep answering after the files they planned from are deleted", async () => {
  const { store, replicator, txid } = await setup();
  const pinned = await openReplica({ store, at: { txid }, ...SMALL });
  cleanups.push(() => pinned.close());
  const live = await openReplica({ store, pollIntervalMs: 0, ...SMALL });
  cleanups.push(() => live.close());
  const view = await live.pinned({ txid }, SMALL);
  cleanups.push(() => view.close());
  const expected = await pinned.values(SCAN);
  expect(await view.values(SCAN)).toEqual(expected);

  const deleted = await dropCompactedLevel0(store, replicator);
  expect(deleted.length).toBe(3);
  // The state is still there, through the level-1 file.
  expect((await planTarget(store, { txid })).files.some((f) => f.key.startsWith("0001/"))).toBe(
    true,
  );
  for (const r of [pinned, view]) {
    expect(await r.values(SCAN)).toEqual(expected);
    expect(await r.values(SCAN)).toEqual(expected);
    expect(r.status().txid).toBe(txid);
  }
});

test("a pinned replica whose TXID can no longer be restored fails with REPLICA_TARGET_EXPIRED, not a disk I/O error", async () => {
  const { store, replicator, txid } = await setup();
  const pinned = await openReplica({ store, at: { txid }, ...SMALL });
  cleanups.push(() => pinned.close());
  const expected = await pinned.values(SCAN);
  await dropCompactedLevel0(store, replicator);
  // And the level-1 file too, as Litestream's retention would (its replicas have no
  // head object): nothing restores that TXID any more.
  const upper = (await listAllLevels(store)).filter((f) => f.level >= 1 && f.level <= 8);
  await store.deleteMany([...upper.map((f) => f.key), HEAD_OBJECT_KEY]);
  const err = await pinned.values(SCAN).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: "REPLICA_TARGET_EXPIRED" });
  expect(String((err as Error).message)).toContain(`TXID ${txid}`);
  expect(pinned.status().lastError?.code).toBe("REPLICA_TARGET_EXPIRED");
  // Whatever is cached still reads; the replica is not broken beyond that TXID.
  expect(expected[0]![0]).toBe(3000);
});

test("a pinned open whose planned file is deleted before its index is read plans again", async () => {
  const { store: inner, replicator, txid } = await setup();
  const store = new RecordingStore(inner);
  let started = false;
  let deleted: string[] = [];
  store.beforeGet = async (key) => {
    // Planned from level 0; compacted into level 1 and deleted before its index arrives.
    if (!started && key.startsWith("0000/") && !key.includes("-0000000000000001.")) {
      started = true;
      deleted = await dropCompactedLevel0(inner, replicator);
    }
  };
  const pinned = await openReplica({ store, at: { txid }, ...SMALL });
  cleanups.push(() => pinned.close());
  expect(deleted.length).toBe(3);
  expect(pinned.status().txid).toBe(txid);
  expect((await pinned.values(SCAN))[0]![0]).toBe(3000);
});
