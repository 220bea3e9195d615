import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { encodeLtx } from "../../src/format/index.js";
import {
  LayoutError,
  listAllLevels,
  planRestore,
  planRestoreWithTimes,
  type ReplicaFile,
} from "../../src/layout/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { RecordingStore } from "../vfs/helpers.js";

const T0 = 1_700_000_000_000;

function f(
  level: number,
  minTXID: number,
  maxTXID: number,
  time = T0 + maxTXID * 1000,
): ReplicaFile {
  const key = `${level.toString(16).padStart(4, "0")}/${minTXID.toString(16).padStart(16, "0")}-${maxTXID.toString(16).padStart(16, "0")}.ltx`;
  return { level, minTXID, maxTXID, key, size: 100, lastModified: new Date(time) };
}

function keys(files: ReplicaFile[]): string[] {
  return files.map((x) => `${x.level}:${x.minTXID}-${x.maxTXID}`);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LayoutError);
    return (err as LayoutError).code;
  }
  return undefined;
}

describe("planRestore", () => {
  const files = [
    f(9, 1, 3),
    f(9, 1, 10),
    ...Array.from({ length: 15 }, (_, i) => f(0, i + 1, i + 1)),
    f(1, 1, 4),
    f(1, 5, 8),
    f(1, 9, 12),
    f(2, 1, 8),
  ];

  test("latest: newest snapshot then the fewest covering files", () => {
    const plan = planRestore(files);
    expect(keys(plan.files)).toEqual(["9:1-10", "1:9-12", "0:13-13", "0:14-14", "0:15-15"]);
    expect(plan.txid).toBe(15);
  });

  test("target TXID picks an older snapshot and stops exactly", () => {
    // The L2 file re-covers TXIDs 1-3 but reaches furthest: fewer files win.
    expect(keys(planRestore(files, { txid: 8 }).files)).toEqual(["9:1-3", "2:1-8"]);
    expect(
      keys(
        planRestore(
          files.filter((x) => x.level !== 2),
          { txid: 8 },
        ).files,
      ),
    ).toEqual(["9:1-3", "0:4-4", "1:5-8"]);
    expect(keys(planRestore(files, { txid: 3 }).files)).toEqual(["9:1-3"]);
    expect(keys(planRestore(files, { txid: 11 }).files)).toEqual(["9:1-10", "0:11-11"]);
  });

  test("target time uses header time when known, else upload time", () => {
    const plan = planRestore(files, { timestamp: T0 + 6500 });
    expect(plan.txid).toBe(6);
    const withHeaderTime = files.map((x) => (x.level === 1 ? { ...x, timestamp: T0 } : x));
    expect(planRestore(withHeaderTime, { timestamp: new Date(T0 + 6500) }).txid).toBe(12);
  });

  test("errors: empty, before retention, after newest, gap, only inside compaction", () => {
    expect(codeOf(() => planRestore([]))).toBe("REPLICA_EMPTY");
    // Retention removed what precedes the oldest snapshot (no file starts at TXID 1 but it).
    const retained = files.filter((x) => x.level === 9 || x.minTXID > 3);
    expect(codeOf(() => planRestore(retained, { txid: 2 }))).toBe("RESTORE_TARGET_UNAVAILABLE");
    expect(() => planRestore(retained, { txid: 2 })).toThrow(/earliest available state is TXID 3/);
    expect(codeOf(() => planRestore(files, { txid: 16 }))).toBe("RESTORE_TARGET_UNAVAILABLE");
    expect(codeOf(() => planRestore(files, { timestamp: T0 }))).toBe("RESTORE_TARGET_UNAVAILABLE");
    const gap = files.filter((x) => !(x.level === 0 && x.minTXID === 13));
    expect(codeOf(() => planRestore(gap))).toBe("RESTORE_CHAIN_GAP");
    expect(codeOf(() => planRestore(gap, { txid: 14 }))).toBe("RESTORE_CHAIN_GAP");
    const compactedOnly = [f(9, 1, 3), f(1, 4, 8)];
    expect(codeOf(() => planRestore(compactedOnly, { txid: 6 }))).toBe(
      "RESTORE_TARGET_UNAVAILABLE",
    );
    expect(codeOf(() => planRestore([f(0, 2, 2), f(1, 3, 4)]))).toBe("RESTORE_TARGET_UNAVAILABLE");
    expect(() => planRestore([f(0, 2, 2)])).toThrow(/no file starts at TXID 1/);
  });

  test("no level-9 snapshot (a young Litestream replica): the plan starts from a file at TXID 1", () => {
    const young = Array.from({ length: 6 }, (_, i) => f(0, i + 1, i + 1));
    expect(keys(planRestore(young).files)).toEqual(young.map((x) => `0:${x.minTXID}-${x.maxTXID}`));
    expect(keys(planRestore(young, { txid: 1 }).files)).toEqual(["0:1-1"]);
    expect(keys(planRestore(young, { timestamp: T0 + 3500 }).files)).toEqual([
      "0:1-1",
      "0:2-2",
      "0:3-3",
    ]);
    // A compacted file from TXID 1 is a snapshot too; the furthest one starts the plan.
    const compacted = [...young, f(1, 1, 4)];
    expect(keys(planRestore(compacted).files)).toEqual(["1:1-4", "0:5-5", "0:6-6"]);
    expect(keys(planRestore(compacted, { txid: 3 }).files)).toEqual(["0:1-1", "0:2-2", "0:3-3"]);
  });

  test("a level-9 snapshot after the target does not hide older files starting at TXID 1", () => {
    // The reference fixtures' shape: L0 1..6, L1 1-4, L9 1-3.
    const shaped = [
      ...Array.from({ length: 6 }, (_, i) => f(0, i + 1, i + 1)),
      f(1, 1, 4),
      f(9, 1, 3),
    ];
    expect(keys(planRestore(shaped).files)).toEqual(["9:1-3", "0:4-4", "0:5-5", "0:6-6"]);
    expect(keys(planRestore(shaped, { txid: 4 }).files)).toEqual(["9:1-3", "0:4-4"]);
    expect(keys(planRestore(shaped, { txid: 2 }).files)).toEqual(["0:1-1", "0:2-2"]);
    expect(keys(planRestore(shaped, { timestamp: T0 + 1500 }).files)).toEqual(["0:1-1"]);
  });

  test("a later snapshot bridges a gap left by a continuity break", () => {
    const broken = [f(9, 1, 3), f(0, 4, 4), f(0, 5, 5), f(9, 1, 7), f(0, 8, 8)];
    expect(keys(planRestore(broken).files)).toEqual(["9:1-7", "0:8-8"]);
    expect(keys(planRestore(broken, { txid: 5 }).files)).toEqual(["9:1-3", "0:4-4", "0:5-5"]);
  });

  test("property: plans are contiguous chains ending at the target with no more files than per-TXID", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 60 }),
        fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 5 }),
        fc.array(
          fc.tuple(
            fc.integer({ min: 1, max: 3 }),
            fc.integer({ min: 1, max: 60 }),
            fc.integer({ min: 1, max: 10 }),
          ),
        ),
        fc.integer({ min: 1, max: 60 }),
        (n, snaps, compactions, target) => {
          const all: ReplicaFile[] = [f(9, 1, 1)];
          for (let t = 2; t <= n; t++) all.push(f(0, t, t));
          for (const s of snaps) if (s <= n) all.push(f(9, 1, s));
          for (const [lvl, start, len] of compactions) {
            const end = Math.min(n, start + len);
            if (start >= 2 && start <= end) all.push(f(lvl, start, end));
          }
          const t = Math.min(target, n);
          const plan = planRestore(all, { txid: t });
          expect(plan.txid).toBe(t);
          expect(plan.files[0]!.level).toBe(9);
          let cur = plan.files[0]!.maxTXID;
          for (const x of plan.files.slice(1)) {
            expect(x.minTXID).toBeLessThanOrEqual(cur + 1);
            expect(x.maxTXID).toBeGreaterThan(cur);
            cur = x.maxTXID;
          }
          expect(cur).toBe(t);
          expect(plan.files.length).toBeLessThanOrEqual(t);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("planRestoreWithTimes: commit times from LTX headers", () => {
  /** A replica whose upload times say nothing (all "now", as after a copy). */
  async function copiedReplica(levels: { level: number; min: number; max: number }[]) {
    const mem = new MemoryStore({ name: `times-${Math.random().toString(36).slice(2)}` });
    for (const { level, min, max } of levels) {
      const bytes = encodeLtx({
        header: {
          pageSize: 512,
          commit: 1,
          minTXID: min,
          maxTXID: max,
          flags: 2,
          timestamp: T0 + max * 1000,
        },
        pages: [{ pgno: 1, data: new Uint8Array(512) }],
        postApplyChecksum: 0n,
      });
      const key = `${level.toString(16).padStart(4, "0")}/${min.toString(16).padStart(16, "0")}-${max.toString(16).padStart(16, "0")}.ltx`;
      await mem.put(key, bytes);
    }
    return mem;
  }

  test("time targets read a few headers per level and report the exact commit time", async () => {
    const n = 200;
    const mem = await copiedReplica([
      ...Array.from({ length: n }, (_, i) => ({ level: 0, min: i + 1, max: i + 1 })),
      { level: 1, min: 1, max: 100 },
      { level: 1, min: 101, max: 150 },
    ]);
    const store = new RecordingStore(mem);
    const files = await listAllLevels(store);
    // Upload times are all after every commit: a plan from them finds nothing.
    expect(codeOf(() => planRestore(files, { timestamp: T0 + 120_500 }))).toBe(
      "RESTORE_TARGET_UNAVAILABLE",
    );
    store.reset();
    const plan = await planRestoreWithTimes(store, files, { timestamp: T0 + 120_500 });
    expect(plan.txid).toBe(120);
    expect(plan.timestamp).toBe(T0 + 120_000);
    expect(keys(plan.files)).toEqual([
      "1:1-100",
      ...Array.from({ length: 20 }, (_, i) => `0:${101 + i}-${101 + i}`),
    ]);
    const reads = store.calls.filter((c) => c.op === "get");
    expect(reads.every((c) => c.range && "length" in c.range && c.range.length === 100)).toBe(true);
    // A search per level reading up to 8 headers per round trip (levels in
    // parallel): 3 round trips and a few dozen headers for 200 files, not 202
    // headers, nor the 8 round trips of a binary search.
    expect(store.depth()).toBeLessThanOrEqual(3);
    expect(reads.length).toBeLessThanOrEqual(40);
    // Exact times known from elsewhere (a head object) are not read again.
    store.reset();
    const known = files.map((x) => ({ ...x, timestamp: T0 + x.maxTXID * 1000 }));
    expect((await planRestoreWithTimes(store, known, { timestamp: T0 + 7_000 })).txid).toBe(7);
    expect(store.calls).toEqual([]);
    // TXID and latest targets need no header.
    expect((await planRestoreWithTimes(store, files, { txid: 150 })).txid).toBe(150);
    expect((await planRestoreWithTimes(store, files)).txid).toBe(n);
    expect(store.calls).toEqual([]);
    // Before the first commit: unavailable, as with known times.
    await expect(planRestoreWithTimes(store, files, { timestamp: T0 })).rejects.toMatchObject({
      code: "RESTORE_TARGET_UNAVAILABLE",
    });
  });
});
