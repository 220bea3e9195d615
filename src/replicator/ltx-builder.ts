/**
 * Collects an {@link LtxEncoder}'s output into one body (what a put needs)
 * and records where the page index sits, for the head object.
 */
import {
  HEADER_FLAG_NO_CHECKSUM,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  LtxEncoder,
  type LtxHeader,
  type LtxHeaderInit,
} from "../format/index.js";

/** An encoded LTX file ready for upload. */
export interface EncodedLtx {
  header: LtxHeader;
  bytes: Uint8Array;
  /** Offset of the page-index varints. */
  indexOffset: number;
  /** Size of the page-index section including its 8-byte size field (ends at the trailer). */
  indexSize: number;
  pageCount: number;
  /** Where page 1's frame is, when the file holds page 1 (the head names it for readers). */
  page1?: { offset: number; size: number };
}

/**
 * Builds LTX files the way Litestream 0.5 writes them: with the NoChecksum
 * flag and zero database checksums. Litestream's restore and compaction merge
 * files with that flag and refuse inputs that carry checksums, so this is what
 * keeps pagecast replicas restorable by Litestream. (The head object carries
 * the database checksum instead.)
 */
export class LtxBuilder {
  readonly #enc: LtxEncoder;
  readonly #chunks: Uint8Array[] = [];

  constructor(header: Omit<LtxHeaderInit, "flags" | "preApplyChecksum">) {
    this.#enc = new LtxEncoder({ ...header, flags: HEADER_FLAG_NO_CHECKSUM, preApplyChecksum: 0n });
    this.#chunks.push(this.#enc.headerBytes());
  }

  /** Adds a page (strictly ascending page numbers, never the lock page). */
  page(pgno: number, data: Uint8Array): void {
    this.#chunks.push(this.#enc.encodePage(pgno, data));
  }

  /** Finishes and concatenates the file. */
  finish(): EncodedLtx {
    const before = this.#enc.bytesWritten;
    this.#chunks.push(this.#enc.finish(0n));
    const size = this.#enc.bytesWritten;
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const c of this.#chunks) {
      bytes.set(c, off);
      off += c.length;
    }
    this.#chunks.length = 0;
    const indexOffset = before + LTX_PAGE_HEADER_SIZE;
    // Pages are in ascending order: page 1, when present, is the first frame.
    const first = this.#enc.pageIndex[0];
    return {
      ...(first?.pgno === 1 ? { page1: { offset: first.offset, size: first.size } } : {}),
      header: this.#enc.header,
      bytes,
      indexOffset,
      indexSize: size - LTX_TRAILER_SIZE - indexOffset,
      pageCount: this.#enc.pageCount,
    };
  }
}
