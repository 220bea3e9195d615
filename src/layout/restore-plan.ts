/**
 * Restore planning: which LTX files, applied in order, produce the database at
 * a target TXID or time with the fewest files. Works on replicas written by
 * pagecast and by Litestream 0.5 (no head object needed), including young
 * Litestream replicas that hold no level-9 snapshot yet. Reader-safe.
 */
import { LayoutError } from "./layout-error.js";
import { fileTime, type ReplicaFile, SNAPSHOT_LEVEL } from "./replica-files.js";

/** What to restore: a TXID, or the newest state committed at or before a time. Omitted: the latest. */
export type RestoreTarget = { txid: number } | { timestamp: number | Date };

/** The files to apply, in order, and the position they produce. */
export interface RestorePlan {
  /**
   * A file starting at TXID 1 first (a full snapshot: level 9 when one is
   * eligible, else the level 0-8 file reaching furthest), then files that
   * extend it contiguously (overlap allowed).
   */
  files: ReplicaFile[];
  /** TXID of the restored state. */
  txid: number;
  /** Commit time of `txid` as far as the files tell (ms since epoch). */
  timestamp: number;
}

function describe(file: ReplicaFile): string {
  return `TXID ${file.maxTXID} (${new Date(fileTime(file)).toISOString()})`;
}

function targetText(target: RestoreTarget | undefined): string {
  if (!target) return "the latest state";
  if ("txid" in target) return `TXID ${target.txid}`;
  const t = target.timestamp instanceof Date ? target.timestamp.getTime() : target.timestamp;
  return Number.isFinite(t) ? new Date(t).toISOString() : String(t);
}

/**
 * The target as the subject of an error. Restore, replicas opened `at` a
 * time and time travel share these messages, so none says "restore".
 */
function stateText(target: RestoreTarget | undefined): string {
  if (!target) return "the latest state";
  return "txid" in target ? targetText(target) : `the state at ${targetText(target)}`;
}

/**
 * Plans a restore: the newest level-9 snapshot at or before the target, then,
 * greedily, the file reaching furthest that starts at or before the next
 * needed TXID (the classic interval-cover greedy, which yields the fewest
 * files). Compacted levels therefore win wherever they cover.
 *
 * When no level-9 snapshot is at or before the target (a young Litestream
 * replica has none yet; retention or a TXID target may rule the snapshots
 * out), the plan starts, as Litestream's does, from a file of levels 0-8 that
 * starts at TXID 1: every LTX file starting at TXID 1 is a full snapshot (its
 * header says so and the format requires every page). Among those the one
 * reaching furthest is taken.
 *
 * Throws `LayoutError` with code `REPLICA_EMPTY` (no LTX files),
 * `RESTORE_TARGET_UNAVAILABLE` (target before retention or after the newest
 * TXID; the message names the earliest and newest available positions) or
 * `RESTORE_CHAIN_GAP` (TXIDs missing between the snapshot and the target).
 */
export function planRestore(files: readonly ReplicaFile[], target?: RestoreTarget): RestorePlan {
  let maxTXID = Number.POSITIVE_INFINITY;
  let maxTime = Number.POSITIVE_INFINITY;
  if (target && "txid" in target) {
    if (!Number.isSafeInteger(target.txid) || target.txid < 1) {
      throw new LayoutError(
        "RESTORE_TARGET_UNAVAILABLE",
        `invalid target TXID ${String(target.txid)}`,
      );
    }
    maxTXID = target.txid;
  } else if (target) {
    maxTime = target.timestamp instanceof Date ? target.timestamp.getTime() : target.timestamp;
    if (!Number.isFinite(maxTime)) {
      throw new LayoutError("RESTORE_TARGET_UNAVAILABLE", "invalid target timestamp");
    }
  }
  const eligible = (f: ReplicaFile) => f.maxTXID <= maxTXID && fileTime(f) <= maxTime;

  // Level-9 files not starting at TXID 1 are not snapshots Litestream would use either.
  const snapshots = files.filter((f) => f.level === SNAPSHOT_LEVEL && f.minTXID === 1);
  const deltas = files
    .filter((f) => f.level < SNAPSHOT_LEVEL)
    .slice()
    .sort((a, b) => a.minTXID - b.minTXID || b.maxTXID - a.maxTXID);
  if (snapshots.length === 0 && deltas.length === 0) {
    throw new LayoutError("REPLICA_EMPTY", "the replica holds no LTX files");
  }
  const newest = Math.max(0, ...files.map((f) => f.maxTXID));

  let snapshot = furthest(snapshots.filter(eligible));
  // No level-9 snapshot at or before the target: any other file starting at
  // TXID 1 is a full snapshot too (Litestream starts from one the same way).
  const bases = deltas.filter((f) => f.minTXID === 1);
  snapshot ??= furthest(bases.filter(eligible));
  if (!snapshot) {
    const earliest = [...snapshots, ...bases].reduce<ReplicaFile | undefined>(
      (a, s) => (!a || s.maxTXID < a.maxTXID ? s : a),
      undefined,
    );
    throw new LayoutError(
      "RESTORE_TARGET_UNAVAILABLE",
      earliest
        ? `${stateText(target)} is not available: the earliest available state is ${describe(earliest)}`
        : `${stateText(target)} is not available: no file starts at TXID 1 (the replica holds no snapshot)`,
    );
  }

  const plan: ReplicaFile[] = [snapshot];
  let current = snapshot.maxTXID;
  let i = 0;
  while (current < maxTXID) {
    let best: ReplicaFile | undefined;
    for (; i < deltas.length && deltas[i]!.minTXID <= current + 1; i++) {
      const f = deltas[i]!;
      if (f.maxTXID <= current || !eligible(f)) continue;
      // Reach furthest; on a tie prefer the file re-covering fewer applied TXIDs.
      if (
        !best ||
        f.maxTXID > best.maxTXID ||
        (f.maxTXID === best.maxTXID && f.minTXID > best.minTXID)
      ) {
        best = f;
      }
    }
    if (!best) break;
    plan.push(best);
    current = best.maxTXID;
  }

  if (target && "txid" in target && current < target.txid) {
    if (target.txid > newest) {
      throw new LayoutError(
        "RESTORE_TARGET_UNAVAILABLE",
        `TXID ${target.txid} is not available: the newest available TXID is ${newest}`,
      );
    }
    const covering = deltas.find((f) => f.minTXID <= target.txid && f.maxTXID >= target.txid);
    if (covering && covering.minTXID <= current + 1) {
      throw new LayoutError(
        "RESTORE_TARGET_UNAVAILABLE",
        `TXID ${target.txid} is not available on its own: it is only inside compacted file ` +
          `${covering.key} (TXIDs ${covering.minTXID}-${covering.maxTXID})`,
      );
    }
  }
  // A later file that the chain cannot reach means TXIDs are missing.
  const beyond = deltas.find((f) => f.minTXID > current + 1 && eligible(f));
  if (beyond || (target && "txid" in target && current < target.txid)) {
    const next = beyond ? `the next file starts at TXID ${beyond.minTXID}` : "no file continues it";
    throw new LayoutError(
      "RESTORE_CHAIN_GAP",
      `${stateText(target)} is not available: the TXID chain stops at ${current} and ${next}`,
    );
  }
  const last = plan[plan.length - 1]!;
  return { files: plan, txid: current, timestamp: fileTime(last) };
}

/** The file reaching the highest TXID (the first such one on ties). */
function furthest(files: readonly ReplicaFile[]): ReplicaFile | undefined {
  let best: ReplicaFile | undefined;
  for (const f of files) if (!best || f.maxTXID > best.maxTXID) best = f;
  return best;
}
