/**
 * Hydration: the whole database downloaded in the background with large
 * parallel range GETs, into memory, while queries go on (they use pages as
 * they land, and a query needing a page whose range is on its way waits for
 * that range instead of asking again). Once hydrated, every new version
 * costs only its changed pages: those whose location changed (for an
 * incremental update, the pages the new LTX files hold).
 *
 * The image keeps, per page, which frame (object + offset) it was decoded
 * from, and serves a page only to a version that locates the page at that
 * very frame: a transaction still on an older version never sees a newer
 * image, and a version whose page was not refreshed yet reads it as usual.
 */
import pLimit from "p-limit";
import { decodePageFrame } from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { FrameLayout } from "./frame-layout.js";
import type { PageLocation, PlanFile } from "./page-index.js";
import { PieceRanges } from "./piece-ranges.js";
import { type PersistentSource, readRangePieces } from "./range-read.js";

/** Where hydration stands. */
export type HydrationState = "off" | "running" | "done" | "failed";

/** Hydration figures for `status()`. */
export interface HydrationStatus {
  state: HydrationState;
  /** TXID of the version being (or last) hydrated. */
  txid: number | null;
  /** Pages of that version in memory. */
  pages: number;
  /** Pages of that version. */
  totalPages: number;
  /** Bytes read for it so far (storage and persistent cache). */
  bytes: number;
  /** Bytes its hydration reads in all. */
  totalBytes: number;
  /** Why hydration stopped, when it failed (pages are then read on demand). */
  error: string | null;
}

/** Options of {@link Hydrator}. */
export interface HydratorOptions {
  store: ObjectStore;
  persistent?: PersistentSource;
  pageSize: number;
  /** Range GETs in flight (default 8). */
  concurrency?: number;
  /** Largest range GET (default 8 MiB). */
  maxChunkBytes?: number;
}

/** Image bytes committed per event-loop turn ahead of the pages (see `HydratedImage.prefault`). */
const PREFAULT_SLICE_BYTES = 1 << 20;

/** Unwanted bytes a chunk may bridge between two frames it reads. */
const CHUNK_GAP_BYTES = 64 * 1024;
const MIN_CHUNK_BYTES = 2 * 1024 * 1024;

interface Chunk {
  file: PlanFile;
  start: number;
  end: number;
  /** Indexes of the frames to decode, in the file's FileFrames. */
  from: number;
  to: number;
  started: boolean;
  done: boolean;
  promise: Promise<void> | undefined;
}

interface Pass {
  txid: number;
  chunks: Map<string, Chunk[]>;
  pages: number;
  totalPages: number;
  bytes: number;
  totalBytes: number;
  cancelled: boolean;
  /** Settles when every chunk has. */
  done: Promise<void> | undefined;
}

/** Decoded pages of the whole database, each tagged with the frame it came from. */
class HydratedImage {
  readonly pageSize: number;
  #data = new Uint8Array(0);
  /** Bytes of `#data` below this are committed by the OS (see `prefault`). */
  #touched = 0;
  #prefaulting = false;
  #files = new Uint32Array(0);
  #offsets = new Float64Array(0);
  readonly #ids = new Map<string, number>();

  constructor(pageSize: number) {
    this.pageSize = pageSize;
  }

  #id(file: PlanFile): number {
    const key = file.objectId ?? file.key;
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#ids.size + 1;
      this.#ids.set(key, id);
    }
    return id;
  }

  /** Whether page `pgno` holds the image at `loc`. */
  holds(pgno: number, loc: PageLocation): boolean {
    if (pgno >= this.#files.length) return false;
    const key = loc.file.objectId ?? loc.file.key;
    const id = this.#ids.get(key);
    return id !== undefined && this.#files[pgno] === id && this.#offsets[pgno] === loc.offset;
  }

  get(pgno: number, loc: PageLocation): Uint8Array | undefined {
    if (!this.holds(pgno, loc)) return undefined;
    const at = (pgno - 1) * this.pageSize;
    return this.#data.subarray(at, at + this.pageSize);
  }

  /**
   * Page `pgno` as decoded from `loc` by `decode`, straight into the image
   * (no page allocated and copied per page). The slot holds no version while
   * `decode` runs, so one that throws leaves nothing half-written served.
   */
  fill(pgno: number, loc: PageLocation, decode: (slot: Uint8Array) => void): void {
    this.#grow(pgno);
    this.#files[pgno] = 0;
    const at = (pgno - 1) * this.pageSize;
    decode(this.#data.subarray(at, at + this.pageSize));
    this.#files[pgno] = this.#id(loc.file);
    this.#offsets[pgno] = loc.offset;
  }

  /** Room for pages up to `pgno` (grown geometrically; old views stay valid). */
  #grow(pgno: number): void {
    if (pgno < this.#files.length) return;
    const pages = Math.max(pgno + 1, Math.ceil(this.#files.length * 1.5));
    const data = new Uint8Array(pages * this.pageSize);
    data.set(this.#data);
    this.#touched = this.#data.length;
    const files = new Uint32Array(pages);
    files.set(this.#files);
    const offsets = new Float64Array(pages);
    offsets.set(this.#offsets);
    this.#data = data;
    this.#files = files;
    this.#offsets = offsets;
  }

  /**
   * Has the OS commit the image's memory ahead of the pages, one slice per
   * event-loop turn, while the range GETs are in flight: committing fresh
   * memory costs page faults (on Firecracker VMs, Lambda's, about 4 ms per
   * MiB: 0.6 s for a 157 MB image) that decoding would otherwise pay after
   * the bytes arrive. Rewrites one byte per 4 KiB with its own value, so
   * pages already decoded are untouched. Stops when `stop()` says so.
   */
  async prefault(stop: () => boolean): Promise<void> {
    if (this.#prefaulting) return;
    this.#prefaulting = true;
    try {
      for (;;) {
        const data = this.#data;
        if (this.#touched >= data.length || stop()) return;
        const end = Math.min(data.length, this.#touched + PREFAULT_SLICE_BYTES);
        for (let i = this.#touched; i < end; i += 4096) data[i] = data[i]!;
        this.#touched = end;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      this.#prefaulting = false;
    }
  }

  /** Makes room for `pages` pages at once (the first pass knows the size). */
  reserve(pages: number): void {
    this.#grow(pages);
  }

  get bytes(): number {
    return this.#data.byteLength;
  }
}

/** Downloads and keeps the whole database, then follows its versions. */
export class Hydrator {
  readonly #options: HydratorOptions;
  readonly #image: HydratedImage;
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #abort = new AbortController();
  #pass: Pass | undefined;
  #state: HydrationState = "off";
  #error: string | null = null;

  constructor(options: HydratorOptions) {
    this.#options = options;
    this.#image = new HydratedImage(options.pageSize);
    this.#limit = pLimit(Math.max(1, options.concurrency ?? 8));
  }

  /** True once hydration was started (it then follows every version). */
  get active(): boolean {
    return this.#state !== "off";
  }

  /** Current figures. */
  status(): HydrationStatus {
    const p = this.#pass;
    return {
      state: this.#state,
      txid: p?.txid ?? null,
      pages: p?.pages ?? 0,
      totalPages: p?.totalPages ?? 0,
      bytes: p?.bytes ?? 0,
      totalBytes: p?.totalBytes ?? 0,
      error: this.#error,
    };
  }

  /** The hydrated image of page `pgno` at `loc`, if it is in memory. */
  page(pgno: number, loc: PageLocation): Uint8Array | undefined {
    return this.#image.get(pgno, loc);
  }

  /** The range GET bringing the frame at `loc`, when it is in flight. */
  pending(loc: PageLocation): Promise<void> | undefined {
    const chunks = this.#pass?.chunks.get(loc.file.key);
    if (!chunks) return undefined;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (loc.offset < c.start) hi = mid - 1;
      else if (loc.offset >= c.end) lo = mid + 1;
      else return c.started && !c.done ? c.promise : undefined;
    }
    return undefined;
  }

  /**
   * Hydrates the version `layout` describes: every page whose image is not
   * in memory yet (all of them the first time; afterwards the changed ones).
   * A newer call supersedes an unfinished one. Resolves when done; never
   * rejects (a failure is recorded in the status).
   */
  hydrate(txid: number, layout: FrameLayout, commit: number): Promise<void> {
    if (this.#abort.signal.aborted) return Promise.resolve();
    const current = this.#pass;
    if (current && current.txid === txid && !current.cancelled && current.done) {
      return current.done;
    }
    if (current) current.cancelled = true;
    this.#image.reserve(commit);
    // As few chunks as the parallel GETs take in one wave: gaps and file
    // boundaries split chunks, so grow them until the count fits.
    const n = Math.max(1, this.#options.concurrency ?? 8);
    const maxChunkCap = this.#options.maxChunkBytes ?? 8 * 1024 * 1024;
    let maxChunk = this.#chunkBytes(layout.bytes);
    let plan = this.#plan(layout, maxChunk);
    while (plan.count > n && maxChunk < maxChunkCap) {
      maxChunk = Math.min(maxChunkCap, Math.ceil(maxChunk * 1.25));
      plan = this.#plan(layout, maxChunk);
    }
    const { chunks, totalBytes, missing } = plan;
    // Files split chunks too (at least one per file): a few more GETs in
    // flight beat a second wave.
    this.#limit.concurrency = Math.min(2 * n, Math.max(n, plan.count));
    const pass: Pass = {
      txid,
      chunks,
      pages: layout.pages - missing,
      totalPages: layout.pages,
      bytes: 0,
      totalBytes,
      cancelled: false,
      done: undefined,
    };
    this.#pass = pass;
    // Runs on for whichever pass comes next: every pass fills the same image.
    void this.#image.prefault(() => this.#abort.signal.aborted);
    this.#state = "running";
    this.#error = null;
    const work: Promise<void>[] = [];
    for (const list of chunks.values()) {
      for (const c of list) {
        const frames = layout.file(c.file.key)!;
        c.promise = this.#limit(async () => {
          if (pass.cancelled || this.#abort.signal.aborted) return;
          c.started = true;
          const pieces = await readRangePieces(
            this.#options.store,
            this.#options.persistent,
            c.file,
            c.start,
            c.end,
            this.#abort.signal,
          );
          pass.bytes += c.end - c.start;
          const bytes = new PieceRanges(pieces, c.start);
          for (let i = c.from; i < c.to; i++) {
            const loc: PageLocation = {
              file: c.file,
              offset: frames.offsets[i]!,
              size: frames.sizes[i]!,
            };
            if (loc.offset < c.start || loc.offset + loc.size > c.end) continue;
            const pgno = frames.pgnos[i]!;
            const frame = bytes.read(loc.offset, loc.size);
            const expect = { pgno, pageSize: this.#options.pageSize };
            this.#image.fill(pgno, loc, (slot) => decodePageFrame(frame, expect, slot));
            pass.pages++;
          }
        }).finally(() => {
          c.done = true;
        });
        work.push(c.promise);
      }
    }
    pass.done = Promise.all(work).then(
      () => {
        if (this.#pass === pass && !pass.cancelled) this.#state = "done";
      },
      (err: unknown) => {
        if (this.#pass === pass) {
          this.#state = this.#abort.signal.aborted ? "off" : "failed";
          this.#error = err instanceof Error ? err.message : String(err);
        }
      },
    );
    return pass.done;
  }

  /** Settles when the current pass has (at once when there is none). */
  settled(): Promise<void> {
    return this.#pass?.done ?? Promise.resolve();
  }

  /** Stops hydrating (requests in flight are aborted) and drops the image. */
  close(): void {
    this.#abort.abort();
    if (this.#pass) this.#pass.cancelled = true;
  }

  /** Bytes of memory the image takes. */
  get memoryBytes(): number {
    return this.#image.bytes;
  }

  /** The chunks (coalesced range GETs) reading every page not in memory yet. */
  #plan(
    layout: FrameLayout,
    maxChunk: number,
  ): { chunks: Map<string, Chunk[]>; totalBytes: number; missing: number; count: number } {
    const chunks = new Map<string, Chunk[]>();
    let totalBytes = 0;
    let missing = 0;
    for (const frames of layout.files) {
      const list: Chunk[] = [];
      let cur: Chunk | undefined;
      for (let i = 0; i < frames.pgnos.length; i++) {
        const loc: PageLocation = {
          file: frames.file,
          offset: frames.offsets[i]!,
          size: frames.sizes[i]!,
        };
        if (this.#image.holds(frames.pgnos[i]!, loc)) {
          if (cur) {
            list.push(cur);
            cur = undefined;
          }
          continue;
        }
        missing++;
        const end = loc.offset + loc.size;
        if (cur && loc.offset - cur.end <= CHUNK_GAP_BYTES && end - cur.start <= maxChunk) {
          cur.end = end;
          cur.to = i + 1;
          continue;
        }
        if (cur) list.push(cur);
        cur = {
          file: frames.file,
          start: loc.offset,
          end,
          from: i,
          to: i + 1,
          started: false,
          done: false,
          promise: undefined,
        };
      }
      if (cur) list.push(cur);
      if (list.length > 0) chunks.set(frames.file.key, list);
      for (const c of list) totalBytes += c.end - c.start;
    }
    let count = 0;
    for (const list of chunks.values()) count += list.length;
    return { chunks, totalBytes, missing, count };
  }

  /** Large enough to amortise a request, small enough to spread over the parallel GETs. */
  #chunkBytes(total: number): number {
    const max = this.#options.maxChunkBytes ?? 8 * 1024 * 1024;
    const n = Math.max(1, this.#options.concurrency ?? 8);
    return Math.min(max, Math.max(MIN_CHUNK_BYTES, Math.ceil(total / n)));
  }
}
