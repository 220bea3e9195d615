/**
 * The page index of one replica version: for every page of the database, which
 * LTX file holds its newest image and where the frame sits in that file.
 *
 * Built from a plan (snapshot + covering LTX files, contiguous TXIDs) by reading
 * only each file's page index, all files in parallel. Later versions are
 * overlays on an earlier index (a newer file's frames win), flattened into a
 * dense base once there are many; indexes are immutable, so a read
 * transaction pinned to one keeps seeing exactly it.
 */
import pLimit from "p-limit";
import {
  decodeLtxHeader,
  LTX_HEADER_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  type LtxHeader,
  lockPgno,
  type PageIndexEntries,
  type RangeReader,
  readLtxPageIndex,
  storeRangeReader,
} from "../format/index.js";
import { growthJustified } from "../format/page-growth.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { PersistentCache } from "./persistent-cache.js";
import { ReplicaError } from "./replica-error.js";

/** One LTX file of a plan, as named by the head object or a listing. */
export interface PlanFile {
  level: number;
  minTXID: number;
  maxTXID: number;
  key: string;
  /** Object size when known (listing / head). */
  size?: number;
  /** Page-index section location (head object): lets the index be fetched with one exact read. */
  indexOffset?: number;
  indexSize?: number;
  /** Commit time of `maxTXID` (ms) when known. */
  timestamp?: number;
  /**
   * Identity of the object's bytes (key, size, file checksum from its
   * trailer), set once its page index was read: page images are cached under
   * it, so two objects that happen to share a key never share cache entries.
   */
  objectId?: string;
}

/** A plan file whose page index has been read. */
export interface LoadedFile {
  file: PlanFile;
  /** Size of the object as observed when reading its index. */
  fileSize: number;
  /** The file's page index, compact (no object per page). */
  entries: PageIndexEntries;
  /** The LTX header, when the read covered it or it was fetched. */
  header?: LtxHeader;
  /** The whole file, when it was read whole (its frames can seed the page cache). */
  body?: Uint8Array;
}

/** Where one page image lives. */
export interface PageLocation {
  file: PlanFile;
  /** Offset of the whole frame (page header included) in the file. */
  offset: number;
  /** Length of the whole frame. */
  size: number;
}

/** Identity of the version an index describes. */
export interface VersionMeta {
  txid: number;
  /** Database size in pages at `txid` (pages above it are dropped). */
  commit: number;
  pageSize: number;
  /** Commit time of `txid` (ms since epoch), when known. */
  timestamp: number | undefined;
}

/** SQLite's largest page count: `commit` beyond it cannot be a database. */
export const MAX_PAGE_COUNT = 4294967294;

/** Overlays kept before they are flattened into a new dense base. */
const MAX_OVERLAYS = 8;

/** A {@link PageLocation} filled in place (walks over every page allocate nothing per page). */
export interface LocationSlot {
  file: PlanFile | undefined;
  offset: number;
  size: number;
}

interface Layer {
  readonly commit: number;
  /** Fills `out` with where `pgno` lives; false when this layer does not hold it. */
  findInto(pgno: number, out: LocationSlot): boolean;
}

/** Every page of a version in arrays indexed by page number. */
class DenseLayer implements Layer {
  constructor(
    readonly commit: number,
    readonly files: PlanFile[],
    /** File slot + 1 per pgno (0 = absent). */
    readonly slots: Uint32Array,
    readonly offsets: Float64Array,
    readonly sizes: Uint32Array,
  ) {}

  findInto(pgno: number, out: LocationSlot): boolean {
    if (pgno > this.commit) return false;
    // Beyond the arrays (sized by the largest page present): undefined, absent.
    const slot = this.slots[pgno];
    if (!slot) return false;
    out.file = this.files[slot - 1]!;
    out.offset = this.offsets[pgno]!;
    out.size = this.sizes[pgno]!;
    return true;
  }
}

/** The pages changed by one update, sorted by page number. */
class SparseLayer implements Layer {
  constructor(
    readonly commit: number,
    readonly files: PlanFile[],
    readonly pgnos: Uint32Array,
    readonly slots: Uint32Array,
    readonly offsets: Float64Array,
    readonly sizes: Uint32Array,
  ) {}

  findInto(pgno: number, out: LocationSlot): boolean {
    let lo = 0;
    let hi = this.pgnos.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.pgnos[mid]!;
      if (v === pgno) {
        out.file = this.files[this.slots[mid]!]!;
        out.offset = this.offsets[mid]!;
        out.size = this.sizes[mid]!;
        return true;
      }
      if (v < pgno) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}

/** Checks one file's index entries against the file before trusting them. */
function checkEntries(loaded: LoadedFile, pageSize: number): void {
  const lock = lockPgno(pageSize);
  const limit = loaded.fileSize - LTX_TRAILER_SIZE;
  const entries = loaded.entries;
  for (let i = 0; i < entries.count; i++) {
    const pgno = entries.pgno(i);
    const offset = entries.offset(i);
    const size = entries.size(i);
    if (
      !Number.isSafeInteger(pgno) ||
      pgno < 1 ||
      pgno > 0xffffffff ||
      pgno === lock ||
      offset < LTX_HEADER_SIZE ||
      size < LTX_PAGE_HEADER_SIZE ||
      offset + size > limit
    ) {
      throw new ReplicaError(
        "REPLICA_INDEX_INVALID",
        `page index of ${loaded.file.key} names an impossible frame (page ${pgno} at ${offset}+${size})`,
      );
    }
  }
}

/** Refuses a page count SQLite cannot have (a damaged head or header). */
function checkCommitLimit(meta: VersionMeta): void {
  const commit = meta.commit;
  if (!Number.isSafeInteger(commit) || commit < 0 || commit > MAX_PAGE_COUNT) {
    throw new ReplicaError(
      "REPLICA_INDEX_INVALID",
      `TXID ${meta.txid} claims ${commit} pages; SQLite allows at most ${MAX_PAGE_COUNT}`,
    );
  }
}

/**
 * Checks a full plan's `meta.commit` against `maxPgno`, the largest page its
 * files hold at or below it: a full plan (from a snapshot) holds every page
 * of the database, the lock page aside, so a larger claim is a damaged head
 * or header, refused before anything is sized by it.
 */
function checkCommit(meta: VersionMeta, maxPgno: number): void {
  checkCommitLimit(meta);
  const commit = meta.commit;
  const lock = lockPgno(meta.pageSize);
  const held = maxPgno + 1 === lock ? lock : maxPgno;
  if (commit > held) {
    throw new ReplicaError(
      "REPLICA_INDEX_INVALID",
      `TXID ${meta.txid} claims ${commit} pages but its files hold pages up to ${maxPgno}`,
    );
  }
}

/**
 * Refuses a page count the files cannot justify (see `page-growth.ts`):
 * growing from `from` pages to `meta.commit` with at most `written` pages
 * written above `from`. Checked before anything is sized by the claim.
 */
function checkGrowth(meta: VersionMeta, from: number, written: number): void {
  if (!growthJustified(from, meta.commit, written)) {
    throw new ReplicaError(
      "REPLICA_INDEX_INVALID",
      `TXID ${meta.txid} claims ${meta.commit} pages but its files write only ${written} pages above ${from}`,
    );
  }
}

/** Page entries above `from` and at most `commit` in `files` (an upper bound of the distinct pages). */
function entriesAbove(files: LoadedFile[], from: number, commit: number): number {
  let n = 0;
  for (const { entries } of files) {
    for (let i = 0; i < entries.count; i++) {
      const pgno = entries.pgno(i);
      if (pgno > from && pgno <= commit) n++;
    }
  }
  return n;
}

/** Largest page number at or below `commit` that `files` name (0 when none). */
function maxPgnoOf(files: LoadedFile[], commit: number): number {
  let max = 0;
  for (const { entries } of files) {
    for (let i = 0; i < entries.count; i++) {
      const pgno = entries.pgno(i);
      if (pgno > max && pgno <= commit) max = pgno;
    }
  }
  return max;
}

/** An immutable page index of one replica version. */
export class PageIndex {
  readonly txid: number;
  readonly commit: number;
  readonly pageSize: number;
  readonly timestamp: number | undefined;
  readonly #base: DenseLayer;
  readonly #overlays: SparseLayer[];
  /** Largest page number present in this version (every index array is sized by it). */
  readonly #maxPgno: number;

  private constructor(
    meta: VersionMeta,
    base: DenseLayer,
    overlays: SparseLayer[],
    maxPgno: number,
  ) {
    this.#maxPgno = maxPgno;
    this.txid = meta.txid;
    this.commit = meta.commit;
    this.pageSize = meta.pageSize;
    this.timestamp = meta.timestamp;
    this.#base = base;
    this.#overlays = overlays;
  }

  /**
   * Builds an index from a full plan, oldest file first (the first one a
   * snapshot). Later files' frames replace earlier ones.
   */
  static fromFiles(files: LoadedFile[], meta: VersionMeta): PageIndex {
    for (const loaded of files) checkEntries(loaded, meta.pageSize);
    const commit = meta.commit;
    // Sized by what the files hold, never by the (untrusted) commit claim.
    const maxPgno = maxPgnoOf(files, commit);
    checkCommit(meta, maxPgno);
    checkGrowth(meta, 0, entriesAbove(files, 0, commit));
    const slots = new Uint32Array(maxPgno + 1);
    const offsets = new Float64Array(maxPgno + 1);
    const sizes = new Uint32Array(maxPgno + 1);
    const planFiles: PlanFile[] = [];
    for (const loaded of files) {
      planFiles.push(loaded.file);
      const slot = planFiles.length;
      const entries = loaded.entries;
      for (let i = 0; i < entries.count; i++) {
        const pgno = entries.pgno(i);
        if (pgno > commit) continue;
        slots[pgno] = slot;
        offsets[pgno] = entries.offset(i);
        sizes[pgno] = entries.size(i);
      }
    }
    return new PageIndex(
      meta,
      new DenseLayer(commit, planFiles, slots, offsets, sizes),
      [],
      maxPgno,
    );
  }

  /**
   * A newer version: this index with `files` (contiguous TXIDs following this
   * version, oldest first) applied on top. A file may start before this
   * version's TXID (a compaction re-covering applied transactions): its frames
   * are the newest images of the pages it names, so applying it is still exact.
   */
  extend(files: LoadedFile[], meta: VersionMeta): PageIndex {
    if (meta.pageSize !== this.pageSize) {
      throw new ReplicaError(
        "REPLICA_INDEX_INVALID",
        `page size changed from ${this.pageSize} to ${meta.pageSize} without a snapshot`,
      );
    }
    for (const loaded of files) checkEntries(loaded, meta.pageSize);
    // Pages this version holds: the older ones it kept plus the ones the files name.
    checkCommitLimit(meta);
    checkGrowth(meta, this.commit, entriesAbove(files, this.commit, meta.commit));
    // Growth may leave pages absent until written: no claim about coverage here,
    // but the arrays of a later flattening are still sized by the pages present.
    const maxPgno = Math.max(Math.min(this.#maxPgno, meta.commit), maxPgnoOf(files, meta.commit));
    // pgno -> slot * 2^32 + entry number: the newest frame, no object per page.
    const newest = new Map<number, number>();
    const planFiles: PlanFile[] = [];
    for (const loaded of files) {
      planFiles.push(loaded.file);
      const slot = planFiles.length - 1;
      const entries = loaded.entries;
      for (let i = 0; i < entries.count; i++) {
        const pgno = entries.pgno(i);
        if (pgno > meta.commit) continue;
        newest.set(pgno, slot * 0x100000000 + i);
      }
    }
    const pgnos = Uint32Array.from(newest.keys()).sort();
    const slots = new Uint32Array(pgnos.length);
    const offsets = new Float64Array(pgnos.length);
    const sizes = new Uint32Array(pgnos.length);
    for (let i = 0; i < pgnos.length; i++) {
      const at = newest.get(pgnos[i]!)!;
      const slot = Math.floor(at / 0x100000000);
      const entry = at % 0x100000000;
      const entries = files[slot]!.entries;
      slots[i] = slot;
      offsets[i] = entries.offset(entry);
      sizes[i] = entries.size(entry);
    }
    const layer = new SparseLayer(meta.commit, planFiles, pgnos, slots, offsets, sizes);
    const next = new PageIndex(meta, this.#base, [...this.#overlays, layer], maxPgno);
    return next.#overlays.length > MAX_OVERLAYS ? next.#flatten() : next;
  }

  /** Where page `pgno` lives in this version; `undefined` above `commit` or when absent. */
  lookup(pgno: number): PageLocation | undefined {
    const out: LocationSlot = { file: undefined, offset: 0, size: 0 };
    return this.#locate(pgno, out) ? (out as PageLocation) : undefined;
  }

  /**
   * {@link lookup} into `out` (reused by the caller: walks over every page
   * allocate nothing); false when the page is absent (`out` then unspecified).
   */
  lookupInto(pgno: number, out: LocationSlot): boolean {
    return this.#locate(pgno, out);
  }

  /**
   * Calls `visit` for every page present, in page order, without allocating
   * per page (a version may have millions).
   */
  forEachPage(visit: (pgno: number, file: PlanFile, offset: number, size: number) => void): void {
    const out: LocationSlot = { file: undefined, offset: 0, size: 0 };
    const last = Math.min(this.commit, this.#maxPgno);
    for (let pgno = 1; pgno <= last; pgno++) {
      if (this.#locate(pgno, out)) visit(pgno, out.file!, out.offset, out.size);
    }
  }

  #locate(pgno: number, out: LocationSlot): boolean {
    if (pgno < 1 || pgno > this.commit) return false;
    for (let i = this.#overlays.length - 1; i >= 0; i--) {
      const layer = this.#overlays[i]!;
      if (layer.findInto(pgno, out)) return true;
      // Truncated by that update: any older image is gone.
      if (pgno > layer.commit) return false;
    }
    return this.#base.findInto(pgno, out);
  }

  /** Number of distinct files this index refers to (base + overlays, duplicates possible). */
  get layerCount(): number {
    return this.#overlays.length + 1;
  }

  #flatten(): PageIndex {
    const commit = this.commit;
    const maxPgno = this.#maxPgno;
    const slots = new Uint32Array(maxPgno + 1);
    const offsets = new Float64Array(maxPgno + 1);
    const sizes = new Uint32Array(maxPgno + 1);
    const files: PlanFile[] = [];
    const slotOf = new Map<PlanFile, number>();
    this.forEachPage((pgno, file, offset, size) => {
      let slot = slotOf.get(file);
      if (slot === undefined) {
        files.push(file);
        slot = files.length;
        slotOf.set(file, slot);
      }
      slots[pgno] = slot;
      offsets[pgno] = offset;
      sizes[pgno] = size;
    });
    const meta: VersionMeta = {
      txid: this.txid,
      commit,
      pageSize: this.pageSize,
      timestamp: this.timestamp,
    };
    return new PageIndex(meta, new DenseLayer(commit, files, slots, offsets, sizes), [], maxPgno);
  }
}

/** Options of {@link loadPageIndexes}. */
export interface LoadIndexOptions {
  /** Most index reads in flight at once. */
  concurrency?: number;
  /** Also read the LTX header of the last file (when the index read will not cover it). */
  needLastHeader?: boolean;
  /** Keys of files to read whole (one GET) instead of just their index. */
  wholeFiles?: ReadonlySet<string>;
  signal?: AbortSignal;
  /**
   * A persistent cache for the reads, and the name under which a file's
   * bytes may be cached (`undefined`: not cached, e.g. when nothing proves
   * that the key still names the same bytes).
   */
  persistent?: { cache: PersistentCache; name: (file: PlanFile) => string | undefined };
}

/** The identity of an LTX object's bytes, from its trailer (see {@link PlanFile.objectId}). */
export function objectIdOf(key: string, size: number, fileChecksum: bigint): string {
  return `${key}#${size}#${fileChecksum.toString(16)}`;
}

/** Default suffix read when a file's index location is unknown: most L0 files fit entirely. */
const DEFAULT_SUFFIX_GUESS = 64 * 1024;

/**
 * Reads the page index of every file, all in parallel: one exact read per file
 * when the head object gave the index location, else a suffix read (plus a
 * second one when the index is larger than the guess).
 */
export async function loadPageIndexes(
  store: ObjectStore,
  files: PlanFile[],
  options: LoadIndexOptions = {},
): Promise<LoadedFile[]> {
  const limit = pLimit(options.concurrency ?? 32);
  const lastIndex = files.length - 1;
  const tasks = files.map((file, i) =>
    limit(async (): Promise<LoadedFile> => {
      const cacheName = options.persistent?.name(file);
      const cached =
        cacheName !== undefined && options.persistent
          ? { cache: options.persistent.cache, name: cacheName }
          : undefined;
      if (options.wholeFiles?.has(file.key)) {
        return readWhole(store, file, options.signal, cached);
      }
      const reader = cachedRangeReader(
        storeRangeReader(store, file.key, options.signal ? { signal: options.signal } : {}),
        file.size,
        cached,
      );
      const suffixGuess =
        file.indexSize !== undefined
          ? file.indexSize + LTX_TRAILER_SIZE
          : Math.min(file.size ?? DEFAULT_SUFFIX_GUESS, DEFAULT_SUFFIX_GUESS);
      const wantHeader = options.needLastHeader === true && i === lastIndex;
      const coversHeader = file.size !== undefined && suffixGuess >= file.size;
      // Fetched in parallel with the index, not after it.
      const headerPromise =
        wantHeader && !coversHeader ? readHeader(store, file.key, options.signal) : undefined;
      // Avoid an unhandled rejection if the index read fails first.
      headerPromise?.catch(() => {});
      const result = await readLtxPageIndex(reader, { suffixGuess });
      const header = result.header ?? (headerPromise ? await headerPromise : undefined);
      return {
        file: withObjectId(file, result.fileSize, result.trailer.fileChecksum),
        fileSize: result.fileSize,
        entries: result.entries,
        ...(header ? { header } : {}),
      };
    }),
  );
  return Promise.all(tasks);
}

/** A range reader over bytes already in memory. */
function memoryRangeReader(body: Uint8Array): RangeReader {
  return {
    read: async (range) => {
      const total = body.length;
      if ("suffix" in range) {
        const start = Math.max(0, total - range.suffix);
        return { bytes: body.subarray(start), offset: start, totalSize: total };
      }
      const start = Math.min(range.offset, total);
      const end = Math.min(total, start + range.length);
      return { bytes: body.subarray(start, end), offset: start, totalSize: total };
    },
  };
}

function withObjectId(file: PlanFile, size: number, fileChecksum: bigint): PlanFile {
  return { ...file, objectId: objectIdOf(file.key, size, fileChecksum) };
}

/**
 * `inner`, reading through a persistent cache under `cached.name` when given:
 * ranges it holds are served locally, others are read and stored. Suffix
 * reads become offset reads when the size is known.
 */
function cachedRangeReader(
  inner: RangeReader,
  size: number | undefined,
  cached: { cache: PersistentCache; name: string } | undefined,
): RangeReader {
  if (!cached || size === undefined) return inner;
  return {
    async read(range) {
      const start = "suffix" in range ? Math.max(0, size - range.suffix) : range.offset;
      const end = "suffix" in range ? size : Math.min(size, range.offset + range.length);
      if (end > start) {
        const hit = await cached.cache.readWhole(cached.name, start, end - start);
        if (hit) return { bytes: hit, offset: start, totalSize: size };
      }
      const res = await inner.read(range);
      if (res.totalSize === size && res.bytes.length > 0) {
        void cached.cache.write(cached.name, res.offset, res.bytes);
      }
      return res;
    },
  };
}

/** One GET of the whole file (or the persistent cache); its index is parsed from the bytes in memory. */
async function readWhole(
  store: ObjectStore,
  file: PlanFile,
  signal: AbortSignal | undefined,
  cached: { cache: PersistentCache; name: string } | undefined,
): Promise<LoadedFile> {
  let body =
    cached && file.size !== undefined
      ? await cached.cache.readWhole(cached.name, 0, file.size)
      : undefined;
  if (!body) {
    const res = await store.get(file.key, signal ? { signal } : {});
    if (res.notModified) {
      throw new ReplicaError(
        "REPLICA_INDEX_INVALID",
        `unexpected not-modified reading ${file.key}`,
      );
    }
    body = res.body;
    if (cached && body.length === file.size) void cached.cache.write(cached.name, 0, body);
  }
  const result = await readLtxPageIndex(memoryRangeReader(body), { suffixGuess: body.length });
  return {
    file: withObjectId(file, result.fileSize, result.trailer.fileChecksum),
    fileSize: result.fileSize,
    entries: result.entries,
    ...(result.header ? { header: result.header } : {}),
    body,
  };
}

async function readHeader(
  store: ObjectStore,
  key: string,
  signal: AbortSignal | undefined,
): Promise<LtxHeader> {
  const res = await store.get(key, {
    range: { offset: 0, length: LTX_HEADER_SIZE },
    ...(signal ? { signal } : {}),
  });
  if (res.notModified) {
    throw new ReplicaError("REPLICA_INDEX_INVALID", `unexpected not-modified reading ${key}`);
  }
  return decodeLtxHeader(res.body);
}
