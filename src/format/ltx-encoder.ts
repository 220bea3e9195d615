import { lockPgno } from "./checksum.js";
import {
  CHECKSUM_FLAG,
  LTX_INDEX_SIZE_FIELD_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_PAGE_SIZE_PREFIX_SIZE,
  LTX_TRAILER_SIZE,
  PAGE_HEADER_FLAG_SIZE,
} from "./constants.js";
import { Crc64, Crc64Combiner } from "./crc64.js";
import { type LtxCompat, resolveLtxCompat } from "./ltx-compat.js";
import { invalidArgument, LtxError } from "./ltx-error.js";
import {
  encodeLtxHeader,
  hasNoChecksum,
  isSnapshotHeader,
  type LtxHeader,
  type LtxTrailer,
  ltxTrailerProblem,
} from "./ltx-header.js";
import { lz4CompressBound, lz4CompressInto } from "./lz4-block.js";
import { lz4FrameBound, lz4FrameEncodeInto } from "./lz4-frame.js";
import { PageIndexEntries, type PageIndexEntry } from "./page-index.js";

/** Header fields an encoder needs; the rest default to 0 (0n for bigints). */
export type LtxHeaderInit = Pick<LtxHeader, "pageSize" | "commit" | "minTXID" | "maxTXID"> &
  Partial<Omit<LtxHeader, "pageSize" | "commit" | "minTXID" | "maxTXID">>;

/** Fills defaults of a {@link LtxHeaderInit}. */
export function completeLtxHeader(init: LtxHeaderInit): LtxHeader {
  return {
    flags: init.flags ?? 0,
    pageSize: init.pageSize,
    commit: init.commit,
    minTXID: init.minTXID,
    maxTXID: init.maxTXID,
    timestamp: init.timestamp ?? 0,
    preApplyChecksum: init.preApplyChecksum ?? 0n,
    walOffset: init.walOffset ?? 0,
    walSize: init.walSize ?? 0,
    walSalt1: init.walSalt1 ?? 0,
    walSalt2: init.walSalt2 ?? 0,
    nodeID: init.nodeID ?? 0n,
  };
}

type State = "header" | "pages" | "finished";

/** Options of {@link LtxEncoder} and {@link encodeLtx}. */
export interface LtxEncoderOptions {
  /**
   * Page encoding, named by the oldest superfly/ltx release that must read
   * the file (see `LtxCompat`): `"0.5.2"` (default) writes LZ4 blocks with a
   * size prefix, `"0.5.1"` LZ4 frames, which Litestream 0.5.0-0.5.15 need.
   */
  compat?: LtxCompat;
}

/**
 * Streaming LTX writer. Returns the file as a sequence of byte chunks (header,
 * one chunk per page frame, then the tail) that the caller writes anywhere
 * (file, multipart upload). Memory stays at one page plus the page index; the
 * file checksum is computed as bytes are produced.
 *
 * Enforces what superfly/ltx's encoder enforces: pages strictly ascending,
 * within `commit`, never the lock page, exactly `pageSize` bytes; snapshots
 * start at page 1 and are contiguous (skipping the lock page). `finish`
 * additionally requires snapshots to be complete up to `commit`, and checks a
 * snapshot's post-apply checksum against its pages when checksums are tracked.
 */
export class LtxEncoder {
  /** The (validated) header being written. */
  readonly header: LtxHeader;
  readonly #crc = new Crc64();
  readonly #index = new PageIndexEntries();
  readonly #lockPgno: number;
  readonly #scratch: Uint8Array;
  readonly #trackSnapshotChecksum: boolean;
  readonly #combiner: Crc64Combiner;
  readonly #pageCrc = new Crc64();
  readonly #pgnoCrc = new Crc64();
  #sumHi = 0;
  #sumLo = 0;
  #dbHi = 0;
  #dbLo = 0;
  #state: State = "header";
  #prevPgno = 0;
  #bytes = 0;
  #trailer: LtxTrailer | undefined;
  #pageIndexCache: PageIndexEntry[] | undefined;
  /** The page encoding this file uses. */
  readonly compat: LtxCompat;
  readonly #frames: boolean;

  /** Validates the header and options (`LTX_INVALID_ARGUMENT` when invalid). */
  constructor(header: LtxHeaderInit, options: LtxEncoderOptions = {}) {
    if (header === null || typeof header !== "object")
      throw invalidArgument("header must be an object");
    this.header = completeLtxHeader(header);
    // encodeLtxHeader validates; done once here so errors surface at construction.
    encodeLtxHeader(this.header);
    this.compat = resolveLtxCompat(options?.compat);
    this.#frames = this.compat === "0.5.1";
    this.#lockPgno = lockPgno(this.header.pageSize);
    this.#scratch = new Uint8Array(
      this.#frames ? lz4FrameBound(this.header.pageSize) : lz4CompressBound(this.header.pageSize),
    );
    this.#trackSnapshotChecksum = isSnapshotHeader(this.header) && !hasNoChecksum(this.header);
    this.#combiner = Crc64Combiner.for(this.header.pageSize);
  }

  /** Returns the 100 header bytes. Must be called first, exactly once. */
  headerBytes(): Uint8Array {
    if (this.#state !== "header")
      throw this.#stateError("headerBytes() must be called once, first");
    const b = encodeLtxHeader(this.header);
    this.#crc.update(b);
    this.#bytes += b.length;
    this.#state = "pages";
    return b;
  }

  /**
   * Compresses one page and returns its frame (page header, then an LZ4 block
   * behind its size, or with `compat: "0.5.1"` an LZ4 frame). Page numbers
   * must be strictly ascending.
   */
  encodePage(pgno: number, page: Uint8Array): Uint8Array {
    if (this.#state !== "pages") {
      throw this.#stateError(
        this.#state === "header" ? "call headerBytes() before encodePage()" : "encoder is finished",
      );
    }
    const h = this.header;
    if (!Number.isInteger(pgno) || pgno < 1)
      throw invalidArgument(`invalid page number: ${String(pgno)}`);
    if (pgno > h.commit)
      throw invalidArgument(`page ${pgno} is beyond the commit size ${h.commit}`);
    if (!(page instanceof Uint8Array) || page.length !== h.pageSize) {
      throw invalidArgument(`page ${pgno} must be a Uint8Array of ${h.pageSize} bytes`);
    }
    if (pgno === this.#lockPgno) throw invalidArgument(`cannot encode the lock page (${pgno})`);
    if (pgno <= this.#prevPgno) {
      throw invalidArgument(
        `page numbers must be strictly ascending: ${this.#prevPgno} then ${pgno}`,
      );
    }
    if (isSnapshotHeader(h) && pgno !== this.#nextSnapshotPgno()) {
      throw invalidArgument(
        `snapshot pages must be contiguous from 1: expected ${this.#nextSnapshotPgno()}, got ${pgno}`,
      );
    }

    let frame: Uint8Array;
    let hashed: number;
    if (this.#frames) {
      // Legacy: flags 0 and an LZ4 frame, whose end the frame itself marks.
      const flen = lz4FrameEncodeInto(page, this.#scratch);
      frame = new Uint8Array(LTX_PAGE_HEADER_SIZE + flen);
      frame.set(this.#scratch.subarray(0, flen), LTX_PAGE_HEADER_SIZE);
      hashed = LTX_PAGE_HEADER_SIZE;
    } else {
      const clen = lz4CompressInto(page, this.#scratch);
      frame = new Uint8Array(LTX_PAGE_HEADER_SIZE + LTX_PAGE_SIZE_PREFIX_SIZE + clen);
      frame[5] = PAGE_HEADER_FLAG_SIZE;
      frame[6] = clen >>> 24;
      frame[7] = clen >>> 16;
      frame[8] = clen >>> 8;
      frame[9] = clen;
      frame.set(this.#scratch.subarray(0, clen), 10);
      hashed = LTX_PAGE_HEADER_SIZE + LTX_PAGE_SIZE_PREFIX_SIZE;
    }
    frame[0] = pgno >>> 24;
    frame[1] = pgno >>> 16;
    frame[2] = pgno >>> 8;
    frame[3] = pgno;
    // The file checksum covers header + size prefix (when present) as stored,
    // then the page uncompressed; one CRC pass over the page also gives its
    // page checksum.
    const pc = this.#pageCrc;
    pc.reset();
    pc.update(page);
    this.#crc.update(frame, 0, hashed);
    this.#combiner.append(this.#crc, pc.hi, pc.lo);
    this.#pgnoCrc.reset();
    this.#pgnoCrc.updateU32BE(pgno);
    this.#combiner.shift(this.#pgnoCrc.hi, this.#pgnoCrc.lo);
    this.#sumHi = ((this.#combiner.hi ^ pc.hi) | 0x80000000) >>> 0;
    this.#sumLo = (this.#combiner.lo ^ pc.lo) >>> 0;
    if (this.#trackSnapshotChecksum) {
      this.#dbHi ^= this.#sumHi;
      this.#dbLo ^= this.#sumLo;
    }
    this.#index.push(pgno, this.#bytes, frame.length);
    this.#bytes += frame.length;
    this.#prevPgno = pgno;
    return frame;
  }

  #nextSnapshotPgno(): number {
    const next = this.#prevPgno + 1;
    return next === this.#lockPgno ? next + 1 : next;
  }

  /**
   * Ends the file: returns the zero page header, the page index and the trailer.
   * `postApplyChecksum` is the database checksum after applying this file
   * (0n when the header has the NoChecksum flag).
   */
  finish(postApplyChecksum: bigint): Uint8Array {
    if (this.#state !== "pages") {
      throw this.#stateError(
        this.#state === "header" ? "call headerBytes() first" : "encoder is already finished",
      );
    }
    const h = this.header;
    if (typeof postApplyChecksum !== "bigint")
      throw invalidArgument("postApplyChecksum must be a bigint");
    const problem = ltxTrailerProblem({ postApplyChecksum, fileChecksum: CHECKSUM_FLAG }, h);
    if (problem !== undefined) throw invalidArgument(`invalid trailer: ${problem}`);
    if (isSnapshotHeader(h)) {
      const last = h.commit === this.#lockPgno ? h.commit - 1 : h.commit;
      if (this.#prevPgno !== last) {
        throw invalidArgument(
          `snapshot is incomplete: pages end at ${this.#prevPgno}, commit is ${h.commit}`,
        );
      }
      if (this.#trackSnapshotChecksum) {
        const actual = (BigInt((this.#dbHi | 0x80000000) >>> 0) << 32n) | BigInt(this.#dbLo >>> 0);
        if (actual !== postApplyChecksum) {
          throw new LtxError(
            "LTX_CHECKSUM_MISMATCH",
            `snapshot post-apply checksum ${hex(postApplyChecksum)} does not match its pages (${hex(actual)})`,
          );
        }
      }
    }
    if (h.commit === 0 && !hasNoChecksum(h) && postApplyChecksum !== CHECKSUM_FLAG) {
      throw invalidArgument(
        "post-apply checksum must be the empty checksum for a zero-length database",
      );
    }

    const varintLen = this.#index.varintLength();
    const out = new Uint8Array(
      LTX_PAGE_HEADER_SIZE + varintLen + LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE,
    );
    let p = LTX_PAGE_HEADER_SIZE; // zero page header
    p = this.#index.encodeInto(out, p, varintLen);
    const dv = new DataView(out.buffer);
    dv.setBigUint64(p, postApplyChecksum);
    this.#crc.update(out, 0, p + 8);
    const fileChecksum = this.#crc.value | CHECKSUM_FLAG;
    dv.setBigUint64(p + 8, fileChecksum);
    this.#bytes += out.length;
    this.#trailer = { postApplyChecksum, fileChecksum };
    this.#state = "finished";
    return out;
  }

  /** The page index so far (complete after `finish`). */
  get pageIndex(): PageIndexEntry[] {
    if (this.#state === "finished") {
      this.#pageIndexCache ??= this.#index.toArray();
      return this.#pageIndexCache;
    }
    return this.#index.toArray();
  }

  /**
   * Page checksum (see `pageChecksum`) of the page last encoded, as uint32
   * halves: computed in the same pass as the file checksum.
   */
  get lastPageChecksumHi(): number {
    return this.#sumHi;
  }

  /** Low half of {@link lastPageChecksumHi}'s checksum. */
  get lastPageChecksumLo(): number {
    return this.#sumLo;
  }

  /** The first page's index entry (cheap: no copy of the whole index). */
  get firstPage(): PageIndexEntry | undefined {
    return this.#index.count === 0
      ? undefined
      : { pgno: this.#index.pgno(0), offset: this.#index.offset(0), size: this.#index.size(0) };
  }

  /** Number of pages encoded so far. */
  get pageCount(): number {
    return this.#index.count;
  }

  /** Total bytes returned so far. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /** The trailer, once `finish` returned. */
  get trailer(): LtxTrailer | undefined {
    return this.#trailer;
  }

  #stateError(msg: string): LtxError {
    return new LtxError("LTX_INVALID_STATE", msg);
  }
}

function hex(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/** Encodes a whole LTX file in memory (convenience over {@link LtxEncoder}). */
export function encodeLtx(opts: {
  header: LtxHeaderInit;
  pages: Iterable<{ pgno: number; data: Uint8Array }>;
  postApplyChecksum: bigint;
  /** Page encoding (default `"0.5.2"`), see {@link LtxEncoderOptions}. */
  compat?: LtxCompat;
}): Uint8Array {
  const enc = new LtxEncoder(opts.header, opts.compat !== undefined ? { compat: opts.compat } : {});
  const parts: Uint8Array[] = [enc.headerBytes()];
  for (const p of opts.pages) parts.push(enc.encodePage(p.pgno, p.data));
  parts.push(enc.finish(opts.postApplyChecksum));
  const out = new Uint8Array(enc.bytesWritten);
  let off = 0;
  for (const part of parts) {
    out.set(part, off);
    off += part.length;
  }
  return out;
}
