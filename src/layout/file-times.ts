/**
 * Commit times for time-targeted plans. A listing gives only upload times
 * (and a copied or re-uploaded replica not even those); the time a file's
 * newest transaction was committed is in its LTX header. A pagecast head
 * object carries it for the files of the current plan; for the others
 * (and every file of a Litestream replica) the headers are read, but only
 * the few a search per level needs: within one level, header times do not
 * decrease as TXIDs grow (each file's time is that of its newest
 * transaction), so the files committed at or before a time are a prefix. The
 * search reads several headers per round trip (every one of a short level).
 * Reader-safe.
 */
import { decodeLtxHeader, LTX_HEADER_SIZE } from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { type ReplicaFile, SNAPSHOT_LEVEL } from "./replica-files.js";
import { planRestore, type RestorePlan, type RestoreTarget } from "./restore-plan.js";

/** Reads the header time (ms since epoch) of one file: one 100-byte range GET. */
export async function readHeaderTime(
  store: ObjectStore,
  key: string,
  signal?: AbortSignal,
): Promise<number> {
  const res = await store.get(key, {
    range: { offset: 0, length: LTX_HEADER_SIZE },
    ...(signal ? { signal } : {}),
  });
  if (res.notModified) throw new Error(`unexpected not-modified answer for ${key}`);
  return decodeLtxHeader(res.body).timestamp;
}

/** Header reads per level and round while searching a long level. */
const PROBES = 8;
/** Intervals this short are read whole in one round. */
const ALL_AT_ONCE = 32;

function targetTime(target: RestoreTarget | undefined): number | undefined {
  if (!target || "txid" in target) return undefined;
  return target.timestamp instanceof Date ? target.timestamp.getTime() : target.timestamp;
}

/**
 * {@link planRestore} with exact commit times: for a time target, files
 * without a known `timestamp` get their header time read (a search per
 * level reading up to 8 headers per round trip, or all of a level of at most
 * 32 files at once; levels in parallel), and the plan reports the exact commit time of its last file.
 * TXID and latest targets plan from the listing alone. The returned files
 * carry `timestamp` only where it is the exact header time.
 */
export async function planRestoreWithTimes(
  store: ObjectStore,
  files: readonly ReplicaFile[],
  target?: RestoreTarget,
  options: { signal?: AbortSignal } = {},
): Promise<RestorePlan> {
  const at = targetTime(target);
  if (at === undefined || !Number.isFinite(at)) return planRestore(files, target);
  const exact = new Map<string, number>();
  for (const f of files) if (f.timestamp !== undefined) exact.set(f.key, f.timestamp);
  const read = async (f: ReplicaFile): Promise<number> => {
    let t = exact.get(f.key);
    if (t === undefined) {
      t = await readHeaderTime(store, f.key, options.signal);
      exact.set(f.key, t);
    }
    return t;
  };
  // Times for planning: exact where read, else a bound on the right side of `at`.
  const bound = new Map<string, number>();
  const levels = new Map<number, ReplicaFile[]>();
  for (const f of files) {
    if (f.level > SNAPSHOT_LEVEL) continue;
    const list = levels.get(f.level) ?? [];
    list.push(f);
    levels.set(f.level, list);
  }
  await Promise.all(
    [...levels.values()].map(async (level) => {
      level.sort((a, b) => a.minTXID - b.minTXID || a.maxTXID - b.maxTXID);
      // Largest index whose time is <= at: lo ends one past it. Each round
      // reads several probes at once (all of a short interval), so a level
      // of n files takes about log_(PROBES+1)(n) round trips, not log2(n).
      let lo = 0;
      let hi = level.length;
      while (lo < hi) {
        const n = hi - lo;
        const probes: number[] = [];
        if (n <= ALL_AT_ONCE) for (let i = lo; i < hi; i++) probes.push(i);
        else for (let k = 1; k <= PROBES; k++) probes.push(lo + Math.floor((n * k) / (PROBES + 1)));
        const times = await Promise.all(probes.map((i) => read(level[i]!)));
        let newLo = lo;
        let newHi = hi;
        for (let k = 0; k < probes.length; k++) {
          if (times[k]! <= at) newLo = Math.max(newLo, probes[k]! + 1);
          else newHi = Math.min(newHi, probes[k]!);
        }
        // Times never decrease within a level, so the answer lies in [newLo, newHi].
        lo = newLo;
        hi = Math.max(newLo, newHi);
      }
      const before = lo > 0 ? exact.get(level[lo - 1]!.key) : undefined;
      const after = lo < level.length ? exact.get(level[lo]!.key) : undefined;
      for (let i = 0; i < level.length; i++) {
        const f = level[i]!;
        const t = exact.get(f.key);
        // Unread files: no later than the last file at or before `at`, no
        // earlier than the first one after it.
        bound.set(f.key, t ?? (i < lo ? before! : after!));
      }
    }),
  );
  const plan = planRestore(
    files.map((f) => ({ ...f, timestamp: bound.get(f.key) ?? f.timestamp })),
    target,
  );
  const last = plan.files[plan.files.length - 1]!;
  const timestamp = await read(last);
  return {
    ...plan,
    timestamp,
    files: plan.files.map((p) => {
      const { timestamp: _bound, ...rest } = p;
      const t = exact.get(p.key);
      return t === undefined ? rest : { ...rest, timestamp: t };
    }),
  };
}
