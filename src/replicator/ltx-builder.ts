/**
 * Collects an {@link LtxEncoder}'s output into one body (what a put needs),
 * or into a temp file once it grows large (snapshots of big databases), and
 * records where the page index sits, for the head object.
 */
import {
  HEADER_FLAG_NO_CHECKSUM,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  type LtxCompat,
  LtxEncoder,
  type LtxHeader,
  type LtxHeaderInit,
} from "../format/index.js";
import { LtxSpool } from "./ltx-spool.js";
import { ReplicatorError } from "./replicator-error.js";

/** Where an encoded LTX file's parts are (for the head object and readers). */
export interface LtxLayout {
  header: LtxHeader;
  /** Size of the whole file in bytes. */
  size: number;
  /** Offset of the page-index varints. */
  indexOffset: number;
  /** Size of the page-index section including its 8-byte size field (ends at the trailer). */
  indexSize: number;
  pageCount: number;
  /** Where page 1's frame is, when the file holds page 1 (the head names it for readers). */
  page1?: { offset: number; size: number };
}

/** An encoded LTX file held in memory. */
export interface EncodedLtx extends LtxLayout {
  bytes: Uint8Array;
  spool?: undefined;
}

/** An encoded LTX file too large for memory, held in a temp file until uploaded. */
export interface SpooledLtx extends LtxLayout {
  bytes?: undefined;
  spool: LtxSpool;
  /** The file's last 16 bytes (post-apply and file checksums): identify the body. */
  trailer: Uint8Array;
}

/** An encoded LTX file ready for upload, in memory or spooled (see `ltx-upload.ts` to put it). */
export type UploadableLtx = EncodedLtx | SpooledLtx;

/** Options of {@link LtxBuilder}. */
export interface LtxBuilderOptions {
  /**
   * Move the file to a temp file in this directory once it passes
   * `spoolAfter` bytes (default: always in memory).
   */
  spoolDir?: string;
  /** Bytes kept in memory before spooling (default 8 MiB: one single-request upload). */
  spoolAfter?: number;
  /**
   * Page encoding (default `"0.5.2"`, LZ4 blocks); `"0.5.1"` writes the LZ4
   * frames Litestream 0.5.0-0.5.15 read. See `LtxCompat`.
   */
  compat?: LtxCompat;
}

const DEFAULT_SPOOL_AFTER = 8 << 20;

/**
 * Builds LTX files the way Litestream 0.5 writes them: with the NoChecksum
 * flag and zero database checksums. Litestream's restore and compaction merge
 * files with that flag and refuse inputs that carry checksums, so this is what
 * keeps pagecast replicas restorable by Litestream. (The head object carries
 * the database checksum instead.)
 */
export class LtxBuilder {
  readonly #enc: LtxEncoder;
  #chunks: Uint8Array[] = [];
  #spoolDir: string | undefined;
  readonly #spoolAfter: number;
  #spool: LtxSpool | undefined;

  constructor(
    header: Omit<LtxHeaderInit, "flags" | "preApplyChecksum">,
    options: LtxBuilderOptions = {},
  ) {
    this.#enc = new LtxEncoder(
      { ...header, flags: HEADER_FLAG_NO_CHECKSUM, preApplyChecksum: 0n },
      options.compat !== undefined ? { compat: options.compat } : {},
    );
    this.#spoolDir = options.spoolDir;
    this.#spoolAfter = options.spoolAfter ?? DEFAULT_SPOOL_AFTER;
    this.#chunks.push(this.#enc.headerBytes());
  }

  /** Adds a page (strictly ascending page numbers, never the lock page). */
  page(pgno: number, data: Uint8Array): void {
    const frame = this.#enc.encodePage(pgno, data);
    if (this.#spool) {
      this.#spool.append(frame);
      return;
    }
    this.#chunks.push(frame);
    if (this.#spoolDir !== undefined && this.#enc.bytesWritten > this.#spoolAfter) {
      let spool: LtxSpool;
      try {
        spool = new LtxSpool(this.#spoolDir);
      } catch {
        // No temp file possible there (read-only directory, disk full...):
        // the file stays in memory, as it would without a spool directory.
        this.#spoolDir = undefined;
        return;
      }
      this.#spool = spool;
      try {
        for (const c of this.#chunks) spool.append(c);
      } catch (err) {
        this.dispose();
        throw err;
      }
      this.#chunks = [];
    }
  }

  /**
   * Page checksum of the page last added (uint32 halves; see
   * `PageChecksums.setChecksum`), computed along with the file checksum.
   */
  get lastPageChecksumHi(): number {
    return this.#enc.lastPageChecksumHi;
  }

  /** Low half of {@link lastPageChecksumHi}'s checksum. */
  get lastPageChecksumLo(): number {
    return this.#enc.lastPageChecksumLo;
  }

  /** Finishes the file in memory (for builders without a spool directory). */
  finish(): EncodedLtx {
    const enc = this.finishForUpload();
    if (enc.bytes === undefined) {
      enc.spool.dispose();
      throw new ReplicatorError("INVALID_STATE", "a spooled LTX file needs finishForUpload()");
    }
    return enc;
  }

  /** Finishes the file: in memory, or in its spool when it grew past the limit. */
  finishForUpload(): UploadableLtx {
    const before = this.#enc.bytesWritten;
    const tail = this.#enc.finish(0n);
    const size = this.#enc.bytesWritten;
    const indexOffset = before + LTX_PAGE_HEADER_SIZE;
    // Pages are in ascending order: page 1, when present, is the first frame.
    const first = this.#enc.firstPage;
    const layout: LtxLayout = {
      ...(first?.pgno === 1 ? { page1: { offset: first.offset, size: first.size } } : {}),
      header: this.#enc.header,
      size,
      indexOffset,
      indexSize: size - LTX_TRAILER_SIZE - indexOffset,
      pageCount: this.#enc.pageCount,
    };
    const spool = this.#spool;
    if (spool) {
      try {
        spool.append(tail);
        spool.finish();
      } catch (err) {
        this.dispose();
        throw err;
      }
      return { ...layout, spool, trailer: tail.slice(tail.length - LTX_TRAILER_SIZE) };
    }
    this.#chunks.push(tail);
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const c of this.#chunks) {
      bytes.set(c, off);
      off += c.length;
    }
    this.#chunks = [];
    return { ...layout, bytes };
  }

  /** Releases the spool of an unfinished (abandoned) build. */
  dispose(): void {
    this.#spool?.dispose();
    this.#chunks = [];
  }
}
