/**
 * The LTX files of a replica as Litestream 0.5 lays them out:
 * `<level as %04x>/<minTXID %016x>-<maxTXID %016x>.ltx` under the store root.
 * Reader-safe (no `node:` imports).
 */
import { ltxLevelPrefix, parseLtxKey } from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";

/** Level of full snapshots (`0009/0000000000000001-<txid>.ltx`). */
export const SNAPSHOT_LEVEL = 9;

/** Highest compaction level below the snapshot level that a Litestream replica may use. */
export const MAX_COMPACTION_LEVEL = SNAPSHOT_LEVEL - 1;

/** One LTX file found in a replica. */
export interface ReplicaFile {
  level: number;
  minTXID: number;
  maxTXID: number;
  /** Store key, e.g. `0000/0000000000000005-0000000000000005.ltx`. */
  key: string;
  /** Object size in bytes. */
  size: number;
  /** When the object was written (from the store's listing). */
  lastModified: Date;
  /**
   * Commit time (ms since epoch) of `maxTXID` from the LTX header, when known
   * (the head object carries it). More accurate than `lastModified` for
   * compacted files, which are written long after their transactions.
   */
  timestamp?: number;
}

/** The key prefix of a level, e.g. `"0009/"`. */
export function levelPrefix(level: number): string {
  return ltxLevelPrefix(level);
}

/** The time a file's newest transaction was committed: header time when known, else upload time. */
export function fileTime(file: ReplicaFile): number {
  return file.timestamp ?? file.lastModified.getTime();
}

/** Orders files by level, then minTXID, then maxTXID (the order a listing returns them in). */
export function compareReplicaFiles(a: ReplicaFile, b: ReplicaFile): number {
  return a.level - b.level || a.minTXID - b.minTXID || a.maxTXID - b.maxTXID;
}

/**
 * Parses a store key into a replica file position, or `undefined` for keys that
 * are not LTX files of a level 0..9 (foreign objects are skipped, not errors).
 */
export function parseReplicaKey(
  key: string,
): { level: number; minTXID: number; maxTXID: number } | undefined {
  const pos = parseLtxKey(key);
  return pos && pos.level <= SNAPSHOT_LEVEL ? pos : undefined;
}

/** Options for {@link listLevel}. */
export interface ListLevelOptions {
  /** Only keys lexicographically after this full key. */
  startAfter?: string;
  /** Only files whose minTXID is greater than this (a `startAfter` computed for you). */
  afterTXID?: number;
  signal?: AbortSignal;
}

/** Lists one level's LTX files in TXID order, following pagination. */
export async function listLevel(
  store: ObjectStore,
  level: number,
  options: ListLevelOptions = {},
): Promise<ReplicaFile[]> {
  const prefix = levelPrefix(level);
  let startAfter = options.startAfter;
  if (options.afterTXID !== undefined && options.afterTXID > 0) {
    // Every key of a file with minTXID <= afterTXID sorts at or before this one.
    const bound = `${prefix}${options.afterTXID.toString(16).padStart(16, "0")}-ffffffffffffffff.ltx`;
    if (startAfter === undefined || bound > startAfter) startAfter = bound;
  }
  const files = await listPrefix(store, prefix, startAfter, options.signal);
  return files.filter((f) => f.level === level);
}

/** Lists every level's LTX files (levels 0..9), ordered by level then TXID. */
export async function listAllLevels(
  store: ObjectStore,
  options: { signal?: AbortSignal } = {},
): Promise<ReplicaFile[]> {
  const files = await listPrefix(store, "", undefined, options.signal);
  return files.sort(compareReplicaFiles);
}

async function listPrefix(
  store: ObjectStore,
  prefix: string,
  startAfter: string | undefined,
  signal: AbortSignal | undefined,
): Promise<ReplicaFile[]> {
  const out: ReplicaFile[] = [];
  let continuationToken: string | undefined;
  // A store that keeps handing out the same token would loop forever.
  const seenTokens = new Set<string>();
  for (;;) {
    const page = await store.list({
      prefix,
      ...(startAfter !== undefined ? { startAfter } : {}),
      ...(continuationToken !== undefined ? { continuationToken } : {}),
      ...(signal ? { signal } : {}),
    });
    for (const meta of page.objects) {
      const pos = parseReplicaKey(meta.key);
      if (!pos) continue;
      out.push({ ...pos, key: meta.key, size: meta.size, lastModified: meta.lastModified });
    }
    continuationToken = page.continuationToken;
    if (continuationToken === undefined || seenTokens.has(continuationToken)) break;
    seenTokens.add(continuationToken);
  }
  return out;
}
