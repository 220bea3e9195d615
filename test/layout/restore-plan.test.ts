import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { LayoutError, planRestore, type ReplicaFile } from "../../src/layout/index.js";

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
    expect(codeOf(() => planRestore(files, { txid: 2 }))).toBe("RESTORE_TARGET_UNAVAILABLE");
    expect(() => planRestore(files, { txid: 2 })).toThrow(/earliest available state is TXID 3/);
    expect(codeOf(() => planRestore(files, { txid: 16 }))).toBe("RESTORE_TARGET_UNAVAILABLE");
    expect(codeOf(() => planRestore(files, { timestamp: T0 }))).toBe("RESTORE_TARGET_UNAVAILABLE");
    const gap = files.filter((x) => !(x.level === 0 && x.minTXID === 13));
    expect(codeOf(() => planRestore(gap))).toBe("RESTORE_CHAIN_GAP");
    expect(codeOf(() => planRestore(gap, { txid: 14 }))).toBe("RESTORE_CHAIN_GAP");
    const compactedOnly = [f(9, 1, 3), f(1, 4, 8)];
    expect(codeOf(() => planRestore(compactedOnly, { txid: 6 }))).toBe(
      "RESTORE_TARGET_UNAVAILABLE",
    );
    expect(codeOf(() => planRestore([f(0, 1, 1)]))).toBe("RESTORE_TARGET_UNAVAILABLE");
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
