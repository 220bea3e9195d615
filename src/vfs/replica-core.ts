/**
 * The state one replica shares between all its SQLite connections: the
 * current version (an immutable page index), polling, the page cache and
 * fetcher, and the figures `status()` reports.
 *
 * Versions are immutable and numbered; a read transaction pins one (see the
 * VFS) and the replica only ever swaps `current`, so a transaction can never
 * see two versions.
 */
import { decodeLtx, decodePageFrame, lockPgno } from "../format/index.js";
import {
  type HeadPage1,
  type HeadSkeleton,
  LayoutError,
  type RestoreTarget,
  SNAPSHOT_LEVEL,
  skeletonHeaderTXID,
  skeletonKey,
} from "../layout/index.js";
import type { ObjectStore, StoreHealth } from "../storage/object-store.js";
import { missingObjectKey } from "../storage/store-errors.js";
import { interiorChildren, isInteriorPage, schemaRootPages } from "./btree-page.js";
import {
  BulkFetcher,
  type BulkFetchHost,
  type BulkFetchStats,
  type StatementContext,
} from "./bulk-fetch.js";
import { Discovery, type DiscoveryMode, type DiscoveryResult } from "./discovery.js";
import { FrameLayout } from "./frame-layout.js";
import { type HydrationStatus, Hydrator } from "./hydrator.js";
import { PageCache, type PageCacheStats } from "./page-cache.js";
import { PageFetcher, type PageRequest } from "./page-fetcher.js";
import type { LocationSlot, PageLocation } from "./page-index.js";
import { type LoadedFile, loadPageIndexes, PageIndex, type PlanFile } from "./page-index.js";
import type { PersistentCache, PersistentCacheStats } from "./persistent-cache.js";
import { planRuns } from "./range-planner.js";
import type { AccessTracker } from "./read-ahead.js";
import { ReplicaError } from "./replica-error.js";
import { type RequestBudget, RequestBudgetError } from "./request-budget.js";
import {
  type ReplicaRequestKind,
  RequestStats,
  type RequestTally,
  TalliedStore,
} from "./request-stats.js";

/** One immutable state of the replica. */
export interface ReplicaVersion {
  /** Increases with every version this replica serves; drives SQLite's file change counter. */
  readonly seq: number;
  readonly index: PageIndex;
  /** Writer generation (head layout) the version belongs to. */
  readonly generation: string | undefined;
}

/** `healthy | lagging | stale | unknown`, from `lagSeconds` and the thresholds. */
export type ReplicaHealth = "healthy" | "lagging" | "stale" | "unknown";

/** What `Replica.status()` reports. */
export interface ReplicaStatus {
  /** Store location (never credentials). */
  url: string;
  /** TXID of the newest applied version, `null` before the first. */
  txid: number | null;
  /** Commit time of that TXID, when known. */
  commitTime: Date | null;
  /**
   * Upper bound on how stale the data may be: seconds since the replica last
   * confirmed it held everything the writer had published. `null` before the
   * first successful poll and for pinned (`at`) replicas.
   */
  lagSeconds: number | null;
  health: ReplicaHealth;
  /** True for replicas opened with `at` (a fixed past state, never polled). */
  pinned: boolean;
  /** `head` (pagecast writer), `list` (Litestream layout) or `unknown`. */
  discovery: DiscoveryMode;
  pageSize: number | null;
  /** Database size in pages at `txid`. */
  pages: number | null;
  lastPollAt: Date | null;
  lastError: { message: string; code: string | undefined; at: Date } | null;
  cache: PageCacheStats;
  /** The persistent page cache (`cacheDir`, Cache API), when there is one. */
  persistentCache: PersistentCacheStats | null;
  /** Hydration (`hydrate`): state and progress. */
  hydration: HydrationStatus;
  /** B-tree-aware bulk fetching. */
  bulk: BulkFetchStats;
  requests: Record<ReplicaRequestKind, RequestTally>;
  /**
   * The store's live health (`failingSince` from the first failed attempt,
   * last error, requests in flight), or `null` for a store without it.
   */
  storage: StoreHealth | null;
}

/** `hydrate` option of a replica. */
export type HydrateMode = "auto" | boolean;

/** Options of {@link ReplicaCore}. */
export interface ReplicaCoreOptions {
  store: ObjectStore;
  cacheBytes: number;
  pollIntervalMs: number;
  /**
   * Longest a statement waits for a due poll before it runs on the current
   * version (the poll goes on in the background). Default {@link DEFAULT_POLL_WAIT_MS}.
   */
  pollWaitMs?: number;
  /** A poll in flight longer than this is given up (default {@link DEFAULT_POLL_ABANDON_MS}). */
  pollAbandonMs?: number;
  concurrency: number;
  /** Fixed past state; the replica never polls. */
  at?: RestoreTarget;
  laggingSeconds: number;
  staleSeconds: number;
  /** Largest read-ahead window, in pages. */
  readAheadPages: number;
  /** Children of an interior root page fetched eagerly when it has at most this many. */
  rootPrefetchFanout: number;
  /** Milliseconds clock (tests). */
  now?: () => number;
  /** Hydration: `true` at open, `"auto"` when queries would read most of a small database, `false` never. */
  hydrate?: HydrateMode;
  /** `"auto"` hydrates databases whose frames total at most this many bytes. */
  hydrateMaxBytes?: number;
  /** Most bytes one statement may fetch in bulk (0 disables bulk fetching). */
  bulkFetchBytes?: number;
  /** Most range GETs one statement may cause (default: none, `Infinity`). */
  maxRequestsPerQuery?: number;
  /** Persistent page cache shared with other replicas / processes. */
  persistentCache?: PersistentCache;
  /** In-memory page cache to use (shared by replicas of one store); default: a new one of `cacheBytes`. */
  pageCache?: PageCache;
  /** The live replica a pinned one derives from: the pages it hydrated serve this one too. */
  live?: ReplicaCore;
}

/**
 * Default of {@link ReplicaCoreOptions.pollAbandonMs}: past every store
 * timeout of a poll that is still working, so only a poll that will never
 * settle (its runtime dropped it) is given up.
 */
export const DEFAULT_POLL_ABANDON_MS = 30_000;

/** Default of {@link ReplicaCoreOptions.pollWaitMs}: far above a healthy poll, far below a hung one. */
export const DEFAULT_POLL_WAIT_MS = 1000;

/** Parallel range GETs one bulk fetch aims for. */
const BULK_REQUESTS = 16;
/** Bulk range GETs in flight at most. */
const BULK_CONCURRENCY = 64;
/**
 * Bytes of bulk range GETs in flight at most, as a share of `cacheBytes`
 * (and at most 64 MiB): response buffers live outside the cache, so a small
 * cache (a Worker's) also bounds them. Not less than the cache: half of it
 * cost the cold join of figure 2 four more round trips (18 vs 14) and saved
 * no measurable memory (figure 9).
 */
const BULK_BYTES_IN_FLIGHT_SHARE = 1;
const MAX_BULK_BYTES_IN_FLIGHT = 64 * 1024 * 1024;
/** Gaps between wanted frames read rather than split (cheaper than a request). */
const FREE_GAP_BYTES = 512 * 1024;
/** Largest bulk range GET. */
const MAX_BULK_RANGE = 4 * 1024 * 1024;
/** Range GETs hydration keeps in flight. */
const HYDRATE_CONCURRENCY = 16;

/** Delta files at most this large are read whole when opening with a skeleton. */
const WHOLE_FILE_MAX_BYTES = 64 * 1024;
/** Most bytes of delta files read whole while opening. */
const WHOLE_FILES_TOTAL_BYTES = 4 * 1024 * 1024;

/** What a full plan fetches besides the page indexes, in the same round trip. */
interface OpeningReads {
  /** The snapshot the skeleton belongs to. */
  snapshot: PlanFile | undefined;
  skeleton: Promise<Uint8Array | undefined> | undefined;
  page1: { at: HeadPage1; bytes: Promise<Uint8Array | undefined> } | undefined;
  wholeFiles: Set<string>;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A deleted file is a stale plan, not a broken replica. */
function isMissingFile(err: unknown): boolean {
  return missingObjectKey(err) !== undefined;
}

/** Plans of a pinned replica's target in a row when planned files keep vanishing. */
const PINNED_PLAN_ATTEMPTS = 3;

/** Shared state of one replica. */
export class ReplicaCore {
  readonly url: string;
  readonly stats = new RequestStats();
  readonly cache: PageCache;
  readonly fetcher: PageFetcher;
  readonly #discovery: Discovery;
  readonly #indexStore: ObjectStore;
  readonly #skeletonStore: ObjectStore;
  readonly #pageStore: ObjectStore;
  readonly #options: ReplicaCoreOptions;
  /** {@link peekPage}'s location, filled in place. */
  readonly #peekSlot: LocationSlot = { file: undefined, offset: 0, size: 0 };
  readonly #now: () => number;
  #current: ReplicaVersion | undefined;
  #seq = 0;
  #lastPollAt: number | undefined;
  #lastConfirmedAt: number | undefined;
  #lastError: ReplicaStatus["lastError"] = null;
  #polling: Promise<void> | undefined;
  /** The poll that follows the one in flight, for callers that need a fresh one. */
  #followUp: Promise<void> | undefined;
  #followUpReplan = false;
  /** Identifies the poll whose result may be applied (an abandoned one's may not). */
  #pollToken = 0;
  /** When the poll in flight started (real time: it bounds real waits). */
  #pollStartedAt = 0;
  #needsReplan = false;
  /** A pinned replica's plan of its TXID under way (see #replanPinned). */
  #pinnedReplan: Promise<void> | undefined;
  #closed = false;
  /** b-tree roots and schema pages of the current version, for prefetch. */
  #roots = new Set<number>();
  #schemaPages = new Set<number>();
  #hintsSeq = -1;
  readonly bulk: BulkFetcher;
  #hydrator: Hydrator | undefined;
  #hydrationRequested = false;
  readonly #hydrateStore: ObjectStore;
  readonly #layouts = new WeakMap<ReplicaVersion, FrameLayout>();
  readonly #persistent: PersistentCache | undefined;
  #hydratorPageSize = 0;

  constructor(options: ReplicaCoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.url = options.store.url;
    const tallied = (kind: ReplicaRequestKind) => new TalliedStore(options.store, this.stats, kind);
    this.#discovery = new Discovery({
      head: tallied("head"),
      poll: tallied("poll"),
      list: tallied("list"),
    });
    this.#indexStore = tallied("index");
    this.#skeletonStore = tallied("skeleton");
    this.#pageStore = tallied("page");
    this.#hydrateStore = tallied("hydrate");
    this.#persistent = options.persistentCache;
    this.cache = options.pageCache ?? new PageCache(options.cacheBytes);
    this.fetcher = new PageFetcher(this.#pageStore, this.cache, {
      concurrency: options.concurrency,
      bulkConcurrency: BULK_CONCURRENCY,
      bulkBytesInFlight: Math.min(
        MAX_BULK_BYTES_IN_FLIGHT,
        Math.max(MAX_BULK_RANGE, options.cacheBytes * BULK_BYTES_IN_FLIGHT_SHARE),
      ),
      coalesceGapBytes: 0,
      bulkStore: tallied("bulk"),
      ...(this.#persistent ? { persistent: { cache: this.#persistent, namespace: this.url } } : {}),
    });
    this.fetcher.onFetched = (req, page, budget) => this.#afterFetch(req, page, budget);
    this.bulk = new BulkFetcher(this.#bulkHost(), {
      budgetBytes: options.bulkFetchBytes,
      cacheBytes: options.cacheBytes,
    });
  }

  /** Each statement's request budget (`Infinity`: none). */
  get maxRequestsPerQuery(): number {
    return this.#options.maxRequestsPerQuery ?? Number.POSITIVE_INFINITY;
  }

  /** The persistent cache, if the replica has one. */
  get persistentCache(): PersistentCache | undefined {
    return this.#persistent;
  }

  /** The frames of `version` in file order (built once per version). */
  layout(version: ReplicaVersion): FrameLayout {
    let layout = this.#layouts.get(version);
    if (!layout) {
      layout = FrameLayout.of(version.index);
      this.#layouts.set(version, layout);
    }
    return layout;
  }

  /**
   * A page of `version` if it is in memory (hydrated or cached), without
   * fetching or counting anything.
   */
  peekPage(version: ReplicaVersion, pgno: number): Uint8Array | undefined {
    // Bulk fetching's B-tree map peeks at every page of a version (tens of
    // thousands on a cold query): one reused slot, no hydration lookups
    // without a hydrated image. Nothing below keeps the slot.
    const loc = this.#peekSlot;
    if (!version.index.lookupInto(pgno, loc)) return undefined;
    if (this.#hydrator || this.#options.live) {
      const hydrated = this.hydratedPage(pgno, loc as PageLocation);
      if (hydrated) return hydrated;
    }
    return this.cache.peek(loc as PageLocation);
  }

  /**
   * The hydrated image of page `pgno` at `loc`: this replica's, else the live
   * replica's it derives from (an image is tied to its frame, so any version
   * locating the page there may use it).
   */
  hydratedPage(pgno: number, loc: PageLocation): Uint8Array | undefined {
    return this.#hydrator?.page(pgno, loc) ?? this.#options.live?.hydratedPage(pgno, loc);
  }

  /**
   * Starts hydrating the current version in the background (and from then
   * on every new version, fetching only changed pages). Idempotent.
   */
  hydrate(): void {
    this.#hydrationRequested = true;
    const v = this.#current;
    if (!v || this.#closed) return;
    const pageSize = v.index.pageSize;
    if (!this.#hydrator || this.#hydratorPageSize !== pageSize) {
      this.#hydrator?.close();
      this.#hydratorPageSize = pageSize;
      this.#hydrator = new Hydrator({
        store: this.#hydrateStore,
        pageSize,
        concurrency: Math.max(HYDRATE_CONCURRENCY, this.#options.concurrency),
        ...(this.#persistent
          ? { persistent: { cache: this.#persistent, namespace: this.url } }
          : {}),
      });
    }
    const layout = this.layout(v);
    void this.#hydrator.hydrate(v.index.txid, layout, v.index.commit).then(() => {
      const st = this.#hydrator?.status();
      if (st?.state === "failed") {
        this.#recordError(
          new ReplicaError("REPLICA_HYDRATION_FAILED", st.error ?? "hydration failed"),
        );
      }
    });
  }

  /** Waits until hydration of the current version is complete (or failed); at once when off. */
  async hydrated(): Promise<void> {
    for (;;) {
      const h = this.#hydrator;
      const v = this.#current;
      if (!h || !v) return;
      const st = h.status();
      if (st.state === "failed" || st.state === "off") return;
      if (st.state === "done" && st.txid === v.index.txid) return;
      // A pass for an older version (a poll applied a newer one) is followed by one for it.
      if (st.txid !== v.index.txid) this.hydrate();
      await h.settled();
    }
  }

  #bulkHost(): BulkFetchHost {
    return {
      peek: (version, pgno) => this.peekPage(version, pgno),
      pendingOrCached: (pgno, loc) =>
        this.cache.has(loc) ||
        this.#options.live?.hydratedPage(pgno, loc) !== undefined ||
        this.fetcher.isInflight(loc) ||
        this.#hydrator?.pending(loc) !== undefined,
      planRuns: (reqs, options) => {
        const cap = options.maxRequests;
        const squeezed = cap !== undefined && cap < (options.maxRuns ?? BULK_REQUESTS);
        let runs = planRuns(reqs, {
          maxRuns: squeezed ? cap : (options.maxRuns ?? BULK_REQUESTS),
          // Few requests left: bridge as much as the byte budget allows to get there.
          maxWasteBytes: squeezed ? options.maxTotalWasteBytes : options.maxWasteBytes,
          maxTotalWasteBytes: options.maxTotalWasteBytes,
          freeGapBytes: FREE_GAP_BYTES,
          maxRangeBytes: MAX_BULK_RANGE,
        });
        if (cap !== undefined && runs.length > cap) runs = runs.slice(0, cap);
        return { runs, bytes: runs.reduce((n, r) => n + (r.end - r.start), 0) };
      },
      fetchRuns: (version, plan, onPage, budget) =>
        this.fetcher.fetchRuns(plan.runs, version.index.pageSize, {
          layout: this.layout(version),
          onPage,
          ...(budget ? { budget } : {}),
        }),
      versionBytes: (version) => this.layout(version).bytes,
      prefetch: (version, reqs, budget) =>
        this.fetcher.prefetch(reqs, version.index.pageSize, budget),
      hydrating: (version) =>
        this.#hydrator?.active === true && version === this.#current && this.#hydrationRequested,
      mayAutoHydrate: (bytes) =>
        (this.#options.hydrate ?? "auto") === "auto" &&
        bytes <= (this.#options.hydrateMaxBytes ?? this.#options.cacheBytes),
      autoHydrate: (version, _reason, budget) => {
        if (version !== this.#current || this.#hydrationRequested) return false;
        if (budget) {
          // Hydration reads in one wave of about HYDRATE_CONCURRENCY GETs, at
          // least one per file: booked up front, and only when it fits.
          const requests =
            Math.max(HYDRATE_CONCURRENCY, this.#options.concurrency) +
            this.layout(version).files.length;
          if (budget.left - 1 < requests) return false;
          budget.charge(requests);
        }
        this.hydrate();
        return true;
      },
    };
  }

  /** True when a planned file was found deleted: the next poll re-plans from scratch. */
  get needsReplan(): boolean {
    return this.#needsReplan;
  }

  /** True for pinned (`at`) replicas. */
  get pinned(): boolean {
    return this.#options.at !== undefined;
  }

  /** The newest version. Throws before `open()` succeeded. */
  get current(): ReplicaVersion {
    if (!this.#current) throw new ReplicaError("REPLICA_EMPTY", "the replica has no version yet");
    return this.#current;
  }

  /** Loads the first version: latest (or the `at` state). */
  async open(): Promise<void> {
    const at = this.#options.at;
    if (at === undefined) {
      await this.poll();
      return;
    }
    const started = this.#now();
    try {
      // A planned file deleted before its index was read (retention): plan again.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#apply(await this.#discovery.planAt(at), undefined);
          break;
        } catch (err) {
          if (attempt >= PINNED_PLAN_ATTEMPTS || !isMissingFile(err)) throw err;
        }
      }
      this.#lastPollAt = started;
    } catch (err) {
      this.#recordError(err);
      throw err;
    }
  }

  /**
   * Asks storage for news now and applies it. `replan` forgets cached
   * discovery state (after a planned file vanished). Rejects with the failure
   * (also recorded in status); the replica keeps serving its last good version.
   *
   * A call made while a poll is in flight shares it, unless `fresh`: that poll
   * may have read storage before what the caller knows was published, so the
   * caller gets one more poll after it (shared by every fresh call arriving
   * meanwhile).
   */
  poll(replan = false, fresh = false): Promise<void> {
    this.#assertOpen();
    if (this.pinned) {
      return replan || this.#needsReplan ? this.#replanPinned() : Promise.resolve();
    }
    let inFlight = this.#polling;
    const abandonMs = this.#options.pollAbandonMs ?? DEFAULT_POLL_ABANDON_MS;
    if (inFlight && Date.now() - this.#pollStartedAt > abandonMs) {
      // Most likely dropped by its runtime (Workers cancel a request's I/O
      // once it has answered): it would never settle. Start over; its result,
      // should it come, is not applied (see #pollToken).
      inFlight = undefined;
      this.#polling = undefined;
      this.#followUp = undefined;
      this.#followUpReplan = false;
    }
    if (inFlight) {
      if (!fresh) return inFlight;
      this.#followUpReplan ||= replan;
      this.#followUp ??= inFlight
        .catch(() => {})
        .then(() => {
          const again = this.#followUpReplan;
          this.#followUp = undefined;
          this.#followUpReplan = false;
          // A poll started since then began after every caller waiting here.
          return this.poll(again);
        });
      return this.#followUp;
    }
    this.#pollStartedAt = Date.now();
    const token = ++this.#pollToken;
    const run: Promise<void> = this.#pollWithReplan(replan || this.#needsReplan, token).finally(
      () => {
        if (this.#polling === run) this.#polling = undefined;
      },
    );
    this.#polling = run;
    return run;
  }

  /**
   * Polls when a read transaction is about to start and the interval has
   * passed (lazily: no timer keeps a serverless process alive). Returns
   * `undefined` when no poll is due, so the warm path awaits nothing. A failed
   * poll is recorded in status and resolves: the last good version is still
   * consistent and keeps being served. The wait is bounded by `pollWaitMs`
   * from the poll's start: a hung storage endpoint never holds up statements
   * over cached pages; they run on the current version while the poll goes
   * on in the background (`undefined` once the budget is spent).
   */
  pollIfDue(): Promise<void> | undefined {
    this.#assertOpen();
    if (this.pinned) return this.#needsReplan ? this.#replanPinned().catch(() => {}) : undefined;
    const due =
      this.#needsReplan ||
      this.#lastPollAt === undefined ||
      this.#now() - this.#lastPollAt >= this.#options.pollIntervalMs;
    if (!due) return undefined;
    const polling = this.poll().catch(() => {});
    const budget = this.#options.pollWaitMs ?? DEFAULT_POLL_WAIT_MS;
    if (budget === Number.POSITIVE_INFINITY) return polling;
    const remaining = this.#pollStartedAt + budget - Date.now();
    if (remaining <= 0) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, remaining);
      // Never keep a Node process alive for this wait (no-op elsewhere).
      (timer as { unref?: () => void }).unref?.();
      void polling.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Page `pgno` of `version`, decoded and validated (page 1 as SQLite must see
   * it on a replica). `tracker` (per open file) adds read-ahead. Returns the
   * page itself when it is cached, so the VFS can answer without suspending
   * SQLite (an Asyncify unwind and rewind per call); a promise otherwise.
   * Throws synchronously when the page cannot exist in the version.
   */
  readPage(
    version: ReplicaVersion,
    pgno: number,
    tracker?: AccessTracker,
    statement?: StatementContext,
  ): Uint8Array | Promise<Uint8Array> {
    const index = version.index;
    const loc = index.lookup(pgno);
    statement?.noteRead(pgno);
    if (!loc) {
      // SQLite never stores the lock page; it reads as zeros.
      if (pgno === lockPgno(index.pageSize) && pgno <= index.commit)
        return new Uint8Array(index.pageSize);
      throw new ReplicaError(
        "REPLICA_PAGE_MISSING",
        `page ${pgno} of TXID ${index.txid} is not in the page index`,
      );
    }
    const hydrated = this.hydratedPage(pgno, loc);
    if (hydrated) return this.#served(version, pgno, hydrated, tracker);
    const page = this.cache.get(loc);
    let along: PageRequest[] | undefined;
    if (tracker) {
      for (const p of tracker.onRead(pgno, index.commit)) {
        const l = index.lookup(p);
        if (!l || this.cache.has(l)) continue;
        if (along) along.push({ pgno: p, loc: l });
        else along = [{ pgno: p, loc: l }];
      }
    }
    const budget = statement?.budget;
    if (!page) {
      if (statement) {
        // Bulk fetching knows the page's B-tree: its choice replaces plain read-ahead.
        const chosen = this.bulk.onMiss(version, pgno, statement.fetchState());
        if (chosen) along = chosen;
      }
      const landing = this.#hydrator?.pending(loc);
      if (landing)
        return this.#afterHydration(landing, version, { pgno, loc }, tracker, along ?? [], budget);
      return this.#fetchPage(version, { pgno, loc }, tracker, along ?? [], budget);
    }
    // A statement that missed before is in bulk fetching's hands (it read ahead already).
    if (along && !statement?.state) this.fetcher.prefetch(along, index.pageSize, budget);
    return this.#served(version, pgno, page, tracker);
  }

  /** A page whose hydration range is on its way: wait for it rather than ask again. */
  async #afterHydration(
    landing: Promise<void>,
    version: ReplicaVersion,
    req: PageRequest,
    tracker: AccessTracker | undefined,
    along: PageRequest[],
    budget: RequestBudget | undefined,
  ): Promise<Uint8Array> {
    await landing.catch(() => {});
    const page = this.#hydrator?.page(req.pgno, req.loc);
    if (page) {
      if (along.length > 0) this.fetcher.prefetch(along, version.index.pageSize, budget);
      return this.#served(version, req.pgno, page, tracker);
    }
    return this.#fetchPage(version, req, tracker, along, budget);
  }

  async #fetchPage(
    version: ReplicaVersion,
    req: PageRequest,
    tracker: AccessTracker | undefined,
    along: PageRequest[],
    budget: RequestBudget | undefined,
  ): Promise<Uint8Array> {
    let page: Uint8Array;
    try {
      page = await this.fetcher.get(req, version.index.pageSize, along, budget);
    } catch (err) {
      // The statement's own limit, not trouble with storage.
      if (err instanceof RequestBudgetError) throw err;
      this.#recordError(err);
      if (isMissingFile(err)) this.#needsReplan = true;
      throw err;
    }
    return this.#served(version, req.pgno, page, tracker);
  }

  #served(
    version: ReplicaVersion,
    pgno: number,
    page: Uint8Array,
    tracker: AccessTracker | undefined,
  ): Uint8Array {
    if (tracker && !tracker.touchInterior(pgno) && isInteriorPage(page, pgno)) {
      const children = interiorChildren(page, pgno, version.index.commit);
      if (children) tracker.onInterior(pgno, children);
    }
    return pgno === 1 ? presentPage1(page, version) : page;
  }

  /** The replica's figures. */
  status(): ReplicaStatus {
    const v = this.#current;
    const lagSeconds =
      this.pinned || this.#lastConfirmedAt === undefined
        ? null
        : Math.max(0, (this.#now() - this.#lastConfirmedAt) / 1000);
    let health: ReplicaHealth = "unknown";
    if (lagSeconds !== null) {
      if (lagSeconds <= this.#options.laggingSeconds) health = "healthy";
      else if (lagSeconds <= this.#options.staleSeconds) health = "lagging";
      else health = "stale";
    }
    const ts = v?.index.timestamp;
    return {
      url: this.url,
      txid: v ? v.index.txid : null,
      commitTime: ts !== undefined ? new Date(ts) : null,
      lagSeconds,
      health,
      pinned: this.pinned,
      discovery: this.#discovery.mode,
      pageSize: v ? v.index.pageSize : null,
      pages: v ? v.index.commit : null,
      lastPollAt: this.#lastPollAt !== undefined ? new Date(this.#lastPollAt) : null,
      lastError: this.#lastError ? { ...this.#lastError } : null,
      cache: this.cache.stats(),
      persistentCache: this.#persistent ? this.#persistent.stats() : null,
      hydration: this.#hydrator?.status() ?? {
        state: "off",
        txid: null,
        pages: 0,
        totalPages: 0,
        bytes: 0,
        totalBytes: 0,
        error: null,
      },
      bulk: this.bulk.stats(),
      requests: this.stats.snapshot(),
      storage: this.#options.store.health?.() ?? null,
    };
  }

  /** Marks the core closed and drops cached pages. */
  close(): void {
    this.#closed = true;
    this.#hydrator?.close();
    this.#hydrator = undefined;
    if (!this.#options.pageCache) this.cache.clear();
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ReplicaError("REPLICA_CLOSED", `replica ${this.url} is closed`);
  }

  /**
   * A pinned replica whose plan lost a file (retention, or Litestream
   * dropping compacted level-0 files) plans its TXID again from what the
   * replica holds now: the same state from other files. Always the TXID it
   * serves, never its original time target, which could now resolve to
   * another state. Calls made meanwhile share the one under way. Rejects
   * with `REPLICA_TARGET_EXPIRED` when that TXID can no longer be restored.
   */
  #replanPinned(): Promise<void> {
    this.#pinnedReplan ??= this.#planPinnedAgain().finally(() => {
      this.#pinnedReplan = undefined;
    });
    return this.#pinnedReplan;
  }

  async #planPinnedAgain(): Promise<void> {
    const cur = this.#current;
    if (!cur) return;
    const txid = cur.index.txid;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#planTxidAgain(txid);
          return;
        } catch (err) {
          if (attempt >= PINNED_PLAN_ATTEMPTS || !isMissingFile(err)) throw err;
        }
      }
    } catch (err) {
      this.#recordError(err);
      throw err;
    }
  }

  /** Plans `txid` again and serves it (see #replanPinned). */
  async #planTxidAgain(txid: number): Promise<void> {
    let result: DiscoveryResult & { kind: "update" };
    try {
      result = await this.#discovery.planAt({ txid });
    } catch (err) {
      const code = errorCode(err);
      if (code !== "RESTORE_TARGET_UNAVAILABLE" && code !== "RESTORE_CHAIN_GAP") throw err;
      throw new ReplicaError(
        "REPLICA_TARGET_EXPIRED",
        `TXID ${txid} of this pinned replica can no longer be read: retention removed files it needs (open a newer target)`,
        { cause: err },
      );
    }
    if (result.txid !== txid) {
      throw new ReplicaError(
        "REPLICA_TARGET_EXPIRED",
        `TXID ${txid} of this pinned replica can no longer be read exactly (the replica plans TXID ${result.txid})`,
      );
    }
    if (this.#closed) return;
    await this.#apply(result, undefined);
    this.#needsReplan = false;
  }

  async #pollWithReplan(replan: boolean, token: number): Promise<void> {
    try {
      await this.#pollOnce(replan, token);
    } catch (err) {
      // A file named by the plan was deleted (retention) while we planned: plan afresh.
      if (!replan && isMissingFile(err)) {
        try {
          await this.#pollOnce(true, token);
          return;
        } catch (again) {
          this.#recordError(again);
          throw again;
        }
      }
      this.#recordError(err);
      throw err;
    }
  }

  async #pollOnce(replan: boolean, token: number): Promise<void> {
    const started = this.#now();
    this.#lastPollAt = started;
    const cur = this.#current;
    const pos = cur ? { txid: cur.index.txid, generation: cur.generation } : undefined;
    const current = () => this.#pollToken === token;
    const result = await this.#discovery.poll(pos, replan);
    if (!current()) return;
    if (result.kind === "update") {
      if (!(await this.#apply(result, result.full ? undefined : cur, current))) return;
    }
    this.#discovery.acknowledge();
    // Everything published when the poll started is now applied.
    this.#lastConfirmedAt = started;
    // Only a replanning poll answers a missing file seen meanwhile: a plain poll
    // that was already running when a read found one still extends the stale plan.
    if (replan) this.#needsReplan = false;
  }

  /** Applies `result`; false (nothing applied) when `stillCurrent` says its poll was given up. */
  async #apply(
    result: DiscoveryResult & { kind: "update" },
    base: ReplicaVersion | undefined,
    stillCurrent: () => boolean = () => true,
  ): Promise<boolean> {
    const opening = base === undefined ? this.#openingReads(result) : undefined;
    const persistent = this.#persistent;
    const generation = result.generation;
    const loaded = await loadPageIndexes(this.#indexStore, result.files, {
      // Every index in one wave: open latency must not grow with the plan length.
      concurrency: Math.max(this.#options.concurrency, 64),
      needLastHeader: result.commit === undefined,
      ...(opening ? { wholeFiles: opening.wholeFiles } : {}),
      // With a pagecast writer, (generation, key) names one immutable object.
      ...(persistent && generation !== undefined
        ? {
            persistent: {
              cache: persistent,
              name: (f: PlanFile) => this.#generationName(generation, f.key, f.size),
            },
          }
        : {}),
    });
    const last = loaded[loaded.length - 1];
    if (!last) throw new ReplicaError("REPLICA_EMPTY", "the replica plan has no files");
    const header = last.header;
    const pageSize = result.pageSize ?? header?.pageSize;
    const commit = result.commit ?? header?.commit;
    if (pageSize === undefined || commit === undefined) {
      throw new ReplicaError("REPLICA_INDEX_INVALID", `no header for ${last.file.key}`);
    }
    for (const l of loaded) {
      const h = l.header;
      if (
        h &&
        (h.minTXID !== l.file.minTXID || h.maxTXID !== l.file.maxTXID || h.pageSize !== pageSize)
      ) {
        throw new ReplicaError(
          "REPLICA_INDEX_INVALID",
          `${l.file.key} holds TXIDs ${h.minTXID}-${h.maxTXID} with page size ${h.pageSize}; ` +
            `expected ${l.file.minTXID}-${l.file.maxTXID} with ${pageSize}`,
        );
      }
    }
    const meta = {
      txid: result.txid,
      commit,
      pageSize,
      timestamp: result.timestamp ?? header?.timestamp ?? last.file.timestamp,
    };
    const index = base ? base.index.extend(loaded, meta) : PageIndex.fromFiles(loaded, meta);
    if (opening) await this.#seed(index, loaded, opening);
    if (!stillCurrent()) return false;
    this.#seq++;
    this.#current = {
      seq: this.#seq,
      index,
      generation: result.generation ?? base?.generation,
    };
    // Hydrated: follow the new version (only pages whose frame changed are read).
    if (this.#hydrationRequested || this.#options.hydrate === true) this.hydrate();
    return true;
  }

  /** Persistent-cache name of an object of a pagecast writer's generation. */
  #generationName(generation: string, key: string, size: number | undefined): string | undefined {
    return size === undefined ? undefined : `${this.url}\ngen:${generation}\n${key}#${size}`;
  }

  /**
   * For a full plan from a head naming a skeleton of its snapshot: the
   * skeleton (whole), page 1 (when the head says where it is and the skeleton
   * cannot hold its newest image) and small delta files (whole: they hold the
   * pages changed since the snapshot, page 1 and the b-tree pages above the
   * changed leaves included), all started now, alongside the page indexes.
   */
  #openingReads(result: DiscoveryResult & { kind: "update" }): OpeningReads | undefined {
    const first = result.files[0];
    const snapshot =
      first && first.level === SNAPSHOT_LEVEL && first.minTXID === 1 ? first : undefined;
    const skeleton: HeadSkeleton | undefined =
      snapshot && result.skeleton?.txid === snapshot.maxTXID ? result.skeleton : undefined;
    const wholeFiles = new Set<string>();
    if (skeleton) {
      let budget = WHOLE_FILES_TOTAL_BYTES;
      for (let i = result.files.length - 1; i >= 1; i--) {
        const f = result.files[i]!;
        if (f.size === undefined || f.size > WHOLE_FILE_MAX_BYTES || f.size > budget) continue;
        wholeFiles.add(f.key);
        budget -= f.size;
      }
    }
    const at = result.page1;
    const page1Needed =
      at !== undefined && !wholeFiles.has(at.key) && !(skeleton && at.key === snapshot?.key);
    if (!skeleton && !page1Needed) return undefined;
    const quiet = <T>(p: Promise<T>): Promise<T | undefined> => p.catch(() => undefined);
    return {
      snapshot,
      skeleton: skeleton ? this.#readSkeleton(skeleton, result.generation) : undefined,
      page1:
        page1Needed && at
          ? {
              at,
              bytes: quiet(
                this.#pageStore
                  .get(at.key, { range: { offset: at.offset, length: at.size } })
                  .then((res) => (res.notModified ? undefined : res.body)),
              ),
            }
          : undefined,
      wholeFiles,
    };
  }

  /**
   * The skeleton: from the persistent cache (named by the writer's generation,
   * and checked against the snapshot's index before use) or from storage.
   */
  async #readSkeleton(
    skeleton: HeadSkeleton,
    generation: string | undefined,
  ): Promise<Uint8Array | undefined> {
    const name =
      generation === undefined
        ? undefined
        : this.#generationName(generation, skeleton.key, skeleton.size);
    const cache = this.#persistent;
    if (cache && name !== undefined) {
      const hit = await cache.readWhole(name, 0, skeleton.size);
      if (hit) return hit;
    }
    try {
      const res = await this.#skeletonStore.get(skeleton.key, { maxBytes: skeleton.size });
      if (res.notModified) return undefined;
      if (res.body.length !== skeleton.size) {
        this.#skeletonProblem(
          skeleton.key,
          `${res.body.length} bytes, the head says ${skeleton.size}`,
        );
        return undefined;
      }
      if (cache && name !== undefined) void cache.write(name, 0, res.body);
      return res.body;
    } catch (err) {
      // Deleted with its snapshot since the head was read: benign.
      if (!isMissingFile(err)) this.#skeletonProblem(skeleton.key, errorMessage(err), err);
      return undefined;
    }
  }

  /**
   * Fills the page cache from what {@link #openingReads} fetched, only at the
   * locations where those images are the newest of the version: a skeleton
   * page another file overrides is never served (that page is prefetched from
   * its newest file instead, in the background). Anything malformed is just
   * not used: the pages are then read on demand.
   */
  async #seed(index: PageIndex, loaded: LoadedFile[], opening: OpeningReads): Promise<void> {
    const pageSize = index.pageSize;
    for (const l of loaded) {
      if (!l.body) continue;
      const entries = l.entries;
      for (let i = 0; i < entries.count; i++) {
        const pgno = entries.pgno(i);
        const offset = entries.offset(i);
        const loc = index.lookup(pgno);
        if (!loc || loc.file.key !== l.file.key || loc.offset !== offset) continue;
        const page = decodeFrame(l.body.subarray(offset, offset + entries.size(i)), pgno, pageSize);
        if (page) this.cache.set(loc, page);
      }
    }
    if (opening.page1) {
      const bytes = await opening.page1.bytes;
      const at = opening.page1.at;
      const loc = index.lookup(1);
      if (
        bytes &&
        loc &&
        loc.file.key === at.key &&
        loc.offset === at.offset &&
        loc.size === at.size
      ) {
        const page = decodeFrame(bytes, 1, pageSize);
        if (page) this.cache.set(loc, page);
      }
    }
    const bytes = opening.skeleton ? await opening.skeleton : undefined;
    if (bytes && opening.snapshot) this.#seedSkeleton(index, opening.snapshot, bytes);
  }

  /**
   * A skeleton that cannot be used is only an optimization lost (pages are
   * read on demand), but it is reported: it shows in `status().lastError`.
   */
  #skeletonProblem(key: string, what: string, cause?: unknown): void {
    this.#recordError(
      new LayoutError("SKELETON_INVALID", `skeleton ${key} not used: ${what}`, { cause }),
    );
  }

  #seedSkeleton(index: PageIndex, snapshot: PlanFile, bytes: Uint8Array): void {
    const key = skeletonKey(snapshot.maxTXID);
    let skeleton: ReturnType<typeof decodeLtx>;
    try {
      skeleton = decodeLtx(bytes);
    } catch (err) {
      this.#skeletonProblem(key, errorMessage(err), err);
      return;
    }
    const h = skeleton.header;
    const txid = skeletonHeaderTXID(snapshot.maxTXID);
    if (h.pageSize !== index.pageSize || h.minTXID !== txid || h.maxTXID !== txid) {
      this.#skeletonProblem(key, "its header does not match the snapshot");
      return;
    }
    const frameSizes = new Map(skeleton.pageIndex.map((e) => [e.pgno, e.size]));
    const seeds: [PageLocation, Uint8Array][] = [];
    const overridden: PageRequest[] = [];
    for (const p of skeleton.pages) {
      const loc = index.lookup(p.pgno);
      if (!loc) continue;
      if (loc.file.key !== snapshot.key) {
        if (!this.cache.has(loc)) overridden.push({ pgno: p.pgno, loc });
        continue;
      }
      // The same page compressed by the same writer gives the same frame: a
      // different size means this skeleton does not describe this snapshot.
      if (frameSizes.get(p.pgno) !== loc.size) {
        this.#skeletonProblem(key, `page ${p.pgno} differs from the snapshot's`);
        return;
      }
      seeds.push([loc, p.data]);
    }
    for (const [loc, page] of seeds) this.cache.set(loc, page);
    // Changed since the snapshot, most likely still interior pages: fetch
    // their newest images now, in parallel, before a query descends to them.
    if (overridden.length > 0) this.fetcher.prefetch(overridden, index.pageSize);
  }

  #recordError(err: unknown): void {
    this.#lastError = {
      message: errorMessage(err),
      code: errorCode(err),
      at: new Date(this.#now()),
    };
  }

  /**
   * Background b-tree prefetch after a fetch: page 1 names every root page,
   * and a root naming few children gets them fetched before a query descends.
   */
  #afterFetch(req: PageRequest, page: Uint8Array, budget: RequestBudget | undefined): void {
    const v = this.#current;
    if (!v || this.#closed) return;
    if (isInteriorPage(page, req.pgno)) this.bulk.interiorArrived();
    const loc = v.index.lookup(req.pgno);
    // Hints are only trusted for the current version's image of the page.
    if (!loc || loc.file.key !== req.loc.file.key || loc.offset !== req.loc.offset) return;
    if (this.#hintsSeq !== v.seq) {
      this.#hintsSeq = v.seq;
      this.#roots = new Set();
      this.#schemaPages = new Set([1]);
    }
    const commit = v.index.commit;
    const wanted: number[] = [];
    if (this.#schemaPages.has(req.pgno)) {
      const children = interiorChildren(page, req.pgno, commit);
      if (children) {
        for (const c of children) this.#schemaPages.add(c);
        wanted.push(...children);
      } else {
        for (const r of schemaRootPages(page, req.pgno, commit)) {
          this.#roots.add(r);
          wanted.push(r);
        }
      }
    } else if (this.#roots.has(req.pgno)) {
      const children = interiorChildren(page, req.pgno, commit);
      if (children && children.length <= this.#options.rootPrefetchFanout) wanted.push(...children);
    }
    const reqs: PageRequest[] = [];
    for (const p of wanted) {
      const l = v.index.lookup(p);
      if (l && !this.cache.has(l) && !this.fetcher.isInflight(l)) reqs.push({ pgno: p, loc: l });
    }
    // Booked on the statement whose fetch brought the page (it is still running).
    if (reqs.length > 0) this.fetcher.prefetch(reqs, v.index.pageSize, budget);
  }
}

/** A validated page from a frame, or `undefined` when it does not decode. */
function decodeFrame(frame: Uint8Array, pgno: number, pageSize: number): Uint8Array | undefined {
  try {
    // The cache stores a copy: a view of the file's body is fine here.
    return decodePageFrame(frame, { pgno, pageSize });
  } catch {
    return undefined;
  }
}

/** Page-1 images as served, per (version, source image). */
const presented = new WeakMap<ReplicaVersion, { source: Uint8Array; page: Uint8Array }>();

/**
 * Page 1 as a replica must present it: bytes 18/19 = 1 (rollback journal: a
 * WAL-mode header would send SQLite looking for -wal/-shm files), and a file
 * change counter (24) / version-valid-for (92) unique to the version, with the
 * in-header size (28) = Commit, so SQLite drops its page cache exactly when
 * the served version changes (a WAL-mode primary never bumps byte 24).
 */
export function presentPage1(source: Uint8Array, version: ReplicaVersion): Uint8Array {
  const hit = presented.get(version);
  if (hit && hit.source === source) return hit.page;
  const page = source.slice();
  if (page.length >= 100) {
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    page[18] = 1;
    page[19] = 1;
    const counter = version.seq >>> 0;
    view.setUint32(24, counter);
    view.setUint32(28, version.index.commit);
    view.setUint32(92, counter);
  }
  presented.set(version, { source, page });
  return page;
}
