/**
 * Planning a target (a TXID, a time, or the latest state) in a number of
 * round trips that does not grow with the history's length.
 *
 * Listing a whole replica costs one sequential LIST page per 1000 files: a
 * day of 1-second syncs with Litestream's compaction levels holds thousands
 * of files, so a plain listing takes several round trips before anything can
 * be planned. Instead:
 *
 * 1. the head object and the level-9 snapshots, in parallel (one round trip);
 * 2. the head names the latest plan: its files up to the target are the
 *    start of the target's plan too (a greedy plan for the latest state
 *    reaches as far as possible at every step, so its prefix is the greedy
 *    plan of any earlier target), and the first head file past the target
 *    bounds the TXID range still to be covered. Only that range is listed,
 *    per level and all levels in parallel, with start-after bounds (one
 *    round trip: the range spans less than one file of the level above, so
 *    each level fits one LIST page).
 *
 * Without a usable head (a Litestream-written replica) the range starts at
 * the newest eligible snapshot; a level with more files than one page then
 * has the rest of its range listed as parallel sub-ranges sized from the
 * first page's density, so it still takes two round trips, not one per 1000
 * files. Time targets read the commit times the head does not carry from
 * the LTX headers of the few files in range (see `planRestoreWithTimes`).
 *
 * Whenever the bounded listing cannot produce a plan (a gap, a target it
 * cannot place), the whole replica is listed and planned as before, so the
 * answer (or the error) is exactly that of a full listing. Reader-safe.
 */
import type { ObjectStore } from "../storage/object-store.js";
import { missingObjectKey, NotFoundError } from "../storage/store-errors.js";
import { planRestoreWithTimes } from "./file-times.js";
import { type HeadFile, type HeadObject, readHeadObject } from "./head-object.js";
import { LayoutError } from "./layout-error.js";
import {
  levelPrefix,
  listAllLevels,
  listLevel,
  MAX_COMPACTION_LEVEL,
  parseReplicaKey,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "./replica-files.js";
import type { RestorePlan, RestoreTarget } from "./restore-plan.js";

/** Share of a full LIST page a sub-range is sized to hold (room for uneven density). */
const SUBRANGE_FILL = 0.8;
/** Most parallel sub-range listings per level. */
const MAX_SUBRANGES = 16;

/** A plan for a target, with the head object it was made with (if any). */
export interface TargetPlan extends RestorePlan {
  /** The head object read while planning (`undefined`: none, or unusable). */
  head: HeadObject | undefined;
  /**
   * `bounded`: planned from the head's plan and the files of the target's
   * TXID range; `full`: from a listing of the whole replica.
   */
  listing: "bounded" | "full";
}

/** Options of {@link planTarget}. */
export interface PlanTargetOptions {
  /** Store for the head object read (default: `store`), e.g. to account it separately. */
  headStore?: ObjectStore;
  signal?: AbortSignal;
}

/**
 * The head object, or `undefined` when there is none (a Litestream replica)
 * or it cannot be used (damaged, too large, or from a newer writer).
 */
export async function readUsableHead(
  store: ObjectStore,
  signal?: AbortSignal,
): Promise<HeadObject | undefined> {
  try {
    const res = await readHeadObject(store, signal ? { signal } : {});
    return res.notModified ? undefined : res.head;
  } catch (err) {
    // By code too: a store from another copy of pagecast throws its own class.
    if (err instanceof NotFoundError || (err as { code?: unknown }).code === "STORE_NOT_FOUND") {
      return undefined;
    }
    if (err instanceof LayoutError && err.code === "HEAD_OBJECT_INVALID") return undefined;
    throw err;
  }
}

function headFileToReplicaFile(f: HeadFile): ReplicaFile {
  return {
    level: f.level,
    minTXID: f.minTXID,
    maxTXID: f.maxTXID,
    key: f.key,
    size: f.size,
    lastModified: new Date(f.timestamp),
    timestamp: f.timestamp,
  };
}

function targetTime(target: RestoreTarget): number {
  return target && "timestamp" in target
    ? target.timestamp instanceof Date
      ? target.timestamp.getTime()
      : target.timestamp
    : Number.NaN;
}

/** The TXID range to list: files of `levels` with minTXID in (after, until]. */
interface Range {
  after: number;
  until: number;
  maxLevel: number;
}

/**
 * Where the head's plan stops helping: its files at or before the target
 * (`prefix`) and the range after them that may still hold the target.
 */
function headRange(
  head: HeadObject,
  target: RestoreTarget | undefined,
): { prefix: ReplicaFile[]; range: Range } | undefined {
  const files = head.files;
  if (files.length === 0 || files[0]!.minTXID !== 1) return undefined;
  let within: (f: HeadFile) => boolean;
  if (!target) within = () => true;
  else if ("txid" in target) within = (f) => f.maxTXID <= target.txid;
  else {
    const t = targetTime(target);
    if (!Number.isFinite(t)) return undefined;
    within = (f) => f.timestamp <= t;
  }
  let n = 0;
  while (n < files.length && within(files[n]!)) n++;
  if (n === 0) return undefined;
  const prefix = files.slice(0, n).map(headFileToReplicaFile);
  const after = files[n - 1]!.maxTXID;
  const next = files[n];
  if (!next) {
    // At or after the head's position: files published since (normally a few level-0 ones).
    const until = target && "txid" in target ? target.txid : Number.POSITIVE_INFINITY;
    return { prefix, range: { after, until, maxLevel: MAX_COMPACTION_LEVEL } };
  }
  // The target lies before `next` ends: its range is finer than `next`'s level.
  const until = target && "txid" in target ? target.txid : next.maxTXID - 1;
  return {
    prefix,
    range: { after, until, maxLevel: Math.min(MAX_COMPACTION_LEVEL, Math.max(0, next.level - 1)) },
  };
}

/** The listing's range without a usable head: from the newest snapshot that may qualify. */
function snapshotRange(snapshots: ReplicaFile[], target: RestoreTarget | undefined): Range {
  let after = 0;
  const until = target && "txid" in target ? target.txid : Number.POSITIVE_INFINITY;
  const t = target && "timestamp" in target ? targetTime(target) : Number.NaN;
  for (const s of snapshots) {
    if (s.minTXID !== 1 || s.maxTXID > until) continue;
    // Snapshot times are only trusted when known exactly (from a head).
    if (Number.isFinite(t) && !(s.timestamp !== undefined && s.timestamp <= t)) continue;
    if (s.maxTXID > after) after = s.maxTXID;
  }
  return { after, until, maxLevel: MAX_COMPACTION_LEVEL };
}

function txidKey(level: number, txid: number): string {
  // Every key of a file with minTXID <= txid sorts at or before this one.
  return `${levelPrefix(level)}${txid.toString(16).padStart(16, "0")}-ffffffffffffffff.ltx`;
}

interface Page {
  files: ReplicaFile[];
  /** Continuation token when the page was full. */
  next: string | undefined;
  /** Last key of the page (the level's files continue after it). */
  lastKey: string | undefined;
}

async function listPage(
  store: ObjectStore,
  level: number,
  from: { startAfter: string } | { token: string },
  signal: AbortSignal | undefined,
): Promise<Page> {
  const page = await store.list({
    prefix: levelPrefix(level),
    ...("token" in from ? { continuationToken: from.token } : { startAfter: from.startAfter }),
    ...(signal ? { signal } : {}),
  });
  const files: ReplicaFile[] = [];
  let lastKey: string | undefined;
  for (const meta of page.objects) {
    lastKey = meta.key;
    const pos = parseReplicaKey(meta.key);
    if (!pos || pos.level !== level) continue;
    files.push({ ...pos, key: meta.key, size: meta.size, lastModified: meta.lastModified });
  }
  return { files, next: page.continuationToken, lastKey };
}

/**
 * Files of one level after `startAfter` whose minTXID is at most `until`, in
 * TXID order, following pages (or continuing from `first`, already listed).
 */
async function listRun(
  store: ObjectStore,
  level: number,
  startAfter: string,
  until: number,
  signal: AbortSignal | undefined,
  first?: Page,
): Promise<ReplicaFile[]> {
  const out: ReplicaFile[] = [];
  const seen = new Set<string>();
  let page = first ?? (await listPage(store, level, { startAfter }, signal));
  for (;;) {
    let past = false;
    for (const f of page.files) {
      if (f.minTXID > until) {
        past = true;
        break;
      }
      out.push(f);
    }
    // A store that keeps handing out the same token would loop forever.
    if (past || page.next === undefined || seen.has(page.next)) return out;
    seen.add(page.next);
    page = await listPage(store, level, { token: page.next }, signal);
  }
}

/**
 * One level's files with minTXID in (after, until]. The first page comes
 * from a start-after bound; when the level holds more (and the range's end
 * is known), the rest is listed as parallel sub-ranges sized from the first
 * page's density, so a long range costs two round trips, not one per page.
 */
async function listLevelRange(
  store: ObjectStore,
  level: number,
  range: Range,
  signal: AbortSignal | undefined,
): Promise<ReplicaFile[]> {
  const first = await listPage(store, level, { startAfter: txidKey(level, range.after) }, signal);
  const last = first.files[first.files.length - 1];
  if (
    first.next === undefined ||
    first.lastKey === undefined ||
    !last ||
    last.minTXID >= range.until ||
    !Number.isFinite(range.until)
  ) {
    return listRun(store, level, "", range.until, signal, first);
  }
  const head = first.files.filter((f) => f.minTXID <= range.until);
  const span = Math.max(1, last.minTXID - range.after);
  const remaining = ((range.until - last.minTXID) * first.files.length) / span;
  // The first page was full: its length is the store's page size.
  const perPart = Math.max(1, Math.floor(first.files.length * SUBRANGE_FILL));
  const parts = Math.min(MAX_SUBRANGES, Math.max(1, Math.ceil(remaining / perPart)));
  if (parts === 1) {
    return [...head, ...(await listRun(store, level, first.lastKey, range.until, signal))];
  }
  const bounds: number[] = [];
  for (let i = 0; i <= parts; i++) {
    bounds.push(Math.round(last.minTXID + ((range.until - last.minTXID) * i) / parts));
  }
  const runs = await Promise.all(
    bounds.slice(0, parts).map((from, i) =>
      listRun(
        store,
        level,
        // The first sub-range continues exactly after the page's last key.
        i === 0 ? first.lastKey! : txidKey(level, from),
        bounds[i + 1]!,
        signal,
      ),
    ),
  );
  return [...head, ...runs.flat()];
}

/** Every snapshot, the head's prefix and the files of `range`, deduplicated by key. */
function merge(groups: ReplicaFile[][]): ReplicaFile[] {
  const byKey = new Map<string, ReplicaFile>();
  for (const group of groups) {
    for (const f of group) {
      const had = byKey.get(f.key);
      // Keep the exact commit time where one of the sources knows it.
      if (!had || (had.timestamp === undefined && f.timestamp !== undefined)) byKey.set(f.key, f);
    }
  }
  return [...byKey.values()];
}

function isPlanningError(err: unknown): boolean {
  return (
    err instanceof LayoutError &&
    (err.code === "RESTORE_TARGET_UNAVAILABLE" ||
      err.code === "RESTORE_CHAIN_GAP" ||
      err.code === "REPLICA_EMPTY")
  );
}

/**
 * Plans `target` (latest when undefined) in round trips independent of the
 * history's length (see the module comment); falls back to a full listing
 * when the bounded one cannot plan, so results and errors are those of
 * `planRestoreWithTimes` over the whole replica. Time targets use commit
 * times from the head and from LTX headers, never upload times.
 */
export async function planTarget(
  store: ObjectStore,
  target: RestoreTarget | undefined,
  options: PlanTargetOptions = {},
): Promise<TargetPlan> {
  // A listed file read for its header or index may be deleted meanwhile
  // (retention takes the oldest first, exactly the snapshots read for their
  // times): the listing was stale, so list again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await planTargetOnce(store, target, options);
    } catch (err) {
      if (attempt >= PLAN_ATTEMPTS || missingObjectKey(err) === undefined) throw err;
    }
  }
}

/** Plannings of one target in a row when listed files keep vanishing under them. */
const PLAN_ATTEMPTS = 3;

async function planTargetOnce(
  store: ObjectStore,
  target: RestoreTarget | undefined,
  options: PlanTargetOptions,
): Promise<TargetPlan> {
  const signal = options.signal;
  const [head, snapshots] = await Promise.all([
    readUsableHead(options.headStore ?? store, signal),
    listLevel(store, SNAPSHOT_LEVEL, signal ? { signal } : {}),
  ]);
  const headTimes = new Map((head?.files ?? []).map((f) => [f.key, f.timestamp]));
  const withTimes = (files: ReplicaFile[]) =>
    files.map((f) => {
      const t = headTimes.get(f.key);
      return t === undefined || f.timestamp !== undefined ? f : { ...f, timestamp: t };
    });
  const timesOptions = signal ? { signal } : {};
  const fromHead = head ? headRange(head, target) : undefined;
  const prefix = fromHead?.prefix ?? [];
  const range = fromHead?.range ?? snapshotRange(withTimes(snapshots), target);
  try {
    const levels: number[] = [];
    for (let l = 0; l <= range.maxLevel; l++) levels.push(l);
    const listed = await Promise.all(levels.map((l) => listLevelRange(store, l, range, signal)));
    const files = withTimes(merge([snapshots, prefix, ...listed]));
    const plan = await planRestoreWithTimes(store, files, target, timesOptions);
    return { ...plan, head, listing: "bounded" };
  } catch (err) {
    if (!isPlanningError(err)) throw err;
  }
  const all = withTimes(await listAllLevels(store, signal ? { signal } : {}));
  const plan = await planRestoreWithTimes(store, all, target, timesOptions);
  return { ...plan, head, listing: "full" };
}
