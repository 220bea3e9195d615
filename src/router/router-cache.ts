/**
 * Drizzle's query cache behind a router. Drizzle stores whatever a select
 * returned; a replica may answer before it holds a write that already
 * invalidated the cache, and that stale answer would then be served, even
 * to the session that wrote (breaking read-your-writes). So the router marks
 * answers of replicas that lack some write made through it, and this wrapper
 * does not store them (they are still returned to the caller).
 */
import type { Cache, MutationOption } from "drizzle-orm/cache/core";
import type { CacheConfig } from "drizzle-orm/cache/core/types";
import { drizzleRuntime } from "./drizzle-runtime.js";

/** The user's cache, minus answers older than a write. */
export interface RouterCache extends Cache {
  /** Marks a sqlite-proxy result as too old to store; returns it. */
  uncacheable<T extends object>(result: T): T;
  /** A write is about to run on the primary (answers read before it may not be stored after it). */
  writeIssued(): void;
  /** Writes issued so far: taken when a replica read starts. */
  readonly writes: number;
  /**
   * Marks a replica's answer as read from `writes` = `start` on: stored only
   * if no write was issued since (the read may have straddled it, and Drizzle
   * stores an answer after the write's invalidation ran); returns it.
   */
  readSince<T extends object>(result: T, start: number): T;
}

let routerCacheClass: (new (inner: Cache) => RouterCache) | undefined;

/** Wraps the user's cache (the class extends drizzle's `Cache`, loaded on first use). */
export function routerCache(inner: Cache): RouterCache {
  routerCacheClass ??= defineRouterCache(drizzleRuntime().Cache);
  return new routerCacheClass(inner);
}

function defineRouterCache(Base: typeof Cache): new (inner: Cache) => RouterCache {
  return class extends Base implements RouterCache {
    readonly #inner: Cache;
    readonly #uncacheable = new WeakSet<object>();
    readonly #readSince = new WeakMap<object, number>();
    #writes = 0;

    constructor(inner: Cache) {
      super();
      this.#inner = inner;
    }

    uncacheable<T extends object>(result: T): T {
      this.#uncacheable.add(result);
      return result;
    }

    writeIssued(): void {
      this.#writes++;
    }

    get writes(): number {
      return this.#writes;
    }

    readSince<T extends object>(result: T, start: number): T {
      this.#readSince.set(result, start);
      return result;
    }

    override strategy(): "explicit" | "all" {
      return this.#inner.strategy();
    }

    override get(
      key: string,
      tables: string[],
      isTag: boolean,
      isAutoInvalidate?: boolean,
    ): Promise<unknown[] | undefined> {
      return this.#inner.get(key, tables, isTag, isAutoInvalidate);
    }

    override async put(
      key: string,
      response: unknown,
      tables: string[],
      isTag: boolean,
      config?: CacheConfig,
    ): Promise<void> {
      if (typeof response === "object" && response !== null) {
        if (this.#uncacheable.has(response)) return;
        const start = this.#readSince.get(response);
        if (start !== undefined && start !== this.#writes) return;
      }
      return this.#inner.put(key, response, tables, isTag, config);
    }

    override onMutate(params: MutationOption): Promise<void> {
      return this.#inner.onMutate(params);
    }
  };
}
