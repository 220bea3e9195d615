/**
 * Applying LTX files to a database image: what `ltx apply` and restore do.
 * The target is any random-access byte store supplied by the caller (a file
 * handle in Node, a growable buffer, ...), so this module stays free of
 * `node:` imports.
 */
import { isValidPageSize, lockPgno, pageChecksumInto } from "./checksum.js";
import { MAX_PAGE_SIZE } from "./constants.js";
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
   * Track per-page checksums (8 bytes of memory per database page) to verify
   * pre-apply and post-apply checksums exactly. Default true.
   */
  verifyChecksums?: boolean;
  /** Largest page size accepted (default 65536). */
  maxPageSize?: number;
}

/**
 * Per-page checksums of the image, as uint32 halves (high half 0 = absent;
 * a real page checksum always has bit 63 set), with their running XOR.
 */
class PageChecksumTable {
  hi = new Uint32Array(0);
  lo = new Uint32Array(0);
  xhi = 0;
  xlo = 0;

  reset(): void {
    this.hi = new Uint32Array(0);
    this.lo = new Uint32Array(0);
    this.xhi = 0;
    this.xlo = 0;
  }

  #ensure(pgno: number): void {
    if (pgno < this.hi.length) return;
    let n = Math.max(1024, this.hi.length);
    while (n <= pgno) n *= 2;
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    hi.set(this.hi);
    lo.set(this.lo);
    this.hi = hi;
    this.lo = lo;
  }

  set(pgno: number, h: number, l: number): void {
    this.#ensure(pgno);
    this.xhi ^= this.hi[pgno]! ^ h;
    this.xlo ^= this.lo[pgno]! ^ l;
    this.hi[pgno] = h;
    this.lo[pgno] = l;
  }

  has(pgno: number): boolean {
    return pgno < this.hi.length && this.hi[pgno] !== 0;
  }

  /** Removes pages in (from, to]. */
  clearRange(from: number, to: number): void {
    const end = Math.min(to, this.hi.length - 1);
    for (let p = from + 1; p <= end; p++) {
      this.xhi ^= this.hi[p]!;
      this.xlo ^= this.lo[p]!;
      this.hi[p] = 0;
      this.lo[p] = 0;
    }
  }

  get value(): bigint {
    return (BigInt((this.xhi | 0x80000000) >>> 0) << 32n) | BigInt(this.xlo >>> 0);
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
      if (!Number.isInteger(commit) || commit < 0 || commit > 0xffffffff) {
        throw invalidArgument(`invalid commit: ${String(commit)}`);
      }
      let checksum = position.checksum ?? 0n;
      if (this.#verify) {
        const read = this.#target.read;
        if (typeof read !== "function") {
          throw invalidArgument("resume() with verifyChecksums needs target.read()");
        }
        this.#table.reset();
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
    const prevCommit = snapshot || pos === undefined ? 0 : pos.commit;
    if (snapshot) {
      await this.#target.truncate(0);
      this.#table.reset();
    }
    let pageCount = 0;
    for await (const page of dec.pages()) {
      await this.#target.write((page.pgno - 1) * pageSize, page.data);
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
      if (commit < prevCommit) this.#table.clearRange(commit, prevCommit);
      // Pages the database grew by without being written read back as zeros.
      const lock = lockPgno(pageSize);
      let zero: Uint8Array | undefined;
      for (let pgno = prevCommit + 1; pgno <= commit; pgno++) {
        if (pgno === lock || this.#table.has(pgno)) continue;
        zero ??= new Uint8Array(pageSize);
        pageChecksumInto(pgno, zero, this.#pair);
        this.#table.set(pgno, this.#pair[0]!, this.#pair[1]!);
      }
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
