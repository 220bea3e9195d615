/**
 * An `LtxDecoder` for restore whose pages are decompressed and checksummed by
 * a {@link PageDecodePool} (several threads) while this thread splits the
 * stream into frames: every LZ4-block payload of an LTX file is independent.
 *
 * It checks everything the streaming decoder checks, in the same terms:
 * header, frame order (ascending, within commit, no lock page, snapshot
 * contiguity), flags, size prefixes, exact decompressed sizes, snapshot
 * completeness, a page index listing exactly the frames seen, the index size
 * field, the trailer, the file checksum (per-page CRCs folded in file order)
 * and a snapshot's post-apply checksum; nothing may follow the trailer. Pages
 * carry their page checksums, as the streaming decoder's do. Files whose pages
 * are LZ4 *frames* (ltx v0.5.1, Litestream 0.5.0-0.5.15) have no size prefix
 * to split on: they go through the streaming decoder unchanged.
 *
 * Given a file (`writeFd`), the threads also write the pages they decode, so
 * the page images never cross to this thread (see {@link PooledLtxDecoderOptions}).
 */
import { lockPgno } from "../format/checksum.js";
import {
  LTX_HEADER_SIZE,
  LTX_INDEX_SIZE_FIELD_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_PAGE_SIZE_PREFIX_SIZE,
  LTX_TRAILER_SIZE,
  PAGE_HEADER_FLAG_SIZE,
} from "../format/constants.js";
import { Crc64, Crc64Combiner } from "../format/crc64.js";
import { checkLtxTrailer, LtxDecoder, type LtxPage } from "../format/ltx-decoder.js";
import { LtxError, type LtxErrorCode } from "../format/ltx-error.js";
import {
  decodeLtxHeader,
  hasNoChecksum,
  isSnapshotHeader,
  type LtxHeader,
  type LtxTrailer,
} from "../format/ltx-header.js";
import { lz4CompressBound } from "../format/lz4-block.js";
import { PageIndexEntries, type PageIndexEntry, readUvarint } from "../format/page-index.js";
import type { PageDecodePool, PoolResult } from "./page-decode-pool.js";

/** Compressed bytes per batch handed to a decode thread. */
const BATCH_BYTES = 1 << 20;
/** Decoded bytes per batch, at most (bounds the frames of a batch of small payloads). */
const BATCH_PAGE_BYTES = 4 << 20;
/** Batches in flight per decode thread (at least 2 overall). */
const BATCHES_PER_THREAD = 3;
const FRAME_PREFIX = LTX_PAGE_HEADER_SIZE + LTX_PAGE_SIZE_PREFIX_SIZE;

function corrupt(message: string): LtxError {
  return new LtxError("LTX_CORRUPT", message);
}

function u32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/** Buffered input: chunks as they came, consumed from the front. */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  #pos = 0;
  #length = 0;
  /** Stream offset of the next unread byte. */
  offset = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Byte `i` ahead of the read position (i < length). */
  peek(i: number): number {
    let p = this.#pos + i;
    for (const c of this.#chunks) {
      if (p < c.length) return c[p]!;
      p -= c.length;
    }
    return 0;
  }

  /** Big-endian uint32 `i` bytes ahead. */
  peekU32(i: number): number {
    const c = this.#chunks[0]!;
    const p = this.#pos + i;
    if (p + 4 <= c.length) return u32(c, p);
    return (
      ((this.peek(i) << 24) |
        (this.peek(i + 1) << 16) |
        (this.peek(i + 2) << 8) |
        this.peek(i + 3)) >>>
      0
    );
  }

  /** Copies the next `n` bytes to `dst` at `at` and consumes them. */
  copyTo(n: number, dst: Uint8Array, at: number): void {
    let done = 0;
    while (done < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(n - done, c.length - this.#pos);
      dst.set(
        take === c.length && this.#pos === 0 ? c : c.subarray(this.#pos, this.#pos + take),
        at + done,
      );
      done += take;
      this.#advance(take);
    }
  }

  /** The next `n` bytes (a view when they lie in one chunk), consumed. */
  take(n: number): Uint8Array {
    const c = this.#chunks[0];
    if (c && this.#pos + n <= c.length) {
      const v = c.subarray(this.#pos, this.#pos + n);
      this.#advance(n);
      return v;
    }
    const out = new Uint8Array(n);
    this.copyTo(n, out, 0);
    return out;
  }

  /** The first buffered chunk and the read position in it. */
  front(): { chunk: Uint8Array; pos: number } | undefined {
    const c = this.#chunks[0];
    return c ? { chunk: c, pos: this.#pos } : undefined;
  }

  /** Consumes `n` bytes. */
  skip(n: number): void {
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      const take = Math.min(left, c.length - this.#pos);
      left -= take;
      this.#advance(take);
    }
  }

  #advance(n: number): void {
    this.#pos += n;
    this.#length -= n;
    this.offset += n;
    if (this.#pos === this.#chunks[0]!.length) {
      this.#chunks.shift();
      this.#pos = 0;
    }
  }
}

/** Options of {@link PooledLtxDecoder}. */
export interface PooledLtxDecoderOptions {
  /**
   * An open file the decode threads write each page to, at
   * `(pgno - 1) * pageSize`, as they decode it (restore's output). Pages are
   * then yielded `stored`, with empty `data`, once written. Files read by the
   * streaming decoder (LZ4-frame pages) yield their pages as usual.
   */
  writeFd?: number;
  /** Told the bytes of each batch the threads wrote to `writeFd`. */
  onStored?: (bytes: number) => void;
}

/** The `data` of pages the decode threads wrote to the file themselves. */
const STORED = new Uint8Array(0);

interface OpenBatch {
  frames: Uint32Array;
  payload: Uint8Array;
  count: number;
  used: number;
  /** Index (in file order) of its first frame. */
  first: number;
}

interface Flight {
  result: Promise<PoolResult>;
  first: number;
  count: number;
}

/** See the module comment. Use like `LtxDecoder`: `readHeader()`, `pages()`, `finish()`. */
export class PooledLtxDecoder extends LtxDecoder {
  readonly #iter: AsyncIterator<Uint8Array>;
  readonly #pool: PageDecodePool;
  readonly #queue = new ByteQueue();
  readonly #crc = new Crc64();
  readonly #index = new PageIndexEntries();
  readonly #inflight: Flight[] = [];
  readonly #freePayloads: Uint8Array[] = [];
  readonly #freePages: Uint8Array[] = [];
  readonly #scratch = new Uint8Array(FRAME_PREFIX);
  #combiner: Crc64Combiner | undefined;
  #maxPayload = 0;
  #maxInflight: number;
  #header: LtxHeader | undefined;
  #inner: LtxDecoder | undefined;
  #batch: OpenBatch | undefined;
  #lock = 0;
  #snapshot = false;
  #track = false;
  #prev = 0;
  #dbHi = 0;
  #dbLo = 0;
  #terminator: Uint8Array | undefined;
  #pagesDone = false;
  #end: { trailer: LtxTrailer; pageIndex: PageIndexEntry[] } | undefined;
  #sourceDone = false;
  #failed: unknown;
  #hasFailed = false;
  #busy = false;
  readonly #writeFd: number | undefined;
  readonly #onStored: ((bytes: number) => void) | undefined;

  constructor(
    source: AsyncIterable<Uint8Array>,
    pool: PageDecodePool,
    options: PooledLtxDecoderOptions = {},
  ) {
    super([]);
    this.#iter = source[Symbol.asyncIterator]();
    this.#pool = pool;
    this.#writeFd = options.writeFd;
    this.#onStored = options.onStored;
    this.#maxInflight = Math.max(2, pool.threads * BATCHES_PER_THREAD);
  }

  override get header(): LtxHeader | undefined {
    return this.#inner ? this.#inner.header : this.#header;
  }

  override async readHeader(): Promise<LtxHeader> {
    if (this.#inner) return this.#inner.readHeader();
    if (this.#header) return this.#header;
    return this.#guard(async () => {
      await this.#need(LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE, LTX_HEADER_SIZE);
      const q = this.#queue;
      if (q.length >= LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE) {
        const pgno = q.peekU32(LTX_HEADER_SIZE);
        const flags = (q.peek(LTX_HEADER_SIZE + 4) << 8) | q.peek(LTX_HEADER_SIZE + 5);
        if (pgno !== 0 && flags !== PAGE_HEADER_FLAG_SIZE) {
          // LZ4-frame pages (or invalid flags): the streaming decoder reads them as before.
          this.#inner = new LtxDecoder(this.#rest(), { reusePageBuffer: true });
          return this.#inner.readHeader();
        }
      }
      const hb = q.take(LTX_HEADER_SIZE);
      const header = decodeLtxHeader(hb);
      this.#crc.update(hb);
      this.#header = header;
      this.#lock = lockPgno(header.pageSize);
      this.#snapshot = isSnapshotHeader(header);
      this.#track = this.#snapshot && !hasNoChecksum(header);
      this.#combiner = Crc64Combiner.for(header.pageSize);
      this.#maxPayload = lz4CompressBound(header.pageSize);
      return header;
    });
  }

  override async *pages(): AsyncGenerator<LtxPage> {
    await this.readHeader();
    if (this.#inner) {
      yield* this.#inner.pages();
      return;
    }
    if (this.#hasFailed) throw this.#failed;
    try {
      for (;;) {
        const state = this.#split();
        if (state === "end") break;
        if (state === "full") {
          yield* this.#drainOne();
          continue;
        }
        // Out of bytes: keep idle threads busy with what is split so far.
        if (this.#batch && this.#batch.count > 0 && this.#pool.pending < this.#pool.threads) {
          this.#dispatch();
        }
        if (!(await this.#pull())) throw this.#truncated(FRAME_PREFIX);
      }
      if (this.#batch && this.#batch.count > 0) this.#dispatch();
      while (this.#inflight.length > 0) yield* this.#drainOne();
      this.#pagesDone = true;
    } catch (err) {
      await this.#fail(err);
      throw err;
    }
  }

  override async finish(): Promise<{ trailer: LtxTrailer; pageIndex: PageIndexEntry[] }> {
    if (this.#inner) return this.#inner.finish();
    if (this.#end) return this.#end;
    if (!this.#pagesDone) for await (const _ of this.pages()); // drains what is left
    return this.#guard(async () => {
      while (await this.#pull());
      const q = this.#queue;
      const tail = q.take(q.length);
      const crc = this.#crc;
      crc.update(this.#terminator!);
      // Page index: exactly the frames seen, in order.
      let p = 0;
      const index = this.#index;
      for (let i = 0; ; i++) {
        const pgno = this.#varint(tail, p);
        p = pgno.next;
        if (pgno.value === 0) {
          if (i !== index.count)
            throw corrupt(`page index lists ${i} pages, file has ${index.count}`);
          break;
        }
        if (i >= index.count) throw corrupt("page index lists more pages than the file has");
        const offset = this.#varint(tail, p);
        const size = this.#varint(tail, offset.next);
        p = size.next;
        if (
          pgno.value !== index.pgno(i) ||
          offset.value !== index.offset(i) ||
          size.value !== index.size(i)
        ) {
          throw corrupt(`page index entry ${i} does not match the page frames`);
        }
      }
      const varintLen = p;
      if (tail.length < p + LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE) {
        throw this.#truncated(p + LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE - tail.length);
      }
      crc.update(tail, 0, p + LTX_INDEX_SIZE_FIELD_SIZE);
      if (u32(tail, p) !== 0 || u32(tail, p + 4) !== varintLen) {
        throw corrupt("page index size field does not match the index");
      }
      const tb = tail.subarray(
        p + LTX_INDEX_SIZE_FIELD_SIZE,
        p + LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE,
      );
      const trailer = checkLtxTrailer(
        tb,
        this.#header!,
        crc,
        this.#track ? { hi: this.#dbHi, lo: this.#dbLo } : undefined,
      );
      const end = p + LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE;
      if (end !== tail.length) {
        throw corrupt(
          `unexpected data after the end of the LTX file at offset ${q.offset - tail.length + end}`,
        );
      }
      let entries: PageIndexEntry[] | undefined;
      this.#end = {
        trailer,
        // Built only if asked for (restore never does; a snapshot has one per page).
        get pageIndex() {
          entries ??= index.toArray();
          return entries;
        },
      };
      return this.#end;
    });
  }

  override async cancel(): Promise<void> {
    if (this.#inner) return this.#inner.cancel();
    if (!this.#hasFailed && this.#end === undefined) {
      this.#hasFailed = true;
      this.#failed = new LtxError("LTX_INVALID_STATE", "decoder was cancelled");
    }
    await this.#closeSource();
  }

  /**
   * Splits buffered frames into batches: "end" at the page block terminator,
   * "full" when no more batches may be in flight, "more" when it needs input.
   * Frames lying whole in the first buffered chunk are validated in place and
   * copied to the batch as one span; one straddling two chunks is copied alone.
   */
  #split(): "end" | "full" | "more" {
    const q = this.#queue;
    for (;;) {
      const front = q.front();
      if (!front) return "more";
      const { chunk, pos } = front;
      // Stream offset of chunk[0] (copying spans moves the queue's offset on).
      const base = q.offset - pos;
      let p = pos;
      let from = pos;
      let state: "end" | "full" | "more" | undefined;
      for (;;) {
        if (p + LTX_PAGE_HEADER_SIZE > chunk.length) break;
        const pgno = u32(chunk, p);
        const flags = (chunk[p + 4]! << 8) | chunk[p + 5]!;
        if (pgno === 0) {
          state = "end";
          break;
        }
        this.#checkFrame(pgno, flags);
        if (p + FRAME_PREFIX > chunk.length) break;
        const size = this.#checkSize(u32(chunk, p + LTX_PAGE_HEADER_SIZE));
        if (p + FRAME_PREFIX + size > chunk.length) break;
        if (!this.#fits(size, p - from)) {
          this.#copySpan(chunk, from, p);
          from = p;
          if (!this.#rotate()) {
            state = "full";
            break;
          }
        }
        this.#record(pgno, base + p, size, p - from + FRAME_PREFIX);
        p += FRAME_PREFIX + size;
      }
      this.#copySpan(chunk, from, p);
      if (state === "full") return state;
      if (state === "end") return this.#terminate();
      if (p > pos) continue;
      // The next frame straddles two chunks (or needs more input).
      const one = this.#splitOne();
      if (one !== undefined) return one;
    }
  }

  /** One frame through the queue (it spans chunks); `undefined` when it was taken. */
  #splitOne(): "end" | "full" | "more" | undefined {
    const q = this.#queue;
    if (q.length < LTX_PAGE_HEADER_SIZE) return "more";
    const pgno = q.peekU32(0);
    if (pgno === 0) return this.#terminate();
    this.#checkFrame(pgno, (q.peek(4) << 8) | q.peek(5));
    if (q.length < FRAME_PREFIX) return "more";
    const size = this.#checkSize(q.peekU32(LTX_PAGE_HEADER_SIZE));
    if (q.length < FRAME_PREFIX + size) return "more";
    if (!this.#fits(size, 0) && !this.#rotate()) return "full";
    const batch = this.#batch!;
    this.#record(pgno, q.offset, size, FRAME_PREFIX);
    q.copyTo(FRAME_PREFIX + size, batch.payload, batch.used);
    batch.used += FRAME_PREFIX + size;
    return undefined;
  }

  /** The page block terminator: the frames are complete. */
  #terminate(): "end" {
    const q = this.#queue;
    const flags = (q.peek(4) << 8) | q.peek(5);
    if (flags !== 0) {
      throw corrupt(`page header with page number 0 has flags 0x${flags.toString(16)}`);
    }
    this.#terminator = q.take(LTX_PAGE_HEADER_SIZE).slice();
    const { commit } = this.#header!;
    if (this.#snapshot) {
      const last = commit === this.#lock ? commit - 1 : commit;
      if (this.#prev !== last) {
        throw corrupt(`snapshot is incomplete: pages end at ${this.#prev}, commit is ${commit}`);
      }
    }
    return "end";
  }

  /** Frame order and flags, as the streaming decoder checks them. */
  #checkFrame(pgno: number, flags: number): void {
    const prev = this.#prev;
    const { commit } = this.#header!;
    if (pgno <= prev) throw corrupt(`page numbers not ascending: ${prev} then ${pgno}`);
    if (pgno > commit) throw corrupt(`page ${pgno} is beyond the commit size ${commit}`);
    if (pgno === this.#lock) throw corrupt(`file contains the lock page (${pgno})`);
    if (this.#snapshot) {
      const expected = prev + 1 === this.#lock ? prev + 2 : prev + 1;
      if (pgno !== expected) throw corrupt(`snapshot is missing page ${expected}`);
    }
    if (flags !== PAGE_HEADER_FLAG_SIZE) {
      throw flags === 0
        ? new LtxError(
            "LTX_UNSUPPORTED",
            `page ${pgno} is an LZ4 frame in a file of LZ4-block pages (mixed page encodings)`,
          )
        : corrupt(`invalid page header flags: 0x${flags.toString(16)}`);
    }
  }

  #checkSize(size: number): number {
    if (size === 0 || size > this.#maxPayload) {
      throw corrupt(`invalid compressed page size: ${size}`);
    }
    return size;
  }

  /** Whether a frame of `size` fits the open batch after `pending` bytes not yet copied to it. */
  #fits(size: number, pending: number): boolean {
    const b = this.#batch;
    return (
      b !== undefined &&
      b.used + pending + FRAME_PREFIX + size <= b.payload.length &&
      (b.count + 1) * 3 <= b.frames.length
    );
  }

  /** Dispatches the open batch (if any) and opens a new one; false when too many are in flight. */
  #rotate(): boolean {
    if (this.#batch && this.#batch.count > 0) {
      if (this.#inflight.length >= this.#maxInflight) return false;
      this.#dispatch();
    }
    if (!this.#batch) this.#open();
    return true;
  }

  /**
   * Records a frame of the open batch whose payload will sit `at` bytes past
   * the batch's copied bytes (frame header included in the copy).
   */
  #record(pgno: number, frameOffset: number, size: number, at: number): void {
    const b = this.#batch!;
    b.frames[b.count * 3] = pgno;
    b.frames[b.count * 3 + 1] = b.used + at;
    b.frames[b.count * 3 + 2] = size;
    b.count++;
    this.#index.push(pgno, frameOffset, FRAME_PREFIX + size);
    this.#prev = pgno;
  }

  /** Copies `chunk[from, to)` (whole frames) to the open batch and consumes it. */
  #copySpan(chunk: Uint8Array, from: number, to: number): void {
    if (to <= from) return;
    const b = this.#batch!;
    b.payload.set(chunk.subarray(from, to), b.used);
    b.used += to - from;
    this.#queue.skip(to - from);
  }

  #open(): OpenBatch {
    const payload =
      this.#freePayloads.pop() ??
      new Uint8Array(Math.max(BATCH_BYTES, FRAME_PREFIX + this.#maxPayload));
    const frames = new Uint32Array(
      3 * Math.max(1, Math.floor(BATCH_PAGE_BYTES / this.#header!.pageSize)),
    );
    this.#batch = { frames, payload, count: 0, used: 0, first: this.#index.count };
    return this.#batch;
  }

  #dispatch(): void {
    const b = this.#batch!;
    this.#batch = undefined;
    const store = this.#writeFd !== undefined;
    const pages = store ? undefined : this.#freePages.pop();
    const result = this.#pool.decode({
      pageSize: this.#header!.pageSize,
      count: b.count,
      frames: b.frames,
      payload: b.payload,
      ...(pages ? { pages } : {}),
      ...(store ? { writeFd: this.#writeFd } : {}),
    });
    // Failures surface when the batch's turn comes; never unhandled.
    result.catch(() => {});
    this.#inflight.push({ result, first: b.first, count: b.count });
  }

  /** Waits for the oldest batch and yields its pages, folding their CRCs into the file checksum. */
  async *#drainOne(): AsyncGenerator<LtxPage> {
    const flight = this.#inflight.shift()!;
    const r = await flight.result;
    if (r.error) {
      const pgno = this.#index.pgno(flight.first + r.error.index);
      throw new LtxError(r.error.code as LtxErrorCode, `page ${pgno}: ${r.error.message}`);
    }
    if (r.writeError) {
      // As the file system reported it to the thread (ENOSPC, EIO...).
      throw Object.assign(new Error(r.writeError.message), { code: r.writeError.code });
    }
    const stored = this.#writeFd !== undefined;
    const { pageSize } = this.#header!;
    const crc = this.#crc;
    const combiner = this.#combiner!;
    const s = this.#scratch;
    const sums = r.sums;
    for (let i = 0; i < flight.count; i++) {
      const j = flight.first + i;
      const pgno = this.#index.pgno(j);
      const size = this.#index.size(j) - FRAME_PREFIX;
      // The frame's page header and size prefix, then the page (by its CRC).
      s[0] = pgno >>> 24;
      s[1] = pgno >>> 16;
      s[2] = pgno >>> 8;
      s[3] = pgno;
      s[4] = 0;
      s[5] = PAGE_HEADER_FLAG_SIZE;
      s[6] = size >>> 24;
      s[7] = size >>> 16;
      s[8] = size >>> 8;
      s[9] = size;
      crc.update(s, 0, FRAME_PREFIX);
      combiner.append(crc, sums[i * 4]!, sums[i * 4 + 1]!);
      const checksumHi = sums[i * 4 + 2]!;
      const checksumLo = sums[i * 4 + 3]!;
      if (this.#track) {
        this.#dbHi ^= checksumHi;
        this.#dbLo ^= checksumLo;
      }
      yield stored
        ? { pgno, data: STORED, checksumHi, checksumLo, stored }
        : {
            pgno,
            data: r.pages.subarray(i * pageSize, (i + 1) * pageSize),
            checksumHi,
            checksumLo,
          };
    }
    if (stored) this.#onStored?.(flight.count * pageSize);
    // Every page of the batch was consumed: its buffers serve the next batches.
    if (r.payload.length >= BATCH_BYTES) this.#freePayloads.push(r.payload);
    if (r.pages.length > 0) this.#freePages.push(r.pages);
  }

  #varint(b: Uint8Array, p: number): { value: number; next: number } {
    const v = readUvarint(b, p, b.length);
    if (v === undefined) throw this.#truncated(1);
    return v;
  }

  /** The rest of the input: what is buffered, then the source (for the streaming decoder). */
  async *#rest(): AsyncGenerator<Uint8Array> {
    const q = this.#queue;
    if (q.length > 0) yield q.take(q.length);
    for (;;) {
      const res = await this.#iter.next();
      if (res.done) return;
      yield res.value;
    }
  }

  /** Pulls chunks until `want` bytes are buffered (or the input ends, then at least `min`). */
  async #need(want: number, min: number): Promise<void> {
    while (this.#queue.length < want) {
      if (!(await this.#pull())) break;
    }
    if (this.#queue.length < min) throw this.#truncated(min - this.#queue.length);
  }

  async #pull(): Promise<boolean> {
    if (this.#sourceDone) return false;
    const res = await this.#iter.next();
    if (res.done) {
      this.#sourceDone = true;
      return false;
    }
    const chunk: unknown = res.value;
    if (!(chunk instanceof Uint8Array)) {
      throw new LtxError(
        "LTX_INVALID_ARGUMENT",
        "LtxDecoder source yielded a non-Uint8Array chunk",
      );
    }
    this.#queue.push(chunk);
    return true;
  }

  #truncated(missing: number): LtxError {
    return new LtxError(
      "LTX_TRUNCATED",
      `input ended ${missing} byte(s) early at offset ${this.#queue.offset + this.#queue.length}`,
    );
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#hasFailed) throw this.#failed;
    if (this.#busy) throw new LtxError("LTX_INVALID_STATE", "concurrent calls on one LtxDecoder");
    this.#busy = true;
    try {
      return await fn();
    } catch (err) {
      await this.#fail(err);
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  async #fail(err: unknown): Promise<void> {
    if (!this.#hasFailed) {
      this.#hasFailed = true;
      this.#failed = err;
    }
    // Batches still decoding settle on their own; their results are dropped.
    this.#inflight.length = 0;
    await this.#closeSource();
  }

  async #closeSource(): Promise<void> {
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    try {
      await this.#iter.return?.();
    } catch {
      // Closing is best effort.
    }
  }
}
