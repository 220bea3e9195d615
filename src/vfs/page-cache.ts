/**
 * Decoded pages of a replica, bounded in bytes and shared by all its
 * connections (and shareable by several replicas of one store). Entries are
 * keyed by where the image lives (the immutable LTX object + the frame's byte
 * range), never by page number: an entry stays valid across versions and
 * needs no invalidation when the replica advances.
 */
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

/**
 * Share of the cache B-tree interior pages may keep from eviction. They are
 * few (under 1% of a database), every lookup descends through them, and bulk
 * fetching plans scans from them: pushed out by scans through a small cache,
 * later scans went page by page.
 */
const INTERIOR_SHARE = 1 / 4;

/**
 * A B-tree interior page (index 0x02, table 0x05)? Page 1 (header first)
 * never counts; an overflow, freelist or pointer-map page whose first byte
 * happens to match does (kept a little longer, within the share: harmless).
 */
function isInterior(page: Uint8Array): boolean {
  const type = page[0];
  return type === 0x02 || type === 0x05;
}

/**
 * Bytes of one slab of page slots. Pages live in a few long-lived slabs
 * rather than one allocation each: thousands of 4 KiB buffers coming and
 * going between transient network and decode buffers fragmented the native
 * heap (in Node, glibc kept 2-3x the cache resident after a scan-heavy
 * workload). Slots are recycled on eviction, so a full cache allocates
 * nothing more.
 */
const SLAB_BYTES = 1 << 20;

/** A cached image and where it lives. */
interface Entry {
  /** Its object's identity (`objectId`, else key), to leave it on eviction. */
  id: string;
  offset: number;
  size: number;
  /** The image: a slot of a slab, or its own copy when its size is not the slot size. */
  page: Uint8Array;
  interior: boolean;
}

/**
 * An LRU of decoded pages bounded by their total size. Found by object, then
 * frame offset (no key string is built: a B-tree map of a version peeks at
 * every page, tens of thousands on an open); recency is a Set's insertion
 * order (a use moves an entry to the end, eviction takes from the front: a
 * dependency-free LRU, every Worker bundle carries this file). B-tree
 * interior pages, up to {@link INTERIOR_SHARE} of the bound, are passed over
 * by eviction (moved to the end instead), so scans through the cache do not
 * push out the pages that find everything else.
 *
 * Stored images are copies held in slots that are reused once evicted: an
 * image `get` or `peek` returns is valid until the next store, so callers
 * copy it (or use it) before anything else can run.
 */
export class PageCache {
  /** Object identity (`objectId`, else key) -> frame offset -> entry. */
  readonly #objects = new Map<string, Map<number, Entry>>();
  readonly #lru = new Set<Entry>();
  readonly #maxBytes: number;
  readonly #interiorMax: number;
  #bytes = 0;
  /** Bytes of interior pages held. */
  #interiorBytes = 0;
  #hits = 0;
  #misses = 0;
  /** Bytes per slot: the size of the first image stored (a database's page size). */
  #slotSize = 0;
  /** Slots allocated so far, never more than the bound holds. */
  #slots = 0;
  /** Slots of evicted images, ready for reuse. */
  #free: Uint8Array[] = [];

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#interiorMax = maxBytes * INTERIOR_SHARE;
  }

  /** The cached image at `loc`, counting a hit or a miss. */
  get(loc: PageLocation): Uint8Array | undefined {
    const entry = this.#find(loc);
    if (entry) {
      this.#hits++;
      this.#lru.delete(entry);
      this.#lru.add(entry);
      return entry.page;
    }
    this.#misses++;
    return undefined;
  }

  /** The cached image without touching statistics or recency (for prefetch planning). */
  peek(loc: PageLocation): Uint8Array | undefined {
    return this.#find(loc)?.page;
  }

  /** Whether `loc` is cached, without touching statistics or recency. */
  has(loc: PageLocation): boolean {
    return this.#find(loc) !== undefined;
  }

  /** Stores a decoded image. Pages larger than the whole cache are not kept. */
  set(loc: PageLocation, page: Uint8Array): void {
    if (page.byteLength > this.#maxBytes) return;
    this.#put(loc, page);
  }

  /**
   * Stores a page `decode` writes into the slot it is given (`size` bytes),
   * only if that leaves `reserve` bytes free (pages a range GET brought
   * along: welcome, but never at the expense of pages in use or of the
   * wanted pages still arriving); no page-sized buffer of its own. When
   * `decode` throws, nothing is stored and the error propagates.
   */
  fillIfRoom(
    loc: PageLocation,
    size: number,
    reserve: number,
    decode: (slot: Uint8Array) => Uint8Array,
  ): boolean {
    if (this.#bytes + size > this.#maxBytes - reserve) return false;
    if (this.#find(loc)) return true;
    // Another frame at this offset (an object rewritten under its key): replaced.
    const old = this.#objects.get(loc.file.objectId ?? loc.file.key)?.get(loc.offset);
    if (old) this.#remove(old);
    if (this.#slotSize === 0) this.#slotSize = size;
    if (size !== this.#slotSize || size === 0) {
      this.#put(loc, decode(new Uint8Array(size)));
      return true;
    }
    const slot = this.#slot();
    try {
      const page = decode(slot);
      if (page !== slot) slot.set(page);
    } catch (err) {
      this.#free.push(slot);
      throw err;
    }
    this.#insert(loc, slot);
    return true;
  }

  /** Room left before the cache starts evicting, in bytes. */
  get free(): number {
    return this.#maxBytes - this.#bytes;
  }

  /** The cache's bound in bytes. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Drops everything, slabs included (e.g. on close). */
  clear(): void {
    this.#objects.clear();
    this.#lru.clear();
    this.#bytes = 0;
    this.#interiorBytes = 0;
    this.#free = [];
    this.#slots = 0;
    this.#slotSize = 0;
  }

  /** Current figures. */
  stats(): PageCacheStats {
    return {
      entries: this.#lru.size,
      bytes: this.#bytes,
      maxBytes: this.#maxBytes,
      hits: this.#hits,
      misses: this.#misses,
    };
  }

  /** The entry of exactly this frame (same object, offset and size). */
  #find(loc: PageLocation): Entry | undefined {
    const entry = this.#objects.get(loc.file.objectId ?? loc.file.key)?.get(loc.offset);
    return entry && entry.size === loc.size ? entry : undefined;
  }

  /** Inserts (or refreshes) a copy of `page` at `loc` as the most recent page, evicting the least recent to make room. */
  #put(loc: PageLocation, page: Uint8Array): void {
    const old = this.#objects.get(loc.file.objectId ?? loc.file.key)?.get(loc.offset);
    if (old) this.#remove(old);
    this.#makeRoom(size(page));
    this.#insert(loc, this.#copy(page));
  }

  /** Adds `page` (already a stored copy; room made) as the most recent page. */
  #insert(loc: PageLocation, page: Uint8Array): void {
    const id = loc.file.objectId ?? loc.file.key;
    let frames = this.#objects.get(id);
    if (!frames) {
      frames = new Map();
      this.#objects.set(id, frames);
    }
    const entry: Entry = {
      id,
      offset: loc.offset,
      size: loc.size,
      page,
      interior: isInterior(page),
    };
    frames.set(loc.offset, entry);
    this.#lru.add(entry);
    this.#bytes += size(page);
    if (entry.interior) this.#interiorBytes += size(page);
  }

  /** Evicts least recent pages until `need` more bytes fit. */
  #makeRoom(need: number): void {
    // Within their share, interior pages go round again, once each at most:
    // when nothing else is left they are evicted too.
    let rounds = this.#lru.size;
    while (this.#bytes + need > this.#maxBytes) {
      const oldest = this.#lru.values().next();
      if (oldest.done) break;
      const e = oldest.value;
      if (e.interior && this.#interiorBytes <= this.#interiorMax && rounds-- > 0) {
        this.#lru.delete(e);
        this.#lru.add(e);
        continue;
      }
      this.#remove(e);
    }
  }

  /** `page` copied into a free slot, or into its own buffer when its size is not the slot size. */
  #copy(page: Uint8Array): Uint8Array {
    if (this.#slotSize === 0) this.#slotSize = page.byteLength;
    if (page.byteLength !== this.#slotSize || page.byteLength === 0) return page.slice();
    const slot = this.#slot();
    slot.set(page);
    return slot;
  }

  /** A free slot: an evicted page's, else one of a new slab (room was made, so within the bound). */
  #slot(): Uint8Array {
    const free = this.#free.pop();
    if (free) return free;
    const slotSize = this.#slotSize;
    const room = Math.floor(this.#maxBytes / slotSize) - this.#slots;
    const count = Math.max(1, Math.min(Math.floor(SLAB_BYTES / slotSize), room));
    const slab = new ArrayBuffer(count * slotSize);
    for (let i = count - 1; i > 0; i--) {
      this.#free.push(new Uint8Array(slab, i * slotSize, slotSize));
    }
    this.#slots += count;
    return new Uint8Array(slab, 0, slotSize);
  }

  #remove(entry: Entry): void {
    this.#lru.delete(entry);
    const frames = this.#objects.get(entry.id);
    if (frames?.get(entry.offset) === entry) {
      frames.delete(entry.offset);
      if (frames.size === 0) this.#objects.delete(entry.id);
    }
    this.#bytes -= size(entry.page);
    if (entry.interior) this.#interiorBytes -= size(entry.page);
    if (entry.page.byteLength === this.#slotSize && entry.page.byteLength > 0)
      this.#free.push(entry.page);
  }
}

/** Bytes a page counts for (an empty one still takes an entry). */
function size(page: Uint8Array): number {
  return Math.max(1, page.byteLength);
}
