/**
 * Retention: which files may be deleted. A file goes only when
 * - it is older than the retention window,
 * - a snapshot that is itself kept covers it (so every state within the
 *   window stays restorable from a kept snapshot plus kept files), and that
 *   snapshot has been in the replica for the whole window,
 * - the current head does not reference it, and
 * - it left the head's plan at least a grace period ago (a reader that
 *   fetched an older head may still be opening it), and
 * - every older file of its level goes too (levels stay contiguous).
 */
import { fileTime, type ReplicaFile, SNAPSHOT_LEVEL } from "../layout/index.js";

/** Inputs of {@link selectExpiredFiles}. */
export interface RetentionInput {
  files: readonly ReplicaFile[];
  now: number;
  retentionMs: number;
  graceMs: number;
  /** Keys the current head references. */
  headKeys: ReadonlySet<string>;
  /** When each key was last referenced by a head this writer published (absent: treat as `fallbackLeftAt`). */
  leftHeadAt: ReadonlyMap<string, number>;
  /** Assumed time a file left the head when unknown (e.g. the writer's start). */
  fallbackLeftAt: number;
}

/** Keys to delete. */
export function selectExpiredFiles(input: RetentionInput): string[] {
  const cutoff = input.now - input.retentionMs;
  const snapshots = input.files
    .filter((f) => f.level === SNAPSHOT_LEVEL && f.minTXID === 1)
    .sort((a, b) => a.maxTXID - b.maxTXID);
  if (snapshots.length === 0) return [];
  // Keep every snapshot inside the window and the newest one older than it, so
  // a restore to any time within the window has a starting point. A snapshot
  // counts as older only once it was also uploaded before the window: the
  // periodic snapshot of an idle database carries its last commit's time,
  // and taken by that alone it let the files before it go a grace period
  // after it appeared, under restores and pinned readers still using them.
  let floor = 0;
  for (let i = 0; i < snapshots.length; i++) {
    const s = snapshots[i]!;
    if (Math.max(fileTime(s), s.lastModified.getTime()) <= cutoff) floor = i;
  }
  const keptFrom = snapshots[floor]!;
  const deletable = (f: ReplicaFile) => {
    if (input.headKeys.has(f.key)) return false;
    if (fileTime(f) > cutoff) return false;
    const left = input.leftHeadAt.get(f.key) ?? input.fallbackLeftAt;
    if (input.now - left < input.graceMs) return false;
    return true;
  };
  const out: string[] = [];
  for (let i = 0; i < floor; i++) {
    const s = snapshots[i]!;
    if (deletable(s)) out.push(s.key);
  }
  // Levels 0-8 lose only a prefix (oldest first, up to the first file kept),
  // so that each stays contiguous: Litestream's readers fill a level-0 gap
  // from levels 1-8 and never expect a hole inside a level.
  const levels = new Map<number, ReplicaFile[]>();
  for (const f of input.files) {
    if (f.level === SNAPSHOT_LEVEL) continue;
    const list = levels.get(f.level) ?? [];
    list.push(f);
    levels.set(f.level, list);
  }
  for (const list of levels.values()) {
    list.sort((a, b) => a.minTXID - b.minTXID || a.maxTXID - b.maxTXID);
    for (const f of list) {
      if (f.maxTXID > keptFrom.maxTXID || !deletable(f)) break;
      out.push(f.key);
    }
  }
  return out;
}
