/**
 * How a replica learns what the writer has published.
 *
 * With a pagecast writer: one GET of the head object, then one conditional GET
 * (If-None-Match) per poll; LIST only when the replica has fallen behind the
 * head's snapshot. With a Litestream-written replica (no head object), or a
 * head this reader cannot parse: LIST of level 0 and of the snapshot level
 * after the replica's position. The head is an optimisation, never required.
 *
 * Discovery only plans; the caller reads page indexes and switches versions.
 */
import {
  type HeadObject,
  type HeadPage1,
  type HeadSkeleton,
  LayoutError,
  listAllLevels,
  listLevel,
  MAX_COMPACTION_LEVEL,
  planRestore,
  planTarget,
  type ReplicaFile,
  type RestoreTarget,
  readHeadObject,
  SNAPSHOT_LEVEL,
} from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { NotFoundError } from "../storage/store-errors.js";
import type { PlanFile } from "./page-index.js";

/** The position a replica currently serves. */
export interface Position {
  txid: number;
  /** Writer generation (head mode) the position belongs to, when known. */
  generation: string | undefined;
}

/** What a poll found. */
export type DiscoveryResult =
  | { kind: "unchanged" }
  | {
      kind: "update";
      /**
       * `true`: `files` is a whole plan starting with a snapshot (rebuild).
       * `false`: `files` extend the current position contiguously.
       */
      full: boolean;
      files: PlanFile[];
      txid: number;
      /** Known from the head object; otherwise read from the last file's header. */
      commit: number | undefined;
      pageSize: number | undefined;
      timestamp: number | undefined;
      generation: string | undefined;
      /** The head's B-tree skeleton (full plans only), when the writer published one. */
      skeleton?: HeadSkeleton;
      /** Where the head says page 1's newest image is (full plans only). */
      page1?: HeadPage1;
    };

/** Stores, one per request purpose (for accounting). */
export interface DiscoveryStores {
  head: ObjectStore;
  poll: ObjectStore;
  list: ObjectStore;
}

/** Options of {@link Discovery}. */
export interface DiscoveryOptions {
  /** In LIST mode, look for a head object again every this many polls (a pagecast writer taking over). */
  headProbeEvery?: number;
}

/** Which mechanism discovery uses. */
export type DiscoveryMode = "unknown" | "head" | "list";

/**
 * The greedy forward chain from `fromTXID`: each step takes, among the non-
 * snapshot files starting at or before the next needed TXID, the one reaching
 * furthest. Applying a file that starts before the next needed TXID is still
 * exact (its frames are the newest images of the pages it names).
 */
export function planForward<F extends { level: number; minTXID: number; maxTXID: number }>(
  files: readonly F[],
  fromTXID: number,
  toTXID = Number.POSITIVE_INFINITY,
): F[] {
  const deltas = files.filter((f) => f.level !== SNAPSHOT_LEVEL && f.maxTXID <= toTXID);
  const chain: F[] = [];
  let pos = fromTXID;
  for (;;) {
    let best: F | undefined;
    for (const f of deltas) {
      if (f.minTXID > pos + 1 || f.maxTXID <= pos) continue;
      if (
        !best ||
        f.maxTXID > best.maxTXID ||
        (f.maxTXID === best.maxTXID && f.minTXID > best.minTXID)
      ) {
        best = f;
      }
    }
    if (!best) return chain;
    chain.push(best);
    pos = best.maxTXID;
  }
}

/** A head object that does not parse: the replica is planned without it. */
function isUnusableHead(err: unknown): boolean {
  return err instanceof LayoutError && err.code === "HEAD_OBJECT_INVALID";
}

function fromReplicaFile(f: ReplicaFile): PlanFile {
  return {
    level: f.level,
    minTXID: f.minTXID,
    maxTXID: f.maxTXID,
    key: f.key,
    size: f.size,
    ...(f.timestamp !== undefined ? { timestamp: f.timestamp } : {}),
  };
}

/**
 * Plans versions for one replica. The caller single-flights `poll`, except
 * that it may give up on a hung one and start another: a poll overtaken that
 * way changes no state when it ends.
 */
export class Discovery {
  #mode: DiscoveryMode = "unknown";
  #etag: string | undefined;
  /** ETag of the last head read, adopted by {@link acknowledge} once its plan was applied. */
  #pendingEtag: string | undefined;
  #head: HeadObject | undefined;
  /**
   * Key of the snapshot the served version was fully planned from (head mode),
   * and that of the last full plan handed out, adopted by {@link acknowledge}.
   */
  #base: string | undefined;
  #pendingBase: string | undefined;
  #listPolls = 0;
  /** Polls started: only the newest may change the state above. */
  #polls = 0;
  readonly #headProbeEvery: number;

  constructor(
    private readonly stores: DiscoveryStores,
    options: DiscoveryOptions = {},
  ) {
    this.#headProbeEvery = options.headProbeEvery ?? 10;
  }

  /** `head` once a head object was seen, `list` for Litestream-written replicas. */
  get mode(): DiscoveryMode {
    return this.#mode;
  }

  /** The newest head object read, if any. */
  get head(): HeadObject | undefined {
    return this.#head;
  }

  /**
   * Finds what is new after `current` (or the whole latest plan when
   * `current` is undefined, or when `forceReplan` asks to forget cached state,
   * e.g. after a planned file turned out to be deleted).
   */
  async poll(current: Position | undefined, forceReplan = false): Promise<DiscoveryResult> {
    const seq = ++this.#polls;
    this.#pendingEtag = undefined;
    this.#pendingBase = undefined;
    if (forceReplan) this.#etag = undefined;
    if (this.#mode === "list") {
      this.#listPolls++;
      const probe = forceReplan || this.#listPolls % this.#headProbeEvery === 0;
      if (!probe) return this.#pollList(current, forceReplan);
    }
    let head: HeadObject;
    try {
      const conditional = current !== undefined && this.#etag !== undefined;
      const store = conditional ? this.stores.poll : this.stores.head;
      // Size-checked before download: the head is untrusted.
      const res = await readHeadObject(store, conditional ? { ifNoneMatch: this.#etag! } : {});
      // Overtaken by a newer poll (the replica gave up on this one): its
      // result is not applied, so it must leave nothing to be adopted either.
      if (seq !== this.#polls || res.notModified) return { kind: "unchanged" };
      head = res.head;
      // Adopted only once the plan is applied: until then the next poll re-reads the head.
      this.#pendingEtag = res.etag;
    } catch (err) {
      if (seq !== this.#polls) throw err;
      // No head, or one this reader cannot use (damaged, or from a newer
      // writer): the LTX files themselves are the replica, found by LIST.
      if (!(err instanceof NotFoundError) && !isUnusableHead(err)) throw err;
      this.#mode = "list";
      this.#etag = undefined;
      this.#head = undefined;
      return this.#pollList(current, forceReplan);
    }
    this.#mode = "head";
    this.#head = head;
    return this.#fromHead(head, current, forceReplan);
  }

  /** The caller applied the last poll's result: later polls are conditional on its head. */
  acknowledge(): void {
    if (this.#pendingEtag !== undefined) this.#etag = this.#pendingEtag;
    if (this.#pendingBase !== undefined) this.#base = this.#pendingBase;
    this.#pendingEtag = undefined;
    this.#pendingBase = undefined;
  }

  /**
   * The plan of a past state (`at`): newest snapshot at or before the target
   * plus covering files. Throws `LayoutError(RESTORE_TARGET_UNAVAILABLE)`
   * naming the earliest available state when the target precedes retention.
   */
  async planAt(target: RestoreTarget): Promise<DiscoveryResult & { kind: "update" }> {
    // Head and snapshots, then only the TXID range the head's plan does not
    // cover (all levels in parallel): round trips independent of the history's length.
    const plan = await planTarget(this.stores.list, target, { headStore: this.stores.head });
    const head = plan.head;
    const fromHead = new Map(head?.files.map((f) => [f.key, f]) ?? []);
    const files = plan.files.map((f): PlanFile => {
      // The head knows where each of its files keeps its page index: one exact read.
      const h = fromHead.get(f.key);
      return h ? { ...h } : fromReplicaFile(f);
    });
    const first = files[0];
    // The head's skeleton and page-1 location help when the plan starts from its snapshot.
    const skeleton =
      head?.skeleton &&
      first !== undefined &&
      first.key === head.files[0]?.key &&
      head.skeleton.txid === first.maxTXID
        ? head.skeleton
        : undefined;
    // Page 1's newest image at the head may still be the newest at the target (the
    // replica checks the location against its index before using it).
    const page1 =
      head?.page1 && files.some((f) => f.key === head.page1!.key) ? head.page1 : undefined;
    // At the head's own position its figures are exact; elsewhere the last file's header tells.
    const atHead = head !== undefined && head.txid === plan.txid;
    return {
      kind: "update",
      full: true,
      files,
      txid: plan.txid,
      commit: atHead ? head.commit : undefined,
      pageSize: atHead ? head.pageSize : undefined,
      timestamp: atHead ? head.timestamp : undefined,
      generation: undefined,
      ...(skeleton ? { skeleton } : {}),
      ...(page1 ? { page1 } : {}),
    };
  }

  async #fromHead(
    head: HeadObject,
    current: Position | undefined,
    forceReplan: boolean,
  ): Promise<DiscoveryResult> {
    const meta = {
      txid: head.txid,
      commit: head.commit,
      pageSize: head.pageSize,
      timestamp: head.timestamp,
      generation: head.generation,
    };
    const full = {
      kind: "update" as const,
      full: true,
      files: head.files,
      ...meta,
      ...(head.skeleton ? { skeleton: head.skeleton } : {}),
      ...(head.page1 ? { page1: head.page1 } : {}),
    };
    // A new snapshot in the head (periodic ones keep the generation) also means
    // a full plan: an incremental version keeps pages located in the old
    // snapshot and its deltas, which retention deletes once they leave the head.
    const snapshot = head.files.find((f) => f.level === SNAPSHOT_LEVEL)?.key;
    if (
      !current ||
      forceReplan ||
      current.generation !== head.generation ||
      head.txid < current.txid ||
      (snapshot !== undefined && snapshot !== this.#base)
    ) {
      this.#pendingBase = snapshot;
      return full;
    }
    if (head.txid === current.txid) return { kind: "unchanged" };
    const chain = head.files.filter((f) => f.maxTXID > current.txid);
    if (chain[0] && chain[0].level !== SNAPSHOT_LEVEL && chain[0].minTXID <= current.txid + 1) {
      return { kind: "update", full: false, files: chain, ...meta };
    }
    // Behind the head's snapshot: compacted levels may still bridge the gap
    // more cheaply than the snapshot's whole index.
    const listed = await this.#listDeltas();
    const bridge = planForward(listed, current.txid, head.txid);
    if (bridge.length > 0 && bridge[bridge.length - 1]!.maxTXID === head.txid) {
      const times = new Map(head.files.map((f) => [f.key, f.timestamp]));
      const files = bridge.map((f) => {
        const pf = fromReplicaFile(f);
        const t = times.get(f.key);
        return t === undefined ? pf : { ...pf, timestamp: t };
      });
      return { kind: "update", full: false, files, ...meta };
    }
    return full;
  }

  async #pollList(current: Position | undefined, forceReplan: boolean): Promise<DiscoveryResult> {
    if (!current || forceReplan) return this.#fullListPlan();
    const [l0, snapshots] = await Promise.all([
      listLevel(this.stores.list, 0, { afterTXID: current.txid }),
      // Snapshots are few; list them all.
      listLevel(this.stores.list, SNAPSHOT_LEVEL),
    ]);
    // A new snapshot may mark a continuity break (the writer lost its WAL
    // position): deltas after it may not apply to our state. Rebuild from it.
    if (snapshots.some((s) => s.minTXID === 1 && s.maxTXID > current.txid)) {
      return this.#fullListPlan();
    }
    if (l0.length === 0) return { kind: "unchanged" };
    const chain = planForward(l0, current.txid);
    if (chain.length === 0) {
      // Level 0 was compacted past us: bridge through the other levels, or rebuild.
      const deltas = await this.#listDeltas();
      const bridge = planForward(deltas, current.txid);
      const newest = Math.max(...deltas.map((f) => f.maxTXID));
      if (bridge.length > 0 && bridge[bridge.length - 1]!.maxTXID === newest) {
        return this.#listUpdate(bridge, false);
      }
      return this.#fullListPlan();
    }
    return this.#listUpdate(chain, false);
  }

  async #listDeltas(): Promise<ReplicaFile[]> {
    const levels: number[] = [];
    for (let l = 0; l <= MAX_COMPACTION_LEVEL; l++) levels.push(l);
    const lists = await Promise.all(levels.map((l) => listLevel(this.stores.list, l)));
    return lists.flat();
  }

  async #fullListPlan(): Promise<DiscoveryResult> {
    const files = await listAllLevels(this.stores.list);
    const plan = planRestore(files);
    return this.#listUpdate(plan.files, true);
  }

  #listUpdate(files: ReplicaFile[], full: boolean): DiscoveryResult {
    return {
      kind: "update",
      full,
      files: files.map(fromReplicaFile),
      txid: files[files.length - 1]!.maxTXID,
      commit: undefined,
      pageSize: undefined,
      timestamp: undefined,
      generation: undefined,
    };
  }
}
