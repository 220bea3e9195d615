/**
 * Decoded pages of a replica, bounded in bytes and shared by all its
 * connections (and shareable by several replicas of one store). Entries are
 * keyed by where the image lives (the immutable LTX object + the frame's byte
 * range), never by page number: an entry stays valid across versions and
 * needs no invalidation when the replica advances.
 */
import { LRUCache } from "lru-cache";
import type { PageLocation } from "./page-index.js";

/** Cache figures for status. */
export interface PageCacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
}

/**
 * The cache key of a page image: the immutable object (its identity, see
 * `PlanFile.objectId`) and the frame's byte range.
 */
export function locationKey(loc: PageLocation): string {
  return `${loc.file.objectId ?? loc.file.key}@${loc.offset}+${loc.size}`;
}

/** An LRU of decoded pages bounded by their total size. */
export class PageCache {
  readonly #lru: LRUCache<string, Uint8Array>;
  readonly #maxBytes: number;
  #hits = 0;
  #misses = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#lru = new LRUCache<string, Uint8Array>({
      maxSize: maxBytes,
      sizeCalculation: (page) => Math.max(1, page.byteLength),
    });
  }

  /** The cached image at `loc`, counting a hit or a miss. */
  get(loc: PageLocation): Uint8Array | undefined {
    const page = this.#lru.get(locationKey(loc));
    if (page) this.#hits++;
    else this.#misses++;
    return page;
  }

  /** The cached image without touching statistics or recency (for prefetch planning). */
  peek(loc: PageLocation): Uint8Array | undefined {
    return this.#lru.peek(locationKey(loc));
  }

  /** Whether `loc` is cached, without touching statistics or recency. */
  has(loc: PageLocation): boolean {
    return this.#lru.has(locationKey(loc));
  }

  /** Stores a decoded image. Pages larger than the whole cache are not kept. */
  set(loc: PageLocation, page: Uint8Array): void {
    if (page.byteLength > this.#maxBytes) return;
    this.#lru.set(locationKey(loc), page);
  }

  /**
   * Stores `page` only if that leaves `reserve` bytes free (pages a range GET
   * brought along: welcome, but never at the expense of pages in use or of
   * the wanted pages still arriving).
   */
  setIfRoom(loc: PageLocation, page: Uint8Array, reserve = 0): boolean {
    if (this.#lru.calculatedSize + page.byteLength > this.#maxBytes - reserve) return false;
    const key = locationKey(loc);
    if (!this.#lru.has(key)) this.#lru.set(key, page);
    return true;
  }

  /** Room left before the cache starts evicting, in bytes. */
  get free(): number {
    return this.#maxBytes - this.#lru.calculatedSize;
  }

  /** The cache's bound in bytes. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Drops everything (e.g. on close). */
  clear(): void {
    this.#lru.clear();
  }

  /** Current figures. */
  stats(): PageCacheStats {
    return {
      entries: this.#lru.size,
      bytes: this.#lru.calculatedSize,
      maxBytes: this.#maxBytes,
      hits: this.#hits,
      misses: this.#misses,
    };
  }
}
