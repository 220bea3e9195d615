/**
 * Applying LTX files to a database image: what `ltx apply` and restore do.
 * The target is any random-access byte store supplied by the caller (a file
 * handle in Node, a growable buffer, ...), so this module stays free of
 * `node:` imports.
 */
import { isValidPageSize, lockPgno, pageChecksumInto } from "./checksum.js";
import { MAX_PAGE_COUNT, MAX_PAGE_SIZE } from "./constants.js";
import { LtxDecoder } from "./ltx-decoder.js";
import { invalidArgument, LtxError } from "./ltx-error.js";
import { hasNoChecksum, isSnapshotHeader, type LtxHeader, type LtxTrailer } from "./ltx-header.js";
import { isValidTxid } from "./txid.js";

/** A random-access database image the applier writes to. */
export interface ApplyTarget {
  /** Writes `bytes` at `offset` (growing the target if needed). */
  write(offset: number, bytes: Uint8Array): void | Promise<void>;
  /** Sets the size exactly: shrinks, or grows with zero bytes (like ftruncate). */
  truncate(size: number): void | Promise<void>;
  /**
   * Reads up to `length` bytes at `offset` (fewer at the end). Only needed by
   * {@link LtxApplier.resume} to checksum an existing database.
   */
  read?(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
}

/** Where the database image stands after the files applied so far. */
export interface ApplyPosition {
  /** MaxTXID of the last applied file. */
  txid: number;
  pageSize: number;
  /** Database size in pages. */
  commit: number;
  /**
   * Database checksum of the image (computed from the pages when
   * `verifyChecksums` is on, else the last trailer's claim; 0n for NoChecksum
   * files when not verifying).
   */
  checksum: bigint;
}

/** Outcome of applying one LTX file. */
export interface ApplyResult {
  header: LtxHeader;
  trailer: LtxTrailer;
  /** Number of pages written. */
  pageCount: number;
  position: ApplyPosition;
}

/** One LTX file to apply: its byte chunks, or a decoder that has not been read yet. */
export type LtxSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | LtxDecoder;

/** Options of {@link LtxApplier}. */
export interface LtxApplierOptions {
  /**
   * Track per-page checksums (about 8 bytes of memory per page written;
   * unwritten pages are zero pages, accounted for arithmetically) to verify
   * pre-apply and post-apply checksums exactly. Default true.
   */
  verifyChecksums?: boolean;
  /** Largest page size accepted (default 65536). */
  maxPageSize?: number;
}

/**
 * Checksums of all-zero pages, derived arithmetically: for a fixed page size
 * the page checksum is CRC-64 of (pgno ‖ zeros), and a CRC of a fixed-length
 * message is affine in its bits, so checksum(pgno) = c ⊕ XOR of b[i] over the
 * set bits i of pgno. That turns the XOR over a range of page numbers into a
 * parity count per bit: O(32) whatever the range, instead of one page CRC per
 * page (a grown database's unwritten pages read back as zeros).
 */
class ZeroPageChecksums {
  readonly #lock: number;
  readonly #page: Uint8Array;
  /** Index 0: checksum of page number 0; 1 + i: the contribution of bit i. */
  #hi: Uint32Array | undefined;
  #lo: Uint32Array | undefined;

  constructor(pageSize: number) {
    this.#lock = lockPgno(pageSize);
    this.#page = new Uint8Array(pageSize);
  }

  #init(): [Uint32Array, Uint32Array] {
    if (this.#hi !== undefined && this.#lo !== undefined) return [this.#hi, this.#lo];
    const hi = new Uint32Array(33);
    const lo = new Uint32Array(33);
    const pair = new Uint32Array(2);
    pageChecksumInto(0, this.#page, pair);
    hi[0] = pair[0]!;
    lo[0] = pair[1]!;
    for (let i = 0; i < 32; i++) {
      pageChecksumInto(2 ** i, this.#page, pair);
      hi[i + 1] = (pair[0]! ^ hi[0]) >>> 0;
      lo[i + 1] = (pair[1]! ^ lo[0]) >>> 0;
    }
    this.#hi = hi;
    this.#lo = lo;
    return [hi, lo];
  }

  /** Checksum of zero page `pgno` into `out` (0 for the lock page, which never counts). */
  page(pgno: number, out: Uint32Array): void {
    if (pgno === this.#lock) {
      out[0] = 0;
      out[1] = 0;
      return;
    }
    const [hi, lo] = this.#init();
    let h = hi[0]!;
    let l = lo[0]!;
    for (let i = 0; i < 32; i++) {
      if (Math.floor(pgno / 2 ** i) % 2 === 1) {
        h ^= hi[i + 1]!;
        l ^= lo[i + 1]!;
      }
    }
    out[0] = h >>> 0;
    out[1] = l >>> 0;
  }

  /** XOR of the zero-page checksums of pages [first, last] (lock page excluded) into `out`. */
  range(first: number, last: number, out: Uint32Array): void {
    if (last < first) {
      out[0] = 0;
      out[1] = 0;
      return;
    }
    const [hi, lo] = this.#init();
    let h = 0;
    let l = 0;
    if ((last - first + 1) % 2 === 1) {
      h = hi[0]!;
      l = lo[0]!;
    }
    for (let i = 0; i < 32; i++) {
      if ((setBitCount(last, i) - setBitCount(first - 1, i)) % 2 === 1) {
        h ^= hi[i + 1]!;
        l ^= lo[i + 1]!;
      }
    }
    if (this.#lock >= first && this.#lock <= last) {
      // range() counted the lock page as an ordinary zero page: take it back out.
      const pair = new Uint32Array(2);
      pageChecksumInto(this.#lock, this.#page, pair);
      h ^= pair[0]!;
      l ^= pair[1]!;
    }
    out[0] = h >>> 0;
    out[1] = l >>> 0;
  }
}

/** How many integers in [0, x] have bit `i` set (x >= -1; exact below 2^53). */
function setBitCount(x: number, i: number): number {
  if (x < 0) return 0;
  const half = 2 ** i;
  const period = half * 2;
  const full = Math.floor((x + 1) / period);
  return full * half + Math.max(0, x + 1 - full * period - half);
}

/** Pages per chunk of {@link PageChecksumTable}: 2 KiB of checksums. */
const CHUNK_PAGES = 256;

/**
 * Per-page checksums of an image of `size` pages, with their running XOR.
 * Only pages actually written (or read back by resume) are stored, in 2 KiB
 * chunks allocated on first use, so memory follows the pages seen, never a
 * file's size claim; every other page is an all-zero page, whose checksum
 * {@link ZeroPageChecksums} derives arithmetically. High half 0 = absent (a
 * real page checksum always has bit 63 set).
 */
class PageChecksumTable {
  readonly #chunks = new Map<number, { hi: Uint32Array; lo: Uint32Array }>();
  readonly #pair = new Uint32Array(2);
  #zero: ZeroPageChecksums | undefined;
  /** Image size in pages covered by the running XOR. */
  #size = 0;
  #xhi = 0;
  #xlo = 0;

  /** Empties the table for an image of `pageSize`-byte pages. */
  reset(pageSize: number): void {
    this.#chunks.clear();
    this.#size = 0;
    this.#xhi = 0;
    this.#xlo = 0;
    if (this.#zero === undefined || this.#zeroPageSize !== pageSize) {
      this.#zero = new ZeroPageChecksums(pageSize);
      this.#zeroPageSize = pageSize;
    }
  }
  #zeroPageSize = 0;

  #zeros(): ZeroPageChecksums {
    if (this.#zero === undefined) throw new LtxError("LTX_INVALID_STATE", "page size not set");
    return this.#zero;
  }

  #toggle(h: number, l: number): void {
    this.#xhi = (this.#xhi ^ h) >>> 0;
    this.#xlo = (this.#xlo ^ l) >>> 0;
  }

  /** Records page `pgno`'s checksum, growing the image to `pgno` pages if needed. */
  set(pgno: number, h: number, l: number): void {
    const key = Math.floor(pgno / CHUNK_PAGES);
    const i = pgno - key * CHUNK_PAGES;
    let chunk = this.#chunks.get(key);
    if (pgno > this.#size) {
      // Grow to pgno - 1 (zero pages), then add pgno itself: no old value to remove.
      this.resize(pgno - 1);
      this.#size = pgno;
    } else if (chunk !== undefined && chunk.hi[i] !== 0) {
      this.#toggle(chunk.hi[i]!, chunk.lo[i]!);
    } else {
      this.#zeros().page(pgno, this.#pair);
      this.#toggle(this.#pair[0]!, this.#pair[1]!);
    }
    if (chunk === undefined) {
      chunk = { hi: new Uint32Array(CHUNK_PAGES), lo: new Uint32Array(CHUNK_PAGES) };
      this.#chunks.set(key, chunk);
    }
    chunk.hi[i] = h;
    chunk.lo[i] = l;
    this.#toggle(h, l);
  }

  /**
   * Sets the image size: pages past a smaller size are dropped, pages added
   * by a larger one are zero pages. Work is O(stored chunks), not O(size).
   */
  resize(size: number): void {
    const zeros = this.#zeros();
    if (size > this.#size) {
      zeros.range(this.#size + 1, size, this.#pair);
      this.#toggle(this.#pair[0]!, this.#pair[1]!);
    } else if (size < this.#size) {
      for (const [key, chunk] of this.#chunks) {
        const base = key * CHUNK_PAGES;
        if (base + CHUNK_PAGES - 1 <= size) continue;
        // Stored pages past the new size turn back into zero pages first...
        for (let i = Math.max(0, size + 1 - base); i < CHUNK_PAGES; i++) {
          if (chunk.hi[i] === 0) continue;
          zeros.page(base + i, this.#pair);
          this.#toggle(chunk.hi[i]! ^ this.#pair[0]!, chunk.lo[i]! ^ this.#pair[1]!);
          chunk.hi[i] = 0;
          chunk.lo[i] = 0;
        }
        if (base > size) this.#chunks.delete(key);
      }
      // ...then all zero pages past it are removed at once.
      zeros.range(size + 1, this.#size, this.#pair);
      this.#toggle(this.#pair[0]!, this.#pair[1]!);
    }
    this.#size = size;
  }

  get value(): bigint {
    return (BigInt((this.#xhi | 0x80000000) >>> 0) << 32n) | BigInt(this.#xlo >>> 0);
  }
}

/**
 * Applies a chain of LTX files to a target, checking that the chain is sound:
 * the first file is a snapshot (unless {@link resume} was used), each next file
 * starts right after the previous one (`minTXID === prev.maxTXID + 1`), the
 * page size never changes, pre-apply checksums match the image and post-apply
 * checksums match after applying (when checksums are tracked and verified).
 *
 * Pages are written while the file streams in and the file checksum is only
 * known at its end, so after any error the target's contents are undefined and
 * the applier refuses further files.
 */
export class LtxApplier {
  readonly #target: ApplyTarget;
  readonly #verify: boolean;
  readonly #maxPageSize: number;
  readonly #table = new PageChecksumTable();
  readonly #pair = new Uint32Array(2);
  #position: ApplyPosition | undefined;
  #broken: unknown;
  #isBroken = false;
  #busy = false;

  constructor(target: ApplyTarget, opts?: LtxApplierOptions) {
    if (
      target === null ||
      typeof target !== "object" ||
      typeof target.write !== "function" ||
      typeof target.truncate !== "function"
    ) {
      throw invalidArgument("apply target needs write() and truncate()");
    }
    this.#target = target;
    this.#verify = opts?.verifyChecksums ?? true;
    this.#maxPageSize = opts?.maxPageSize ?? MAX_PAGE_SIZE;
  }

  /** The position after the last applied file (undefined before the first). */
  get position(): ApplyPosition | undefined {
    return this.#position === undefined ? undefined : { ...this.#position };
  }

  /**
   * Continues from an existing image instead of a snapshot. With checksum
   * verification on, the image is read back (needs `target.read`) to build
   * the per-page checksums; `position.checksum`, when given, must match it.
   */
  async resume(position: {
    txid: number;
    pageSize: number;
    commit: number;
    checksum?: bigint;
  }): Promise<void> {
    this.#enter();
    try {
      if (this.#position !== undefined)
        throw new LtxError("LTX_INVALID_STATE", "resume() must come first");
      const { txid, pageSize, commit } = position;
      if (!isValidTxid(txid)) throw invalidArgument(`invalid txid: ${String(txid)}`);
      if (!isValidPageSize(pageSize))
        throw invalidArgument(`invalid page size: ${String(pageSize)}`);
      if (!Number.isInteger(commit) || commit < 0 || commit > MAX_PAGE_COUNT) {
        throw invalidArgument(`invalid commit: ${String(commit)}`);
      }
      let checksum = position.checksum ?? 0n;
      if (this.#verify) {
        const read = this.#target.read;
        if (typeof read !== "function") {
          throw invalidArgument("resume() with verifyChecksums needs target.read()");
        }
        this.#table.reset(pageSize);
        const lock = lockPgno(pageSize);
        const batch = Math.max(1, Math.floor((1 << 20) / pageSize));
        const page = new Uint8Array(pageSize);
        for (let first = 1; first <= commit; first += batch) {
          const n = Math.min(batch, commit - first + 1);
          const bytes = await read.call(this.#target, (first - 1) * pageSize, n * pageSize);
          if (!(bytes instanceof Uint8Array))
            throw invalidArgument("target.read() must return a Uint8Array");
          for (let i = 0; i < n; i++) {
            const pgno = first + i;
            if (pgno === lock) continue;
            // Bytes past the end of the image read as zeros (like a sparse file).
            page.fill(0);
            const s = i * pageSize;
            if (s < bytes.length) page.set(bytes.subarray(s, Math.min(s + pageSize, bytes.length)));
            pageChecksumInto(pgno, page, this.#pair);
            this.#table.set(pgno, this.#pair[0]!, this.#pair[1]!);
          }
        }
        this.#table.resize(commit);
        const actual = this.#table.value;
        if (position.checksum !== undefined && position.checksum !== actual) {
          throw new LtxError(
            "LTX_CHECKSUM_MISMATCH",
            "database checksum does not match the given position",
          );
        }
        checksum = actual;
      }
      this.#position = { txid, pageSize, commit, checksum };
    } finally {
      this.#busy = false;
    }
  }

  /** Applies one LTX file; returns its header, trailer and the new position. */
  async apply(source: LtxSource): Promise<ApplyResult> {
    this.#enter();
    try {
      return await this.#apply(source);
    } catch (err) {
      this.#isBroken = true;
      this.#broken = err;
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  #enter(): void {
    if (this.#isBroken) {
      throw new LtxError(
        "LTX_INVALID_STATE",
        "an earlier apply failed; the target is inconsistent",
        {
          cause: this.#broken,
        },
      );
    }
    if (this.#busy) throw new LtxError("LTX_INVALID_STATE", "concurrent calls on one LtxApplier");
    this.#busy = true;
  }

  async #apply(source: LtxSource): Promise<ApplyResult> {
    const dec =
      source instanceof LtxDecoder
        ? source
        : new LtxDecoder(source, { maxPageSize: this.#maxPageSize });
    try {
      return await this.#applyDecoded(dec);
    } catch (err) {
      await dec.cancel();
      throw err;
    }
  }

  async #applyDecoded(dec: LtxDecoder): Promise<ApplyResult> {
    const header = await dec.readHeader();
    const pos = this.#position;
    const snapshot = isSnapshotHeader(header);
    const tracked = !hasNoChecksum(header);
    if (pos === undefined) {
      if (!snapshot) {
        throw new LtxError(
          "LTX_NOT_CONTIGUOUS",
          `first file must be a snapshot, got TXIDs ${header.minTXID}-${header.maxTXID}`,
        );
      }
    } else {
      if (header.minTXID !== pos.txid + 1) {
        throw new LtxError(
          "LTX_NOT_CONTIGUOUS",
          `file starts at TXID ${header.minTXID}, expected ${pos.txid + 1}`,
        );
      }
      if (header.pageSize !== pos.pageSize) {
        throw new LtxError(
          "LTX_NOT_CONTIGUOUS",
          `page size changed from ${pos.pageSize} to ${header.pageSize}`,
        );
      }
      if (this.#verify && tracked && header.preApplyChecksum !== this.#table.value) {
        throw new LtxError(
          "LTX_CHECKSUM_MISMATCH",
          "pre-apply checksum does not match the database",
        );
      }
    }

    const { pageSize, commit } = header;
    if (commit > MAX_PAGE_COUNT) {
      // Checked before any work: nothing here may be sized by this claim.
      throw new LtxError(
        "LTX_CORRUPT",
        `commit ${commit} exceeds SQLite's maximum page count ${MAX_PAGE_COUNT}`,
      );
    }
    if (snapshot) {
      await this.#target.truncate(0);
      this.#table.reset(pageSize);
    }
    let pageCount = 0;
    for await (const page of dec.pages()) {
      if (!page.stored) {
        await this.#target.write((page.pgno - 1) * pageSize, page.data);
      } else if (page.checksumHi === undefined || page.checksumLo === undefined) {
        throw new LtxError(
          "LTX_INVALID_STATE",
          `page ${page.pgno} was written by the decoder without its checksum`,
        );
      }
      if (this.#verify) {
        if (page.checksumHi !== undefined && page.checksumLo !== undefined) {
          // The decoder computed it with the file checksum, in the same pass.
          this.#table.set(page.pgno, page.checksumHi, page.checksumLo);
        } else {
          pageChecksumInto(page.pgno, page.data, this.#pair);
          this.#table.set(page.pgno, this.#pair[0]!, this.#pair[1]!);
        }
      }
      pageCount++;
    }
    const { trailer } = await dec.finish();
    await this.#target.truncate(commit * pageSize);

    let checksum = tracked ? trailer.postApplyChecksum : 0n;
    if (this.#verify) {
      // Pages the database grew by without being written read back as zeros;
      // the table accounts for them arithmetically, whatever their number.
      this.#table.resize(commit);
      checksum = this.#table.value;
      if (tracked && checksum !== trailer.postApplyChecksum) {
        throw new LtxError(
          "LTX_CHECKSUM_MISMATCH",
          "post-apply checksum does not match the database",
        );
      }
    }
    this.#position = { txid: header.maxTXID, pageSize, commit, checksum };
    return { header, trailer, pageCount, position: { ...this.#position } };
  }
}

/** Applies LTX files in order to `target` and returns the final position. */
export async function applyLtxFiles(
  target: ApplyTarget,
  sources: Iterable<LtxSource> | AsyncIterable<LtxSource>,
  opts?: LtxApplierOptions,
): Promise<ApplyPosition> {
  const applier = new LtxApplier(target, opts);
  for await (const src of sources) await applier.apply(src);
  const pos = applier.position;
  if (pos === undefined) throw invalidArgument("no LTX files to apply");
  return pos;
}
