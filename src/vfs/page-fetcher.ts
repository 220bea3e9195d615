/**
 * Fetches page frames by range GET, validates and decodes them, and fills the
 * page cache. Adjacent missing frames of the same file become one request;
 * concurrent asks for the same frame share one request; `p-limit` caps the
 * requests in flight (separately for reads a query waits on, speculative
 * reads, and bulk fetches). With a persistent cache, ranges it holds are
 * read locally and every range fetched is stored in it. A frame that fails
 * validation is never served.
 */
import pLimit from "p-limit";
import { decodePageFrame } from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { type FileFrames, FrameLayout } from "./frame-layout.js";
import { locationKey, type PageCache } from "./page-cache.js";
import type { PageLocation, PlanFile } from "./page-index.js";
import type { PersistentCache } from "./persistent-cache.js";
import { PieceRanges } from "./piece-ranges.js";
import { type PlannedRun, planRuns } from "./range-planner.js";
import { persistentName, readFromStore, readRangePieces } from "./range-read.js";
import { ReplicaError } from "./replica-error.js";
import type { RequestBudget } from "./request-budget.js";

/** One page wanted from one version. */
export interface PageRequest {
  pgno: number;
  loc: PageLocation;
}

/** Options of {@link PageFetcher}. */
export interface PageFetcherOptions {
  /** Most range GETs in flight (per kind: demand, prefetch). */
  concurrency: number;
  /** Most bulk range GETs in flight. */
  bulkConcurrency?: number;
  /** Most bytes of bulk range GETs in flight (default 64 MiB): bounds the memory they hold. */
  bulkBytesInFlight?: number;
  /** Frames separated by at most this many unwanted bytes still share one GET. */
  coalesceGapBytes?: number;
  /** Upper bound on one coalesced GET. */
  maxRangeBytes?: number;
  /** Persistent cache of fetched ranges, and the store location naming its entries. */
  persistent?: { cache: PersistentCache; namespace: string };
  /** Store used for bulk fetches (accounted apart); default: the main store. */
  bulkStore?: ObjectStore;
}

interface Inflight {
  promise: Promise<Uint8Array>;
  /** The request was sent (false while it waits for a slot). */
  started: boolean;
  /** Part of a bulk fetch (bounded: worth waiting for even while queued). */
  bulk: boolean;
}

interface Run {
  file: PlanFile;
  start: number;
  end: number;
  items: PageRequest[];
}

type LimitKind = "demand" | "prefetch" | "bulk";

/** Speculative batches spanning more runs than this are coalesced into about this many GETs. */
const SPREAD_RUNS = 6;
/** ...reading at most this many times their wanted bytes in between. */
const SPREAD_WASTE = 3;

/** Runs tasks with a bound on how many (and, for bulk, how many bytes) are in flight. */
type Limiter = <T>(task: () => Promise<T>, bytes: number) => Promise<T>;

/** At most `count` tasks and `maxBytes` bytes at once (a task larger than the bound runs alone). */
function byteLimit(count: number, maxBytes = 64 * 1024 * 1024): Limiter {
  let running = 0;
  let bytesInFlight = 0;
  const queue: { bytes: number; start: () => void }[] = [];
  const pump = () => {
    while (queue.length > 0) {
      const next = queue[0]!;
      if (running >= count || (running > 0 && bytesInFlight + next.bytes > maxBytes)) return;
      queue.shift();
      running++;
      bytesInFlight += next.bytes;
      next.start();
    }
  };
  return <T>(task: () => Promise<T>, bytes: number) =>
    new Promise<T>((resolve, reject) => {
      queue.push({
        bytes,
        start: () => {
          task()
            .then(resolve, reject)
            .finally(() => {
              running--;
              bytesInFlight -= bytes;
              pump();
            });
        },
      });
      pump();
    });
}

/** A count-only limiter (p-limit). */
function countLimit(count: number): Limiter {
  const limit = pLimit(count);
  return (task) => limit(task);
}

/**
 * Called after a page was fetched and decoded (not for cache hits), with the
 * request budget of the statement that caused the fetch (if any).
 */
export type FetchedHook = (req: PageRequest, page: Uint8Array, budget?: RequestBudget) => void;

/** Range-GET page fetcher over one store and one cache. */
export class PageFetcher {
  readonly #store: ObjectStore;
  readonly #bulkStore: ObjectStore;
  readonly #cache: PageCache;
  readonly #limits: Record<LimitKind, Limiter>;
  readonly #gap: number;
  readonly #maxRange: number;
  readonly #persistent: { cache: PersistentCache; namespace: string } | undefined;
  readonly #inflight = new Map<string, Inflight>();
  #onFetched: FetchedHook | undefined;

  constructor(store: ObjectStore, cache: PageCache, options: PageFetcherOptions) {
    this.#store = store;
    this.#bulkStore = options.bulkStore ?? store;
    this.#cache = cache;
    const n = Math.max(1, options.concurrency);
    this.#limits = {
      demand: countLimit(n),
      prefetch: countLimit(n),
      bulk: byteLimit(Math.max(n, options.bulkConcurrency ?? n), options.bulkBytesInFlight),
    };
    this.#gap = options.coalesceGapBytes ?? 0;
    this.#maxRange = options.maxRangeBytes ?? 4 * 1024 * 1024;
    this.#persistent = options.persistent;
  }

  /** Registers the hook run after every fetched page (used for b-tree prefetch). */
  set onFetched(hook: FetchedHook | undefined) {
    this.#onFetched = hook;
  }

  /** Requests in flight or queued. */
  get pending(): number {
    return this.#inflight.size;
  }

  /** Whether the image at `loc` is being fetched. */
  isInflight(loc: PageLocation): boolean {
    return this.#inflight.has(locationKey(loc));
  }

  /** The fetch of `loc` in flight, if it was sent. */
  inflight(loc: PageLocation): Promise<Uint8Array> | undefined {
    const pending = this.#inflight.get(locationKey(loc));
    return pending?.started ? pending.promise : undefined;
  }

  /**
   * The decoded page for `want`, fetching it (together with `along`, in the
   * same batch so adjacent frames coalesce) when not cached. `along` pages
   * only warm the cache; their failures do not fail `want`. With a `budget`,
   * every range GET is booked on it first: `want` fails with its
   * `REPLICA_REQUEST_BUDGET` error when none is left, `along` shrinks to fit.
   */
  async get(
    want: PageRequest,
    pageSize: number,
    along: PageRequest[] = [],
    budget?: RequestBudget,
  ): Promise<Uint8Array> {
    // A copy: the cache reuses its slot once evicted, and the caller awaits first.
    const cached = this.#cache.peek(want.loc);
    if (cached) return cached.slice();
    const key = locationKey(want.loc);
    const pending = this.#inflight.get(key);
    if (pending?.started || pending?.bulk) {
      if (along.length > 0) this.prefetch(along, pageSize, budget);
      // Riding on another read (a bulk range, read-ahead): if that one fails,
      // this page still gets a request of its own before the query sees an error.
      return pending.promise.catch(() => this.#alone(want, pageSize, budget));
    }
    // Not asked for yet, or only queued behind speculative reads: a query waits
    // on it now, so it goes out at once (a queued duplicate later just refills the cache).
    if (budget && budget.left < 1) throw budget.exceeded();
    if (pending) this.#inflight.delete(key);
    this.#startBatch([want, ...along], pageSize, want, budget);
    return this.#inflight.get(key)?.promise ?? this.#afterRace(want);
  }

  /** `want` fetched by a request of its own (after a shared request failed). */
  #alone(want: PageRequest, pageSize: number, budget?: RequestBudget): Promise<Uint8Array> {
    const cached = this.#cache.peek(want.loc);
    if (cached) return Promise.resolve(cached.slice());
    const pending = this.#inflight.get(locationKey(want.loc));
    if (pending?.started) return pending.promise;
    if (budget && budget.left < 1) return Promise.reject(budget.exceeded());
    this.#inflight.delete(locationKey(want.loc));
    this.#startBatch([want], pageSize, want, budget);
    return this.#inflight.get(locationKey(want.loc))?.promise ?? this.#afterRace(want);
  }

  /**
   * Warms the cache with `reqs` in the background; failures are ignored (a
   * later read retries). With a `budget`, only as many range GETs as it has left.
   */
  prefetch(reqs: PageRequest[], pageSize: number, budget?: RequestBudget): void {
    this.#startBatch(reqs, pageSize, undefined, budget);
  }

  /**
   * Bulk fetch: the planned runs, under the bulk limit. Frames of `layout`
   * (the version's current frames) lying in a run's gaps are kept too when
   * the cache has room. `onPage` sees every wanted page that arrives.
   * Resolves when every run has settled (failures only leave pages uncached).
   */
  async fetchRuns(
    runs: PlannedRun[],
    pageSize: number,
    options: { layout?: FrameLayout; onPage?: FetchedHook; budget?: RequestBudget } = {},
  ): Promise<void> {
    const settled: Promise<unknown>[] = [];
    const budget = options.budget;
    for (const planned of runs) {
      const items = planned.items.filter(
        (r) => !this.#inflight.has(locationKey(r.loc)) && !this.#cache.has(r.loc),
      );
      if (items.length === 0) continue;
      if (budget) {
        if (budget.left < 1) break;
        budget.charge(1);
      }
      const run: Run = { file: planned.file, start: planned.start, end: planned.end, items };
      const frames = options.layout?.file(run.file.key);
      const body = this.#startRun(run, pageSize, "bulk", options.onPage, budget);
      settled.push(
        body.then(
          (bytes) => this.#keepAlong(run, bytes, frames, pageSize),
          () => {},
        ),
      );
    }
    await Promise.all(settled);
  }

  /** The batch completed synchronously (impossible today); fall back to the cache. */
  #afterRace(want: PageRequest): Promise<Uint8Array> {
    const page = this.#cache.peek(want.loc);
    if (page) return Promise.resolve(page.slice());
    return Promise.reject(
      new ReplicaError("REPLICA_PAGE_INVALID", `page ${want.pgno} could not be fetched`),
    );
  }

  #startBatch(
    reqs: PageRequest[],
    pageSize: number,
    demand?: PageRequest,
    budget?: RequestBudget,
  ): void {
    const seen = new Set<string>();
    const todo: PageRequest[] = [];
    for (const r of reqs) {
      const k = locationKey(r.loc);
      if (seen.has(k) || this.#inflight.has(k) || this.#cache.has(r.loc)) continue;
      seen.add(k);
      todo.push(r);
    }
    let runs = this.#runs(todo);
    // Many speculative pages scattered over a file (the leaves of one B-tree
    // in a file where trees interleave): a few coalesced GETs, not one each.
    if (runs.length > SPREAD_RUNS) {
      const lead = demand ? runs.find((r) => r.items.includes(demand)) : undefined;
      const rest = runs.filter((r) => r !== lead).flatMap((r) => r.items);
      const wanted = rest.reduce((n, r) => n + r.loc.size, 0);
      const planned = planRuns(rest, {
        maxRuns: SPREAD_RUNS,
        maxWasteBytes: wanted * SPREAD_WASTE,
        maxRangeBytes: this.#maxRange,
      });
      runs = lead ? [lead, ...planned] : planned;
    }
    if (budget) runs = this.#withinBudget(runs, budget, demand);
    for (const run of runs) {
      const kind: LimitKind =
        demand !== undefined && run.items.includes(demand) ? "demand" : "prefetch";
      this.#startRun(run, pageSize, kind, undefined, budget).catch(() => {});
    }
  }

  /**
   * The runs of a batch that fit `budget` (booked on it): the demanded page's
   * first, the speculative rest coalesced into the requests left (bridging
   * gaps), and what still does not fit dropped (a later miss asks again).
   */
  #withinBudget(runs: Run[], budget: RequestBudget, demand: PageRequest | undefined): Run[] {
    const lead = demand ? runs.find((r) => r.items.includes(demand)) : undefined;
    const room = budget.left - (lead ? 1 : 0);
    let rest = runs.filter((r) => r !== lead);
    if (rest.length > room) {
      const items = rest.flatMap((r) => r.items);
      const wanted = items.reduce((n, r) => n + r.loc.size, 0);
      rest =
        room < 1
          ? []
          : planRuns(items, {
              maxRuns: room,
              maxWasteBytes: wanted * SPREAD_WASTE,
              maxRangeBytes: this.#maxRange,
            }).slice(0, room);
    }
    const out = lead ? [lead, ...rest] : rest;
    budget.charge(out.length);
    return out;
  }

  /** Groups requests into runs of nearby frames of the same file. */
  #runs(reqs: PageRequest[]): Run[] {
    const byFile = new Map<string, PageRequest[]>();
    for (const r of reqs) {
      const list = byFile.get(r.loc.file.key);
      if (list) list.push(r);
      else byFile.set(r.loc.file.key, [r]);
    }
    const runs: Run[] = [];
    for (const list of byFile.values()) {
      list.sort((a, b) => a.loc.offset - b.loc.offset);
      let run: Run | undefined;
      for (const r of list) {
        const end = r.loc.offset + r.loc.size;
        if (run && r.loc.offset - run.end <= this.#gap && end - run.start <= this.#maxRange) {
          run.end = Math.max(run.end, end);
          run.items.push(r);
          continue;
        }
        run = { file: r.loc.file, start: r.loc.offset, end, items: [r] };
        runs.push(run);
      }
    }
    return runs;
  }

  /** Starts `run`; resolves with its bytes (each item's page also lands in the cache). */
  #startRun(
    run: Run,
    pageSize: number,
    kind: LimitKind,
    onPage?: FetchedHook,
    budget?: RequestBudget,
  ): Promise<PieceRanges> {
    const entries: Inflight[] = [];
    const store = kind === "bulk" ? this.#bulkStore : this.#store;
    const body = this.#limits[kind](() => {
      for (const e of entries) e.started = true;
      return this.#read(run, store);
    }, run.end - run.start);
    for (const item of run.items) {
      const k = locationKey(item.loc);
      const promise = body.then(async (bytes) => {
        const frame = bytes.read(item.loc.offset, item.loc.size);
        let page: Uint8Array;
        try {
          page = decodePageFrame(frame, { pgno: item.pgno, pageSize });
        } catch (err) {
          // Bytes from the persistent cache that passed its checksum yet do not
          // decode: never trust them, read the frame from storage (and replace them).
          const again = this.#persistent ? await this.#refetchFrame(item, store) : undefined;
          if (!again) {
            throw new ReplicaError(
              "REPLICA_PAGE_INVALID",
              `page ${item.pgno} in ${item.loc.file.key} at ${item.loc.offset} failed validation`,
              { cause: err },
            );
          }
          page = decodePageFrame(again, { pgno: item.pgno, pageSize });
        }
        // Hooks may hold the page a while: not through a view pinning the whole response.
        if (page.byteLength !== page.buffer.byteLength) page = page.slice();
        this.#cache.set(item.loc, page);
        try {
          this.#onFetched?.(item, page, budget);
          onPage?.(item, page);
        } catch {
          // A prefetch hint is never worth failing a read.
        }
        return page;
      });
      // Rejections are observed by whoever awaits; background ones must not surface as unhandled.
      promise.catch(() => {});
      const entry: Inflight = { promise, started: false, bulk: kind === "bulk" };
      entries.push(entry);
      const cleanup = () => {
        if (this.#inflight.get(k) === entry) this.#inflight.delete(k);
      };
      promise.then(cleanup, cleanup);
      this.#inflight.set(k, entry);
    }
    return body;
  }

  /** Keeps the current frames a bulk run brought along between its wanted ones, while the cache has room. */
  #keepAlong(run: Run, bytes: PieceRanges, frames: FileFrames | undefined, pageSize: number): void {
    if (!frames) return;
    const [from, to] = FrameLayout.within(frames, run.start, run.end);
    for (let i = from; i < to; i++) {
      const loc: PageLocation = {
        file: run.file,
        offset: frames.offsets[i]!,
        size: frames.sizes[i]!,
      };
      if (this.#cache.has(loc)) continue;
      // Half the cache stays for the wanted pages of bulk fetches still arriving.
      const reserve = this.#cache.maxBytes / 2;
      if (this.#cache.free < pageSize + reserve) return;
      try {
        // Decoded straight into the cache's slot: nothing else holds this page.
        const frame = bytes.read(loc.offset, loc.size);
        const pgno = frames.pgnos[i]!;
        this.#cache.fillIfRoom(loc, pageSize, reserve, (slot) =>
          decodePageFrame(frame, { pgno, pageSize }, slot),
        );
      } catch {
        // Not served; a later read fetches and validates it on its own.
      }
    }
  }

  /** The bytes of `run`: from the persistent cache where it has them, else from storage. */
  async #read(run: Run, store: ObjectStore): Promise<PieceRanges> {
    // In the pieces the body arrived in: no body-sized buffer and copy per request.
    const pieces = await readRangePieces(store, this.#persistent, run.file, run.start, run.end);
    return new PieceRanges(pieces, run.start);
  }

  /** One frame straight from storage, replacing what the persistent cache holds for it. */
  async #refetchFrame(item: PageRequest, store: ObjectStore): Promise<Uint8Array | undefined> {
    const name = this.#persistentName(item.loc.file);
    if (!name || !this.#persistent) return undefined;
    const { offset, size } = item.loc;
    const bytes = await this.#network(store, item.loc.file.key, offset, offset + size);
    void this.#persistent.cache.write(name, offset, bytes, { replace: true });
    return bytes;
  }

  #persistentName(file: PlanFile): string | undefined {
    return this.#persistent ? persistentName(this.#persistent.namespace, file) : undefined;
  }

  #network(store: ObjectStore, key: string, start: number, end: number): Promise<Uint8Array> {
    return readFromStore(store, key, start, end);
  }
}
