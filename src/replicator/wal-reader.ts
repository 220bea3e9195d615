/**
 * Reads the committed frames of a live SQLite WAL file
 * (https://www.sqlite.org/fileformat.html#the_write_ahead_log).
 *
 * Only frames that SQLite's own recovery would accept are returned: same salts
 * as the header, an unbroken cumulative checksum chain, and ending at a commit
 * frame. Frames after the last valid commit frame (a transaction in progress,
 * a rolled-back one, leftovers of an older and longer WAL) are ignored.
 */
import { readSync } from "node:fs";
import { ReplicatorError } from "./replicator-error.js";

/** Size of the WAL file header. */
export const WAL_HEADER_SIZE = 32;
/** Size of each frame header. */
export const WAL_FRAME_HEADER_SIZE = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;
const WAL_VERSION = 3007000;

/** The parsed WAL header. */
export interface WalHeader {
  /** Checksums are computed over big-endian words (magic 0x377f0683) instead of little-endian. */
  bigEndianChecksum: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

/** Where reading stopped: the next frame offset and the checksum chain up to it. */
export interface WalCursor {
  salt1: number;
  salt2: number;
  /** Byte offset of the next frame to read. */
  offset: number;
  /** Cumulative checksum after the last frame before `offset` (the header checksum at offset 32). */
  checksum1: number;
  checksum2: number;
}

/** Committed frames found after a cursor. */
export interface WalSegment {
  /** Where the segment starts (the input cursor's offset). */
  startOffset: number;
  /** Cursor after the last commit frame (equal to the input when nothing new was committed). */
  end: WalCursor;
  /** Latest frame offset of every page written by the committed frames, by page number. */
  pages: Map<number, number>;
  /** Database size in pages after the last commit (0 when no commit frame was found). */
  commit: number;
  /** Number of commit frames (transactions) in the segment. */
  transactions: number;
}

/** Thrown for a WAL that is not usable at all (as opposed to one that merely ends early). */
function walInvalid(message: string): ReplicatorError {
  return new ReplicatorError("WAL_INVALID", `invalid WAL: ${message}`);
}

/**
 * SQLite's WAL checksum (walChecksumBytes): over 32-bit words in the byte
 * order the magic selects, two running sums that each feed the other.
 * `data.length` must be a multiple of 8.
 */
export function walChecksum(
  data: Uint8Array,
  bigEndian: boolean,
  s1: number,
  s2: number,
): [number, number] {
  if (bigEndian === BIG_ENDIAN_PLATFORM && data.byteLength >= WORD_PATH_MIN) {
    if ((data.byteOffset & 3) === 0) return nativeWalChecksum(data, s1, s2);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = !bigEndian;
  const n = data.byteLength;
  for (let i = 0; i < n; i += 8) {
    s1 = (s1 + view.getUint32(i, le) + s2) >>> 0;
    s2 = (s2 + view.getUint32(i + 4, le) + s1) >>> 0;
  }
  return [s1, s2];
}

// WALs written on this machine's byte order (what SQLite does) can be summed
// over native 32-bit word loads, several times faster than DataView reads.
const BIG_ENDIAN_PLATFORM = new Uint8Array(new Uint32Array([1]).buffer)[0] === 0;
const WORD_PATH_MIN = 64;

/** {@link walChecksum} over native-order words of 4-byte aligned `data`. */
function nativeWalChecksum(data: Uint8Array, s1: number, s2: number): [number, number] {
  const w = new Int32Array(data.buffer, data.byteOffset, data.byteLength >>> 2);
  let a = s1 | 0;
  let b = s2 | 0;
  const n = w.length;
  for (let i = 0; i < n; i += 2) {
    a = (a + w[i]! + b) | 0;
    b = (b + w[i + 1]! + a) | 0;
  }
  return [a >>> 0, b >>> 0];
}

/** Parses and validates a 32-byte WAL header, including its checksum. */
export function parseWalHeader(bytes: Uint8Array): WalHeader {
  if (bytes.length < WAL_HEADER_SIZE) throw walInvalid(`header is ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_SIZE);
  const magic = view.getUint32(0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) throw walInvalid("bad magic number");
  const version = view.getUint32(4);
  if (version !== WAL_VERSION) throw walInvalid(`unsupported version ${version}`);
  const pageSize = view.getUint32(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw walInvalid(`bad page size ${pageSize}`);
  }
  const bigEndianChecksum = magic === MAGIC_BE;
  const header: WalHeader = {
    bigEndianChecksum,
    pageSize,
    checkpointSeq: view.getUint32(12),
    salt1: view.getUint32(16),
    salt2: view.getUint32(20),
    checksum1: view.getUint32(24),
    checksum2: view.getUint32(28),
  };
  const [c1, c2] = walChecksum(bytes.subarray(0, 24), bigEndianChecksum, 0, 0);
  if (c1 !== header.checksum1 || c2 !== header.checksum2)
    throw walInvalid("header checksum mismatch");
  return header;
}

/** The cursor at the first frame of a WAL whose header is `h`. */
export function initialCursor(h: WalHeader): WalCursor {
  return {
    salt1: h.salt1,
    salt2: h.salt2,
    offset: WAL_HEADER_SIZE,
    checksum1: h.checksum1,
    checksum2: h.checksum2,
  };
}

/**
 * Reads the WAL header of an open WAL file; `undefined` when the file is
 * shorter than a header (truncated by a TRUNCATE checkpoint) or its header is
 * invalid: SQLite itself treats such a WAL as empty.
 */
export function readWalHeader(fd: number): WalHeader | undefined {
  const buf = new Uint8Array(WAL_HEADER_SIZE);
  const bytesRead = readFully(fd, buf, 0);
  if (bytesRead < WAL_HEADER_SIZE) return undefined;
  try {
    return parseWalHeader(buf);
  } catch (err) {
    // A torn or zeroed header means "no valid WAL" to SQLite as well.
    if (err instanceof ReplicatorError) return undefined;
    throw err;
  }
}

/** Options of {@link readCommittedFrames}. */
export interface ReadFramesOptions {
  /** Bytes read per I/O call (rounded to whole frames). Default 4 MiB. */
  chunkSize?: number;
  /** Read no frame starting at or beyond this byte offset. */
  stopAt?: number;
}

/**
 * Reads every committed frame after `cursor`. The WAL header must have the
 * same salts as the cursor (the caller checks that first). Stops at the first
 * frame with other salts, a broken checksum, or the end of the file; only
 * frames up to the last commit frame are reported.
 *
 * Reads are synchronous on purpose: the replicator must scan the WAL while
 * holding SQLite's write lock without yielding to the event loop, where an
 * in-process application using a synchronous driver would block on that lock.
 */
export function readCommittedFrames(
  fd: number,
  header: WalHeader,
  cursor: WalCursor,
  options: ReadFramesOptions = {},
): WalSegment {
  const pageSize = header.pageSize;
  const frameSize = WAL_FRAME_HEADER_SIZE + pageSize;
  const framesPerChunk = Math.max(
    1,
    Math.floor((options.chunkSize ?? 4 * 1024 * 1024) / frameSize),
  );
  const buf = new Uint8Array(framesPerChunk * frameSize);
  const view = new DataView(buf.buffer);
  // Frames are 8-byte multiples, so every frame starts on a word of `buf`.
  const words =
    header.bigEndianChecksum === BIG_ENDIAN_PLATFORM ? new Int32Array(buf.buffer) : undefined;

  const committed = new Map<number, number>();
  const pending = new Map<number, number>();
  let end: WalCursor = { ...cursor };
  let commit = 0;
  let transactions = 0;
  let s1 = cursor.checksum1;
  let s2 = cursor.checksum2;
  let offset = cursor.offset;

  reading: for (;;) {
    const bytesRead = readFully(fd, buf, offset);
    const frames = Math.floor(bytesRead / frameSize);
    if (frames === 0) break;
    for (let f = 0; f < frames; f++) {
      const base = f * frameSize;
      if (options.stopAt !== undefined && offset + base >= options.stopAt) break reading;
      const pgno = view.getUint32(base);
      const dbSize = view.getUint32(base + 4);
      if (
        pgno === 0 ||
        view.getUint32(base + 8) !== cursor.salt1 ||
        view.getUint32(base + 12) !== cursor.salt2
      ) {
        break reading;
      }
      if (words) {
        // Native word order (the usual case): sum in place, no per-frame allocation.
        let a = (s1 + words[base >>> 2]! + s2) | 0;
        let b = (s2 + words[(base >>> 2) + 1]! + a) | 0;
        const last = (base + frameSize) >>> 2;
        for (let i = (base + WAL_FRAME_HEADER_SIZE) >>> 2; i < last; i += 2) {
          a = (a + words[i]! + b) | 0;
          b = (b + words[i + 1]! + a) | 0;
        }
        s1 = a >>> 0;
        s2 = b >>> 0;
      } else {
        [s1, s2] = walChecksum(buf.subarray(base, base + 8), header.bigEndianChecksum, s1, s2);
        [s1, s2] = walChecksum(
          buf.subarray(base + WAL_FRAME_HEADER_SIZE, base + frameSize),
          header.bigEndianChecksum,
          s1,
          s2,
        );
      }
      if (view.getUint32(base + 16) !== s1 || view.getUint32(base + 20) !== s2) break reading;
      const frameOffset = offset + base;
      pending.set(pgno, frameOffset);
      if (dbSize !== 0) {
        for (const [p, o] of pending) committed.set(p, o);
        pending.clear();
        commit = dbSize;
        transactions++;
        end = {
          salt1: cursor.salt1,
          salt2: cursor.salt2,
          offset: frameOffset + frameSize,
          checksum1: s1,
          checksum2: s2,
        };
      }
    }
    if (frames < framesPerChunk) break;
    offset += frames * frameSize;
  }
  return { startOffset: cursor.offset, end, pages: committed, commit, transactions };
}

/**
 * Reads one frame's page image and checks that the frame still carries the
 * expected page number and salts (a cheap guard against reading a frame that
 * was overwritten after it was scanned).
 */
export function readFramePage(
  fd: number,
  frameOffset: number,
  pgno: number,
  cursor: Pick<WalCursor, "salt1" | "salt2">,
  pageSize: number,
): Uint8Array {
  const frame = new Uint8Array(WAL_FRAME_HEADER_SIZE + pageSize);
  const bytesRead = readFully(fd, frame, frameOffset);
  const view = new DataView(frame.buffer);
  if (
    bytesRead !== frame.length ||
    view.getUint32(0) !== pgno ||
    view.getUint32(8) !== cursor.salt1 ||
    view.getUint32(12) !== cursor.salt2
  ) {
    throw new ReplicatorError(
      "WAL_CHANGED",
      `WAL frame at offset ${frameOffset} changed while it was being replicated`,
    );
  }
  return frame.subarray(WAL_FRAME_HEADER_SIZE);
}

/** Reads until `buf` is full or the file ends; returns the bytes read. */
export function readFully(fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
