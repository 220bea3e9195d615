/**
 * Random access to an LTX file through byte-range reads: find the page index
 * from the file's tail, then fetch single frames (see `decodePageFrame`).
 */
import type { ObjectStore } from "../storage/object-store.js";
import { lockPgno } from "./checksum.js";
import {
  LTX_HEADER_SIZE,
  LTX_INDEX_SIZE_FIELD_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  MAX_PAGE_SIZE,
} from "./constants.js";
import { corrupt, invalidArgument, LtxError } from "./ltx-error.js";
import {
  decodeLtxHeader,
  decodeLtxTrailer,
  isSnapshotHeader,
  type LtxHeader,
  type LtxTrailer,
  ltxTrailerProblem,
} from "./ltx-header.js";
import { maxFrameSize } from "./page-frame.js";
import { type PageIndexEntries, parsePageIndex, validatePageIndexEntries } from "./page-index.js";

/** Reads byte ranges of one object. */
export interface RangeReader {
  /**
   * Reads `length` bytes at `offset` (clamped to the end) or the last `suffix`
   * bytes (the whole object when shorter). Returns the bytes, the offset of
   * `bytes[0]` and the object's total size.
   */
  read(
    range: { offset: number; length: number } | { suffix: number },
  ): Promise<{ bytes: Uint8Array; offset: number; totalSize: number }>;
}

/** What {@link readLtxPageIndex} finds. */
export interface LtxPageIndexInfo {
  /** Index entries in ascending page order. */
  entries: PageIndexEntries;
  trailer: LtxTrailer;
  /** Total size of the LTX file. */
  fileSize: number;
  /** Offset of the page index varints (just after the zero page header). */
  indexOffset: number;
  /** Byte size of the index varints including the terminator (the index size field). */
  indexSize: number;
  /** The header, when the suffix read reached offset 0 (small files). */
  header?: LtxHeader;
}

/** Default size of the single suffix read: covers the index of ~5,000 pages. */
export const DEFAULT_SUFFIX_GUESS = 64 * 1024;
/** Smallest suffix read (anything smaller cannot even hold the index size and trailer). */
const MIN_SUFFIX = 64;
/** Index sizes above this are refused (a 1 GiB index would describe a ~100M-page file). */
export const MAX_INDEX_SIZE = 1 << 30;
const TAIL = LTX_INDEX_SIZE_FIELD_SIZE + LTX_TRAILER_SIZE;
/** Smallest possible file: header, zero page header, a lone terminator, size field, trailer. */
const MIN_FILE_SIZE = LTX_HEADER_SIZE + LTX_PAGE_HEADER_SIZE + 1 + TAIL;

function checkResponse(
  res: { bytes: Uint8Array; offset: number; totalSize: number },
  expect: { offset?: number; length: number; totalSize?: number },
): void {
  if (
    res === null ||
    typeof res !== "object" ||
    !(res.bytes instanceof Uint8Array) ||
    !Number.isSafeInteger(res.offset) ||
    !Number.isSafeInteger(res.totalSize) ||
    res.offset < 0 ||
    res.offset + res.bytes.length > res.totalSize
  ) {
    throw corrupt("range read returned an inconsistent response");
  }
  if (expect.totalSize !== undefined && res.totalSize !== expect.totalSize) {
    throw corrupt("LTX object changed size between range reads");
  }
  if (
    res.bytes.length !== expect.length ||
    (expect.offset !== undefined && res.offset !== expect.offset)
  ) {
    throw corrupt("range read returned a different range than requested");
  }
}

/**
 * Locates and validates the page index of an LTX file with one suffix read
 * when the index fits in `suffixGuess` bytes, else a second exact range read.
 * Entries must be ascending, contiguous from the end of the header to the zero
 * page header before the index, with plausible frame sizes; the trailer must be
 * well-formed. When the suffix covered the whole file, the header is decoded
 * too and entries are checked against it (commit, lock page, snapshot
 * completeness). The file checksum is NOT verified (that needs the whole file).
 */
export async function readLtxPageIndex(
  r: RangeReader,
  opts?: { suffixGuess?: number },
): Promise<LtxPageIndexInfo> {
  const guess = opts?.suffixGuess ?? DEFAULT_SUFFIX_GUESS;
  if (!Number.isSafeInteger(guess) || guess < 1)
    throw invalidArgument(`invalid suffixGuess: ${String(guess)}`);
  const suffix = Math.max(guess, MIN_SUFFIX);
  const res = await r.read({ suffix });
  if (
    res === null ||
    typeof res !== "object" ||
    !Number.isSafeInteger(res.totalSize) ||
    res.totalSize < 0
  ) {
    throw corrupt("range read returned an inconsistent response");
  }
  const fileSize = res.totalSize;
  checkResponse(res, {
    offset: fileSize - Math.min(suffix, fileSize),
    length: Math.min(suffix, fileSize),
  });
  if (fileSize < MIN_FILE_SIZE)
    throw new LtxError("LTX_TRUNCATED", `LTX file too small (${fileSize} bytes)`);

  const tail = res.bytes;
  const tailOff = res.offset;
  const trailer = decodeLtxTrailer(tail.subarray(tail.length - LTX_TRAILER_SIZE));
  const sizeField = new DataView(tail.buffer, tail.byteOffset + tail.length - TAIL, 8);
  const hi = sizeField.getUint32(0);
  const lo = sizeField.getUint32(4);
  if (hi !== 0 || lo === 0 || lo > fileSize - (MIN_FILE_SIZE - 1))
    throw corrupt("invalid page index size field");
  const indexSize = lo;
  if (indexSize > MAX_INDEX_SIZE)
    throw new LtxError("LTX_UNSUPPORTED", `page index too large (${indexSize} bytes)`);
  const indexOffset = fileSize - TAIL - indexSize;

  let indexBytes: Uint8Array;
  if (indexOffset >= tailOff) {
    indexBytes = tail.subarray(indexOffset - tailOff, indexOffset - tailOff + indexSize);
  } else {
    const res2 = await r.read({ offset: indexOffset, length: indexSize });
    checkResponse(res2, { offset: indexOffset, length: indexSize, totalSize: fileSize });
    indexBytes = res2.bytes;
  }

  // The zero page header sits right before the index; check it when we have it.
  const zeroAt = indexOffset - LTX_PAGE_HEADER_SIZE;
  if (zeroAt >= tailOff) {
    for (let i = 0; i < LTX_PAGE_HEADER_SIZE; i++) {
      if (tail[zeroAt - tailOff + i] !== 0) throw corrupt("page block terminator is not zero");
    }
  }

  let header: LtxHeader | undefined;
  if (tailOff === 0) header = decodeLtxHeader(tail);

  const problem = ltxTrailerProblem(trailer, header);
  if (problem !== undefined) throw corrupt(`invalid LTX trailer: ${problem}`);

  const entries = parsePageIndex(indexBytes);
  validatePageIndexEntries(entries, indexOffset, maxFrameSize(header?.pageSize ?? MAX_PAGE_SIZE));
  if (header !== undefined) checkEntriesAgainstHeader(entries, header);

  const info: LtxPageIndexInfo = { entries, trailer, fileSize, indexOffset, indexSize };
  if (header !== undefined) info.header = header;
  return info;
}

function checkEntriesAgainstHeader(entries: PageIndexEntries, h: LtxHeader): void {
  const lock = lockPgno(h.pageSize);
  for (let i = 0; i < entries.count; i++) {
    const pgno = entries.pgno(i);
    if (pgno > h.commit) throw corrupt(`page index lists page ${pgno} beyond commit ${h.commit}`);
    if (pgno === lock) throw corrupt("page index lists the lock page");
  }
  if (isSnapshotHeader(h)) {
    const expected = h.commit >= lock ? h.commit - 1 : h.commit;
    if (entries.count !== expected) throw corrupt("snapshot page index does not cover every page");
  }
}

/** A {@link RangeReader} over `store.get(key, { range })`. */
export function storeRangeReader(
  store: ObjectStore,
  key: string,
  opts?: { signal?: AbortSignal },
): RangeReader {
  return {
    async read(range) {
      const res = await store.get(key, opts?.signal ? { range, signal: opts.signal } : { range });
      if (res.notModified) throw corrupt(`unexpected not-modified response for ${key}`);
      return { bytes: res.body, offset: res.offset, totalSize: res.meta.size };
    },
  };
}
