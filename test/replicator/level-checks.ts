/**
 * Level checks shared by the contiguity tests: holes in levels 0-8, and the
 * restore plan Litestream 0.5 makes, written from its documented behaviour.
 */
import { type ReplicaFile, SNAPSHOT_LEVEL } from "../../src/layout/index.js";

/** Files per level, each level sorted by TXID. */
export function byLevel(files: readonly ReplicaFile[]): Map<number, ReplicaFile[]> {
  const levels = new Map<number, ReplicaFile[]>();
  for (const f of files) {
    const list = levels.get(f.level) ?? [];
    list.push(f);
    levels.set(f.level, list);
  }
  for (const list of levels.values()) list.sort((a, b) => a.minTXID - b.minTXID);
  return levels;
}

/** Each level 0-8: every file starts right after the previous one ends (no hole, no overlap). */
export function holes(files: readonly ReplicaFile[]): string[] {
  const out: string[] = [];
  for (const [level, list] of byLevel(files)) {
    if (level === SNAPSHOT_LEVEL) continue;
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      if (cur.minTXID !== prev.maxTXID + 1) {
        out.push(
          `level ${level}: ${prev.minTXID}-${prev.maxTXID} then ${cur.minTXID}-${cur.maxTXID}`,
        );
      }
    }
  }
  return out;
}

/**
 * The plan Litestream 0.5's restore makes (from its documented behaviour):
 * the newest snapshot at or before the target, then levels 8 down to 0,
 * each file that reaches past what the plan has must extend it, else the
 * restore fails ("non-contiguous transaction files").
 */
export function litestreamPlan(files: readonly ReplicaFile[], txid: number): ReplicaFile[] {
  const levels = byLevel(files);
  const snapshot = (levels.get(SNAPSHOT_LEVEL) ?? [])
    .filter((f) => f.minTXID === 1 && f.maxTXID <= txid)
    .sort((a, b) => a.maxTXID - b.maxTXID)
    .pop();
  const plan = snapshot ? [snapshot] : [];
  let max = snapshot?.maxTXID ?? 0;
  for (let level = SNAPSHOT_LEVEL - 1; level >= 0; level--) {
    for (const f of levels.get(level) ?? []) {
      if (f.maxTXID <= max || f.maxTXID > txid) continue;
      if (f.minTXID > max + 1) {
        throw new Error(
          `non-contiguous: have ${max}, level ${level} file ${f.minTXID}-${f.maxTXID}`,
        );
      }
      plan.push(f);
      max = f.maxTXID;
    }
  }
  if (max !== txid) throw new Error(`plan ends at ${max}, not ${txid}`);
  return plan;
}
