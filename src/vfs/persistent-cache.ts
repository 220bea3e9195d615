/**
 * The persistent page cache: byte ranges of immutable objects (LTX files,
 * skeletons), kept in storage that outlives the process (a directory in Node,
 * the Cache API in Workers) so a rerun or the next invocation reads them
 * locally instead of from S3.
 *
 * Entries are keyed by the object's identity (store location, key, size and
 * the LTX file checksum, see `objectIdOf`) and a byte range: what an entry
 * holds can never change, so it never needs invalidation. Each object is cut
 * into fixed, aligned blocks; an entry holds the parts of one block that were
 * fetched, each part with its own checksum. A part that fails its checksum
 * (torn write, bit rot, tampering) is dropped and read from storage again.
 * Backends only store opaque entries by key; everything else (layout,
 * checksums, merging) lives here, so every backend behaves the same.
 * Reader-safe: no `node:` imports.
 */
import { crc64 } from "../format/index.js";
import { xxh32 } from "../format/xxh32.js";

/** Where a persistent cache keeps its entries: opaque bytes by key. */
export interface PersistentCacheBackend {
  /** The entry stored under `key`, or `undefined`. Never throws for a missing entry. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores `value` under `key`, atomically (a reader sees the old or the new entry, never a mix). */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Removes `key` (a corrupt entry). */
  delete(key: string): Promise<void>;
  /** Releases resources (optional). */
  close?(): Promise<void>;
  /** Backend-specific figures merged into the cache's stats (optional). */
  stats?(): { bytes?: number; maxBytes?: number; evictions?: number };
}

/** Figures of a persistent cache, for `status()`. */
export interface PersistentCacheStats {
  /** Ranges served from the cache. */
  hits: number;
  /** Lookups that found nothing usable. */
  misses: number;
  /** Bytes served from the cache. */
  bytesRead: number;
  /** Bytes written to the cache. */
  bytesWritten: number;
  /** Parts dropped because their checksum did not match (read from storage again). */
  corrupt: number;
  /** Reads or writes of the backend that failed (the cache then acts as a miss). */
  errors: number;
  /** Bytes the backend holds, when it knows. */
  bytes?: number;
  /** The backend's bound, when it has one. */
  maxBytes?: number;
  /** Entries the backend evicted to stay within its bound. */
  evictions?: number;
}

/** A piece of an object found in the cache. */
export interface CachedPiece {
  /** Offset within the object. */
  offset: number;
  bytes: Uint8Array;
}

/** Default block size: large enough that a hydrated database is a few hundred entries. */
export const DEFAULT_BLOCK_SIZE = 256 * 1024;

/** Decoded blocks kept in memory, at most (bytes). */
const MEMO_BYTES = 16 * 1024 * 1024;

const MAGIC = 0x50434231; // "PCB1"
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Part {
  /** Offset within the block. */
  start: number;
  bytes: Uint8Array;
}

interface Block {
  parts: Part[];
  size: number;
}

function hex64(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/**
 * A byte-range cache of immutable objects over a {@link PersistentCacheBackend}.
 * Shareable by every replica of a process; safe with several processes on one
 * backend (entries are replaced atomically; a lost merge only costs a refetch).
 */
export class PersistentCache {
  readonly #backend: PersistentCacheBackend;
  readonly #blockSize: number;
  /** Verified blocks by entry key, least recently used first. */
  readonly #memo = new Map<string, Block>();
  #memoBytes = 0;
  /** Pending writes per entry key, so this process never loses its own merges. */
  readonly #writes = new Map<string, Promise<void>>();
  readonly #stats: PersistentCacheStats = {
    hits: 0,
    misses: 0,
    bytesRead: 0,
    bytesWritten: 0,
    corrupt: 0,
    errors: 0,
  };

  constructor(backend: PersistentCacheBackend, options: { blockSize?: number } = {}) {
    this.#backend = backend;
    this.#blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  }

  /** Size of the aligned blocks objects are cut into. */
  get blockSize(): number {
    return this.#blockSize;
  }

  /**
   * The cached pieces of `[offset, offset + length)` of `object`, in order and
   * disjoint (possibly none). Never throws: a failing backend is a miss.
   */
  async read(object: string, offset: number, length: number): Promise<CachedPiece[]> {
    const end = offset + length;
    const first = Math.floor(offset / this.#blockSize);
    const last = Math.floor((end - 1) / this.#blockSize);
    const blocks = await Promise.all(
      Array.from({ length: last - first + 1 }, (_, i) => this.#block(object, first + i)),
    );
    const pieces: CachedPiece[] = [];
    blocks.forEach((block, i) => {
      if (!block) return;
      const base = (first + i) * this.#blockSize;
      for (const p of block.parts) {
        const s = Math.max(offset, base + p.start);
        const e = Math.min(end, base + p.start + p.bytes.length);
        if (s >= e) continue;
        const bytes = p.bytes.subarray(s - base - p.start, e - base - p.start);
        const prev = pieces[pieces.length - 1];
        if (prev && prev.offset + prev.bytes.length === s) {
          // Contiguous across a block boundary: one piece.
          const joined = new Uint8Array(prev.bytes.length + bytes.length);
          joined.set(prev.bytes);
          joined.set(bytes, prev.bytes.length);
          prev.bytes = joined;
        } else pieces.push({ offset: s, bytes });
      }
    });
    const got = pieces.reduce((n, p) => n + p.bytes.length, 0);
    if (got === length) this.#stats.hits++;
    else this.#stats.misses++;
    this.#stats.bytesRead += got;
    return pieces;
  }

  /**
   * The whole of `[offset, offset + length)` when cached, else `undefined`.
   */
  async readWhole(object: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    const pieces = await this.read(object, offset, length);
    const only = pieces[0];
    return pieces.length === 1 && only && only.offset === offset && only.bytes.length === length
      ? only.bytes
      : undefined;
  }

  /**
   * Stores `bytes`, read from `object` at `offset`. Resolves once written;
   * never rejects (a failed write only means a later miss).
   */
  async write(
    object: string,
    offset: number,
    bytes: Uint8Array,
    options: { replace?: boolean } = {},
  ): Promise<void> {
    if (bytes.length === 0) return;
    const end = offset + bytes.length;
    const first = Math.floor(offset / this.#blockSize);
    const last = Math.floor((end - 1) / this.#blockSize);
    const tasks: Promise<void>[] = [];
    for (let b = first; b <= last; b++) {
      const base = b * this.#blockSize;
      const s = Math.max(offset, base);
      const e = Math.min(end, base + this.#blockSize);
      const part = { start: s - base, bytes: bytes.subarray(s - offset, e - offset) };
      tasks.push(this.#merge(object, b, part, options.replace === true));
    }
    await Promise.all(tasks);
  }

  /** Current figures. */
  stats(): PersistentCacheStats {
    return { ...this.#stats, ...(this.#backend.stats?.() ?? {}) };
  }

  /** Waits for pending writes and closes the backend. */
  async close(): Promise<void> {
    await Promise.all([...this.#writes.values()]);
    await this.#backend.close?.();
  }

  /** Waits for every write started so far (tests, orderly shutdown). */
  async flush(): Promise<void> {
    while (this.#writes.size > 0) await Promise.all([...this.#writes.values()]);
  }

  #key(object: string, block: number): string {
    return `${hex64(crc64(encoder.encode(object)))}-${block}`;
  }

  async #block(object: string, index: number): Promise<Block | undefined> {
    const key = this.#key(object, index);
    const memo = this.#memo.get(key);
    if (memo) {
      this.#memo.delete(key);
      this.#memo.set(key, memo);
      return memo;
    }
    let raw: Uint8Array | undefined;
    try {
      raw = await this.#backend.get(key);
    } catch {
      this.#stats.errors++;
      return undefined;
    }
    if (!raw) return undefined;
    const parsed = parseEntry(raw, object, index, this.#blockSize);
    if (parsed.corrupt > 0) {
      this.#stats.corrupt += parsed.corrupt;
      // Keep the good parts; the bad ones are fetched again and merged back.
      const rewrite = parsed.block.parts.length > 0;
      const op = rewrite
        ? this.#backend.put(key, serializeEntry(object, index, parsed.block.parts))
        : this.#backend.delete(key);
      await op.catch(() => {
        this.#stats.errors++;
      });
    }
    if (parsed.block.parts.length === 0) return undefined;
    this.#remember(key, parsed.block);
    return parsed.block;
  }

  #remember(key: string, block: Block): void {
    const old = this.#memo.get(key);
    if (old) {
      this.#memo.delete(key);
      this.#memoBytes -= old.size;
    }
    this.#memo.set(key, block);
    this.#memoBytes += block.size;
    for (const [k, b] of this.#memo) {
      if (this.#memoBytes <= MEMO_BYTES) break;
      this.#memo.delete(k);
      this.#memoBytes -= b.size;
    }
  }

  #merge(object: string, index: number, part: Part, replace: boolean): Promise<void> {
    const key = this.#key(object, index);
    const prev = this.#writes.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      const existing = await this.#block(object, index);
      const parts = mergeParts(existing?.parts ?? [], part, replace);
      if (existing && parts === existing.parts) return;
      const entry = serializeEntry(object, index, parts);
      try {
        await this.#backend.put(key, entry);
        this.#stats.bytesWritten += part.bytes.length;
        this.#remember(key, { parts, size: parts.reduce((n, p) => n + p.bytes.length, 0) });
      } catch {
        this.#stats.errors++;
      }
    });
    this.#writes.set(key, next);
    next.finally(() => {
      if (this.#writes.get(key) === next) this.#writes.delete(key);
    });
    return next;
  }
}

/**
 * `parts` (disjoint, sorted, non-adjacent) with `add` merged in (its bytes
 * win); the same array when `add` is already covered, unless `replace`.
 */
export function mergeParts(parts: Part[], add: Part, replace = false): Part[] {
  const addEnd = add.start + add.bytes.length;
  for (const p of parts) {
    if (!replace && p.start <= add.start && p.start + p.bytes.length >= addEnd) return parts;
  }
  let start = add.start;
  let end = addEnd;
  const touching: Part[] = [];
  const out: Part[] = [];
  for (const p of parts) {
    const pEnd = p.start + p.bytes.length;
    if (pEnd < start || p.start > end) out.push(p);
    else {
      touching.push(p);
      start = Math.min(start, p.start);
      end = Math.max(end, pEnd);
    }
  }
  const bytes = new Uint8Array(end - start);
  for (const p of touching) bytes.set(p.bytes, p.start - start);
  bytes.set(add.bytes, add.start - start);
  out.push({ start, bytes });
  out.sort((a, b) => a.start - b.start);
  return out;
}

/**
 * Entry layout (big-endian): magic u32, version u8, name length u16, name
 * (the object identity), block index u32, part count u16, then per part:
 * start u32, length u32, xxh32 u32; then the parts' bytes in order.
 */
export function serializeEntry(object: string, index: number, parts: Part[]): Uint8Array {
  const name = encoder.encode(object);
  const head = 4 + 1 + 2 + name.length + 4 + 2 + parts.length * 12;
  const total = head + parts.reduce((n, p) => n + p.bytes.length, 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC);
  v.setUint8(4, 1);
  v.setUint16(5, name.length);
  out.set(name, 7);
  let pos = 7 + name.length;
  v.setUint32(pos, index);
  v.setUint16(pos + 4, parts.length);
  pos += 6;
  let data = head;
  for (const p of parts) {
    v.setUint32(pos, p.start);
    v.setUint32(pos + 4, p.bytes.length);
    v.setUint32(pos + 8, xxh32(p.bytes));
    pos += 12;
    out.set(p.bytes, data);
    data += p.bytes.length;
  }
  return out;
}

/**
 * Parses an entry of `object`'s block `index`. Parts whose checksum or
 * bounds are wrong are counted in `corrupt` and left out; an entry that is
 * not one (wrong magic, name, truncated) counts as one corrupt part.
 */
export function parseEntry(
  raw: Uint8Array,
  object: string,
  index: number,
  blockSize: number,
): { block: Block; corrupt: number } {
  const none = { block: { parts: [], size: 0 }, corrupt: 1 };
  if (raw.length < 13) return none;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (v.getUint32(0) !== MAGIC || v.getUint8(4) !== 1) return none;
  const nameLen = v.getUint16(5);
  if (7 + nameLen + 6 > raw.length) return none;
  if (decoder.decode(raw.subarray(7, 7 + nameLen)) !== object) return none;
  let pos = 7 + nameLen;
  if (v.getUint32(pos) !== index) return none;
  const count = v.getUint16(pos + 4);
  pos += 6;
  let data = pos + count * 12;
  if (data > raw.length) return none;
  const parts: Part[] = [];
  let corrupt = 0;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const start = v.getUint32(pos);
    const length = v.getUint32(pos + 4);
    const sum = v.getUint32(pos + 8);
    pos += 12;
    if (data + length > raw.length || start + length > blockSize) {
      // The rest cannot be located any more.
      corrupt += count - i;
      break;
    }
    const bytes = raw.subarray(data, data + length);
    data += length;
    if (xxh32(bytes) !== sum) {
      corrupt++;
      continue;
    }
    parts.push({ start, bytes });
    size += length;
  }
  return { block: { parts, size }, corrupt };
}
