/**
 * Fetches page frames by range GET, validates and decodes them, and fills the
 * page cache. Adjacent missing frames of the same file become one request;
 * concurrent asks for the same frame share one request; `p-limit` caps the
 * requests in flight. A frame that fails validation is never served.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { decodePageFrame } from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { locationKey, type PageCache } from "./page-cache.js";
import type { PageLocation } from "./page-index.js";
import { ReplicaError } from "./replica-error.js";

/** One page wanted from one version. */
export interface PageRequest {
  pgno: number;
  loc: PageLocation;
}

/** Options of {@link PageFetcher}. */
export interface PageFetcherOptions {
  /** Most range GETs in flight. */
  concurrency: number;
  /** Frames separated by at most this many unwanted bytes still share one GET. */
  coalesceGapBytes?: number;
  /** Upper bound on one coalesced GET. */
  maxRangeBytes?: number;
}

interface Inflight {
  promise: Promise<Uint8Array>;
  /** The request was sent (false while it waits for a prefetch slot). */
  started: boolean;
}

interface Run {
  key: string;
  start: number;
  end: number;
  items: PageRequest[];
}

/** Called after a page was fetched and decoded (not for cache hits). */
export type FetchedHook = (req: PageRequest, page: Uint8Array) => void;

/** Range-GET page fetcher over one store and one cache. */
export class PageFetcher {
  readonly #store: ObjectStore;
  readonly #cache: PageCache;
  /** Reads a query waits on: never queued behind speculative ones. */
  readonly #demandLimit: LimitFunction;
  /** Read-ahead and b-tree prefetch. */
  readonly #prefetchLimit: LimitFunction;
  readonly #gap: number;
  readonly #maxRange: number;
  readonly #inflight = new Map<string, Inflight>();
  #onFetched: FetchedHook | undefined;

  constructor(store: ObjectStore, cache: PageCache, options: PageFetcherOptions) {
    this.#store = store;
    this.#cache = cache;
    this.#demandLimit = pLimit(Math.max(1, options.concurrency));
    this.#prefetchLimit = pLimit(Math.max(1, options.concurrency));
    this.#gap = options.coalesceGapBytes ?? 0;
    this.#maxRange = options.maxRangeBytes ?? 4 * 1024 * 1024;
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

  /**
   * The decoded page for `want`, fetching it (together with `along`, in the
   * same batch so adjacent frames coalesce) when not cached. `along` pages
   * only warm the cache; their failures do not fail `want`.
   */
  async get(want: PageRequest, pageSize: number, along: PageRequest[] = []): Promise<Uint8Array> {
    const cached = this.#cache.peek(want.loc);
    if (cached) return cached;
    const key = locationKey(want.loc);
    const pending = this.#inflight.get(key);
    if (pending?.started) {
      if (along.length > 0) this.prefetch(along, pageSize);
      return pending.promise;
    }
    // Not asked for yet, or only queued behind speculative reads: a query waits
    // on it now, so it goes out at once (a queued duplicate later just refills the cache).
    if (pending) this.#inflight.delete(key);
    this.#startBatch([want, ...along], pageSize, want);
    return this.#inflight.get(key)?.promise ?? this.#afterRace(want);
  }

  /** Warms the cache with `reqs` in the background; failures are ignored (a later read retries). */
  prefetch(reqs: PageRequest[], pageSize: number): void {
    this.#startBatch(reqs, pageSize);
  }

  /** The batch completed synchronously (impossible today); fall back to the cache. */
  #afterRace(want: PageRequest): Promise<Uint8Array> {
    const page = this.#cache.peek(want.loc);
    if (page) return Promise.resolve(page);
    return Promise.reject(
      new ReplicaError("REPLICA_PAGE_INVALID", `page ${want.pgno} could not be fetched`),
    );
  }

  #startBatch(reqs: PageRequest[], pageSize: number, demand?: PageRequest): void {
    const seen = new Set<string>();
    const todo: PageRequest[] = [];
    for (const r of reqs) {
      const k = locationKey(r.loc);
      if (seen.has(k) || this.#inflight.has(k) || this.#cache.has(r.loc)) continue;
      seen.add(k);
      todo.push(r);
    }
    for (const run of this.#runs(todo)) {
      this.#startRun(run, pageSize, demand !== undefined && run.items.includes(demand));
    }
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
    for (const [key, list] of byFile) {
      list.sort((a, b) => a.loc.offset - b.loc.offset);
      let run: Run | undefined;
      for (const r of list) {
        const end = r.loc.offset + r.loc.size;
        if (run && r.loc.offset - run.end <= this.#gap && end - run.start <= this.#maxRange) {
          run.end = Math.max(run.end, end);
          run.items.push(r);
          continue;
        }
        run = { key, start: r.loc.offset, end, items: [r] };
        runs.push(run);
      }
    }
    return runs;
  }

  #startRun(run: Run, pageSize: number, demand: boolean): void {
    const limit = demand ? this.#demandLimit : this.#prefetchLimit;
    const entries: Inflight[] = [];
    const body = limit(() => {
      for (const e of entries) e.started = true;
      return this.#read(run);
    });
    for (const item of run.items) {
      const k = locationKey(item.loc);
      const promise = body.then((bytes) => {
        const rel = item.loc.offset - run.start;
        const frame = bytes.subarray(rel, rel + item.loc.size);
        let page: Uint8Array;
        try {
          page = decodePageFrame(frame, { pgno: item.pgno, pageSize });
        } catch (err) {
          throw new ReplicaError(
            "REPLICA_PAGE_INVALID",
            `page ${item.pgno} in ${item.loc.file.key} at ${item.loc.offset} failed validation`,
            { cause: err },
          );
        }
        // Keep the cache from pinning a whole coalesced response through a view.
        if (page.byteLength !== page.buffer.byteLength) page = page.slice();
        this.#cache.set(item.loc, page);
        try {
          this.#onFetched?.(item, page);
        } catch {
          // A prefetch hint is never worth failing a read.
        }
        return page;
      });
      // Rejections are observed by whoever awaits; background ones must not surface as unhandled.
      promise.catch(() => {});
      const entry: Inflight = { promise, started: false };
      entries.push(entry);
      const cleanup = () => {
        if (this.#inflight.get(k) === entry) this.#inflight.delete(k);
      };
      promise.then(cleanup, cleanup);
      this.#inflight.set(k, entry);
    }
  }

  async #read(run: Run): Promise<Uint8Array> {
    const length = run.end - run.start;
    const res = await this.#store.get(run.key, { range: { offset: run.start, length } });
    if (res.notModified || res.offset !== run.start || res.body.byteLength !== length) {
      throw new ReplicaError(
        "REPLICA_PAGE_INVALID",
        `short or misplaced range read of ${run.key} (${run.start}+${length})`,
      );
    }
    return res.body;
  }
}
