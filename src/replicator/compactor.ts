/**
 * Compaction: merges a contiguous run of LTX files of one level into one file
 * of the next level (newest version of each page, pages above the final
 * Commit dropped), the way Litestream's compactor does, and decides which
 * runs are due.
 */
import { decodeLtx, type LtxCompat, lockPgno } from "../format/index.js";
import type { ReplicaFile } from "../layout/index.js";
import { type EncodedLtx, LtxBuilder } from "./ltx-builder.js";
import { ReplicatorError } from "./replicator-error.js";

/**
 * Merges decoded-and-verified inputs (oldest first, contiguous TXIDs) into one
 * file. Every input is fully verified (file checksum, index) by `decodeLtx`,
 * whichever page encoding it uses; the output uses `options.compat`'s
 * (default `"0.5.2"`, see `LtxCompat`).
 */
export function mergeLtxFiles(
  inputs: readonly Uint8Array[],
  options: { compat?: LtxCompat } = {},
): EncodedLtx {
  if (inputs.length === 0) throw new ReplicatorError("INVALID_STATE", "nothing to compact");
  const decoded = inputs.map((b) => decodeLtx(b));
  const first = decoded[0]!.header;
  const last = decoded[decoded.length - 1]!.header;
  for (let i = 1; i < decoded.length; i++) {
    const prev = decoded[i - 1]!.header;
    const cur = decoded[i]!.header;
    if (cur.pageSize !== first.pageSize) {
      throw new ReplicatorError("INVALID_STATE", "cannot compact files with different page sizes");
    }
    if (cur.minTXID !== prev.maxTXID + 1) {
      throw new ReplicatorError(
        "INVALID_STATE",
        `cannot compact non-contiguous files: ${prev.maxTXID} then ${cur.minTXID}`,
      );
    }
  }
  const pages = new Map<number, Uint8Array>();
  for (const d of decoded) for (const p of d.pages) pages.set(p.pgno, p.data);
  const lock = lockPgno(first.pageSize);
  const builder = new LtxBuilder(
    {
      pageSize: first.pageSize,
      commit: last.commit,
      minTXID: first.minTXID,
      maxTXID: last.maxTXID,
      timestamp: last.timestamp,
    },
    options.compat !== undefined ? { compat: options.compat } : {},
  );
  const pgnos = [...pages.keys()]
    .filter((p) => p <= last.commit && p !== lock)
    .sort((a, b) => a - b);
  for (const pgno of pgnos) builder.page(pgno, pages.get(pgno)!);
  return builder.finish();
}

/** A source file as compaction sees it (see `KnownFile.full`). */
export type CompactionInput = ReplicaFile & { full?: boolean };

/**
 * The runs of `source`-level files to compact into the destination level,
 * oldest first: the files after the destination's newest TXID, split
 * - wherever TXIDs are not contiguous (replicas written before every level
 *   was kept contiguous have such holes: a compacted file never spans one);
 * - around a `full` file (the whole database at a TXID after continuity was
 *   lost): it goes up alone, so the files after it stay small and a reader
 *   starting from the level-9 snapshot of that TXID never reads it.
 * A file starting at TXID 1 (a complete snapshot: the first TXID of a
 * replica) that a level-9 snapshot covers (`snapshotMaxTXID`, the newest
 * level-9 snapshot's TXID, at or past its end) stays in its level as its
 * start, and the destination level starts right after it, instead of copying
 * the whole database up every level: a restore (Litestream's too) starts
 * from that snapshot and continues in any level. Without such a snapshot (a
 * Litestream replica whose level 1 starts with 1-4 and whose snapshot ends
 * at 3), it is compacted like any other file, so that no level starts past
 * what the snapshots reach.
 */
export function compactionRuns(
  source: readonly CompactionInput[],
  destMaxTXID: number,
  snapshotMaxTXID = 0,
): CompactionInput[][] {
  const pending = source
    .filter((f) => f.minTXID > destMaxTXID)
    .filter((f) => f.minTXID > 1 || f.maxTXID > snapshotMaxTXID)
    .sort((a, b) => a.minTXID - b.minTXID);
  const runs: CompactionInput[][] = [];
  let run: CompactionInput[] = [];
  for (const f of pending) {
    const prev = run[run.length - 1];
    if (prev && (f.minTXID !== prev.maxTXID + 1 || f.full || prev.full)) {
      runs.push(run);
      run = [];
    }
    run.push(f);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
