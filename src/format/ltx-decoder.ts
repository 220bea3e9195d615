import { lockPgno } from "./checksum.js";
import { type ChunkInput, ChunkReader, NEED_CHUNK, type NeedChunk } from "./chunk-reader.js";
import {
  CHECKSUM_FLAG,
  LTX_HEADER_SIZE,
  LTX_INDEX_SIZE_FIELD_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  MAX_PAGE_SIZE,
} from "./constants.js";
import { Crc64, Crc64Combiner } from "./crc64.js";
import { corrupt, invalidArgument, LtxError } from "./ltx-error.js";
import {
  decodeLtxHeader,
  decodeLtxTrailer,
  hasNoChecksum,
  isSnapshotHeader,
  type LtxHeader,
  type LtxTrailer,
  ltxTrailerProblem,
} from "./ltx-header.js";
import { readFrameBody } from "./page-frame.js";
import { PageIndexEntries, type PageIndexEntry, readUvarint } from "./page-index.js";

/** A decoded page. */
export interface LtxPage {
  pgno: number;
  data: Uint8Array;
  /**
   * The page checksum (CRC-64 of pgno ‖ page with bit 63 set, see
   * `pageChecksum`) as uint32 halves, computed in the same pass as the file
   * checksum. Set by the decoders; absent on pages built elsewhere.
   */
  checksumHi?: number;
  checksumLo?: number;
  /**
   * The decoder already wrote this page to the apply target (restore's
   * decode threads write the pages they decode); `data` is then empty and
   * the checksum is set. Only decoders told to write produce such pages.
   */
  stored?: boolean;
}

/** Options of {@link LtxDecoder} and {@link decodeLtx}. */
export interface LtxDecoderOptions {
  /** Reject files whose page size exceeds this (default 65536). Caps per-page allocations. */
  maxPageSize?: number;
  /**
   * Decode every page into one reused buffer (default false): a page's
   * `data` is then only valid until the next page is asked for. Saves an
   * allocation per page for consumers that write each page out at once.
   */
  reusePageBuffer?: boolean;
}

type CoreEvent =
  | { kind: "header"; header: LtxHeader }
  | { kind: "page"; page: LtxPage }
  | { kind: "pagesEnd" }
  | { kind: "end"; trailer: LtxTrailer; pageIndex: PageIndexEntry[] };

type Core = Generator<NeedChunk | CoreEvent, void, ChunkInput>;

/**
 * The decoding state machine shared by the sync and async front ends. It
 * validates, in stream order: header (superfly/ltx rules), each frame
 * (pgno ascending, within commit, not the lock page, snapshot contiguity,
 * flags, size prefix, exact decompressed size), snapshot completeness, the page
 * index (must list exactly the frames seen, with their offsets and sizes), the
 * index size field, the trailer formats, the file checksum, a snapshot's
 * post-apply checksum (when tracked), and that nothing follows the trailer.
 */
function* decodeCore(r: ChunkReader, maxPageSize: number, reuse = false): Core {
  const crc = new Crc64();
  const hb = yield* r.read(LTX_HEADER_SIZE);
  const header = decodeLtxHeader(hb);
  crc.update(hb);
  if (header.pageSize > maxPageSize) {
    throw new LtxError(
      "LTX_UNSUPPORTED",
      `page size ${header.pageSize} exceeds the configured maximum ${maxPageSize}`,
    );
  }
  yield { kind: "header", header };

  const { pageSize, commit } = header;
  const lock = lockPgno(pageSize);
  const snapshot = isSnapshotHeader(header);
  const trackChecksum = snapshot && !hasNoChecksum(header);
  // One CRC pass per page serves the file checksum and the page checksum (see Crc64Combiner).
  const combiner = Crc64Combiner.for(pageSize);
  const pageCrc = new Crc64();
  const pgnoCrc = new Crc64();
  const scratch = reuse ? new Uint8Array(pageSize) : undefined;
  let dbHi = 0;
  let dbLo = 0;
  const index = new PageIndexEntries();
  let prev = 0;

  for (;;) {
    const frameOffset = r.offset;
    const ph = yield* r.read(LTX_PAGE_HEADER_SIZE);
    crc.update(ph);
    const pgno = ((ph[0]! << 24) | (ph[1]! << 16) | (ph[2]! << 8) | ph[3]!) >>> 0;
    const flags = (ph[4]! << 8) | ph[5]!;
    if (pgno === 0) {
      if (flags !== 0)
        throw corrupt(`page header with page number 0 has flags 0x${flags.toString(16)}`);
      break;
    }
    if (pgno <= prev) throw corrupt(`page numbers not ascending: ${prev} then ${pgno}`);
    if (pgno > commit) throw corrupt(`page ${pgno} is beyond the commit size ${commit}`);
    if (pgno === lock) throw corrupt(`file contains the lock page (${pgno})`);
    if (snapshot) {
      const expected = prev + 1 === lock ? prev + 2 : prev + 1;
      if (pgno !== expected) throw corrupt(`snapshot is missing page ${expected}`);
    }
    const data = yield* readFrameBody(r, flags, pageSize, crc, scratch);
    pageCrc.reset();
    pageCrc.update(data);
    combiner.append(crc, pageCrc.hi, pageCrc.lo);
    pgnoCrc.reset();
    pgnoCrc.updateU32BE(pgno);
    combiner.shift(pgnoCrc.hi, pgnoCrc.lo);
    const checksumHi = ((combiner.hi ^ pageCrc.hi) | 0x80000000) >>> 0;
    const checksumLo = (combiner.lo ^ pageCrc.lo) >>> 0;
    if (trackChecksum) {
      dbHi ^= checksumHi;
      dbLo ^= checksumLo;
    }
    index.push(pgno, frameOffset, r.offset - frameOffset);
    prev = pgno;
    yield { kind: "page", page: { pgno, data, checksumHi, checksumLo } };
  }
  if (snapshot) {
    const last = commit === lock ? commit - 1 : commit;
    if (prev !== last)
      throw corrupt(`snapshot is incomplete: pages end at ${prev}, commit is ${commit}`);
  }
  yield { kind: "pagesEnd" };

  // Page index: must list exactly the frames seen, in order.
  const indexStart = r.offset;
  for (let i = 0; ; i++) {
    const pgno = yield* readVarint(r, crc);
    if (pgno === 0) {
      if (i !== index.count) throw corrupt(`page index lists ${i} pages, file has ${index.count}`);
      break;
    }
    if (i >= index.count) throw corrupt("page index lists more pages than the file has");
    const offset = yield* readVarint(r, crc);
    const size = yield* readVarint(r, crc);
    if (pgno !== index.pgno(i) || offset !== index.offset(i) || size !== index.size(i)) {
      throw corrupt(`page index entry ${i} does not match the page frames`);
    }
  }
  const varintLen = r.offset - indexStart;
  const sb = yield* r.read(LTX_INDEX_SIZE_FIELD_SIZE);
  crc.update(sb);
  const dvs = new DataView(sb.buffer, sb.byteOffset, 8);
  if (dvs.getUint32(0) !== 0 || dvs.getUint32(4) !== varintLen) {
    throw corrupt("page index size field does not match the index");
  }

  const tb = yield* r.read(LTX_TRAILER_SIZE);
  const trailer = checkLtxTrailer(
    tb,
    header,
    crc,
    trackChecksum ? { hi: dbHi, lo: dbLo } : undefined,
  );
  yield* r.expectEnd();
  yield { kind: "end", trailer, pageIndex: index.toArray() };
}

/**
 * Decodes the trailer `tb` and checks it: against the header, against the
 * file checksum `crc` has computed over everything before it (it is updated
 * with the trailer's first 8 bytes), and, for a snapshot whose page checksums
 * were XORed into `db` (uint32 halves), against its post-apply checksum.
 */
export function checkLtxTrailer(
  tb: Uint8Array,
  header: LtxHeader,
  crc: Crc64,
  db: { hi: number; lo: number } | undefined,
): LtxTrailer {
  const trailer = decodeLtxTrailer(tb);
  const problem = ltxTrailerProblem(trailer, header);
  if (problem !== undefined) throw corrupt(`invalid LTX trailer: ${problem}`);
  crc.update(tb, 0, 8);
  const fileChecksum = crc.value | CHECKSUM_FLAG;
  if (fileChecksum !== trailer.fileChecksum) {
    throw new LtxError(
      "LTX_CHECKSUM_MISMATCH",
      `file checksum mismatch: trailer ${hex(trailer.fileChecksum)}, computed ${hex(fileChecksum)}`,
    );
  }
  if (db) {
    const actual = (BigInt((db.hi | 0x80000000) >>> 0) << 32n) | BigInt(db.lo >>> 0);
    if (actual !== trailer.postApplyChecksum) {
      throw new LtxError(
        "LTX_CHECKSUM_MISMATCH",
        `snapshot post-apply checksum ${hex(trailer.postApplyChecksum)} does not match its pages (${hex(actual)})`,
      );
    }
  }
  return trailer;
}

function* readVarint(r: ChunkReader, crc: Crc64): Generator<NeedChunk, number, ChunkInput> {
  if (r.available() < 10) yield* r.fill(10); // may come back short at end of input
  const start = r.pos;
  const v = readUvarint(r.buf, start, r.buf.length);
  if (v === undefined) throw r.truncated(1);
  crc.update(r.buf, start, v.next);
  r.skip(v.next - start);
  return v.value;
}

function hex(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

function resolveMaxPageSize(opts: LtxDecoderOptions | undefined): number {
  const m = opts?.maxPageSize ?? MAX_PAGE_SIZE;
  if (typeof m !== "number" || !(m >= 512))
    throw invalidArgument(`invalid maxPageSize: ${String(m)}`);
  return m;
}

/**
 * Streaming LTX reader over chunks with arbitrary boundaries (a file stream, a
 * fetch body...). Call `readHeader()`, iterate `pages()`, then `finish()`,
 * which verifies the page index and the file checksum.
 *
 * Pages are yielded as soon as they decompress, before the file checksum can
 * be checked: treat them as tentative until `finish()` resolves. Any failure
 * rejects with an `LtxError` (source errors propagate unchanged) and the
 * decoder stays failed. Memory: one page at a time plus the page index.
 */
export class LtxDecoder {
  readonly #iter: Iterator<Uint8Array> | AsyncIterator<Uint8Array>;
  readonly #core: Core;
  #header: LtxHeader | undefined;
  #end: { trailer: LtxTrailer; pageIndex: PageIndexEntry[] } | undefined;
  #pagesEnded = false;
  #started = false;
  #failed: unknown;
  #hasFailed = false;
  #busy = false;
  #sourceDone = false;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts?: LtxDecoderOptions) {
    const src = source as unknown as Record<symbol, unknown> | null | undefined;
    const asyncIt = src?.[Symbol.asyncIterator];
    const syncIt = src?.[Symbol.iterator];
    if (typeof asyncIt === "function") {
      this.#iter = asyncIt.call(src) as AsyncIterator<Uint8Array>;
    } else if (typeof syncIt === "function") {
      this.#iter = syncIt.call(src) as Iterator<Uint8Array>;
    } else {
      throw invalidArgument("LtxDecoder source must be an iterable of Uint8Array chunks");
    }
    this.#core = decodeCore(
      new ChunkReader(),
      resolveMaxPageSize(opts),
      opts?.reusePageBuffer === true,
    );
  }

  /** The header, once read. */
  get header(): LtxHeader | undefined {
    return this.#header;
  }

  /** Reads and validates the header (idempotent). */
  async readHeader(): Promise<LtxHeader> {
    while (this.#header === undefined) await this.#step();
    return this.#header;
  }

  /** Yields the pages in file order. Ends at the page block terminator. */
  async *pages(): AsyncGenerator<LtxPage> {
    await this.readHeader();
    while (!this.#pagesEnded) {
      const ev = await this.#step();
      if (ev?.kind === "page") yield ev.page;
    }
  }

  /**
   * Reads (and discards) any pages not yet consumed, then the page index and
   * trailer; verifies everything including the file checksum.
   */
  async finish(): Promise<{ trailer: LtxTrailer; pageIndex: PageIndexEntry[] }> {
    while (this.#end === undefined) await this.#step();
    return this.#end;
  }

  /** Stops reading and releases the source (e.g. closes a stream). */
  async cancel(): Promise<void> {
    if (!this.#hasFailed && this.#end === undefined) {
      this.#hasFailed = true;
      this.#failed = new LtxError("LTX_INVALID_STATE", "decoder was cancelled");
    }
    await this.#closeSource();
  }

  async #step(): Promise<CoreEvent | undefined> {
    if (this.#hasFailed) throw this.#failed;
    if (this.#end !== undefined) return undefined;
    if (this.#busy) throw new LtxError("LTX_INVALID_STATE", "concurrent calls on one LtxDecoder");
    this.#busy = true;
    try {
      let input: ChunkInput = null;
      if (!this.#started) {
        this.#started = true;
        input = undefined;
      }
      for (;;) {
        const res = this.#core.next(input);
        if (res.done) throw new LtxError("LTX_INVALID_STATE", "decoder already finished");
        const y = res.value;
        if (y === NEED_CHUNK) {
          input = await this.#pull();
          continue;
        }
        switch (y.kind) {
          case "header":
            this.#header = y.header;
            break;
          case "pagesEnd":
            this.#pagesEnded = true;
            break;
          case "end":
            this.#end = { trailer: y.trailer, pageIndex: y.pageIndex };
            break;
          case "page":
            break;
        }
        return y;
      }
    } catch (err) {
      this.#hasFailed = true;
      this.#failed = err;
      await this.#closeSource();
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  async #pull(): Promise<Uint8Array | null> {
    if (this.#sourceDone) return null;
    const res = await this.#iter.next();
    if (res.done) {
      this.#sourceDone = true;
      return null;
    }
    const chunk: unknown = res.value;
    if (!(chunk instanceof Uint8Array))
      throw invalidArgument("LtxDecoder source yielded a non-Uint8Array chunk");
    return chunk;
  }

  async #closeSource(): Promise<void> {
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    try {
      await this.#iter.return?.();
    } catch {
      // Closing is best effort; the original error (if any) matters more.
    }
  }
}

/** Decodes and fully verifies an in-memory LTX file. */
export function decodeLtx(
  bytes: Uint8Array,
  opts?: LtxDecoderOptions,
): { header: LtxHeader; pages: LtxPage[]; trailer: LtxTrailer; pageIndex: PageIndexEntry[] } {
  if (!(bytes instanceof Uint8Array)) throw invalidArgument("decodeLtx expects a Uint8Array");
  const core = decodeCore(new ChunkReader(), resolveMaxPageSize(opts));
  let header: LtxHeader | undefined;
  const pages: LtxPage[] = [];
  let sent = false;
  let input: ChunkInput;
  for (;;) {
    const res = core.next(input);
    input = undefined;
    if (res.done) break;
    const y = res.value;
    if (y === NEED_CHUNK) {
      input = sent ? null : bytes;
      sent = true;
      continue;
    }
    if (y.kind === "header") header = y.header;
    else if (y.kind === "page") pages.push(y.page);
    else if (y.kind === "end") {
      if (header === undefined) break;
      return { header, pages, trailer: y.trailer, pageIndex: y.pageIndex };
    }
  }
  throw new LtxError("LTX_INVALID_STATE", "decoder ended without a trailer");
}
