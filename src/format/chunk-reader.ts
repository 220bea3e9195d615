/**
 * Pull-style byte reader for the decoding coroutines. Parsers are written as
 * generators that `yield NEED_CHUNK` when they run out of bytes; a driver
 * answers with the next chunk (or `null` at end of input). The same parser code
 * then serves synchronous (`decodeLtx`, `decodePageFrame`) and asynchronous
 * (`LtxDecoder`) callers, with arbitrary chunk boundaries.
 */
import { LtxError } from "./ltx-error.js";

/** Marker a parser yields when it needs another input chunk. */
export const NEED_CHUNK: unique symbol = Symbol("need-chunk");
/** What a parser yields to ask for input. */
export type NeedChunk = typeof NEED_CHUNK;
/** What a driver sends back: the next chunk, or `null` at end of input. */
export type ChunkInput = Uint8Array | null | undefined;
/** A parser step that only ever asks for input. */
export type Pull<T> = Generator<NeedChunk, T, ChunkInput>;

const EMPTY = new Uint8Array(0);
/** Reads at most this many bytes by merging the buffer with the next chunk. */
const SMALL_READ = 64;

/** Buffered reader over chunks delivered through generator resumption. */
export class ChunkReader {
  /** Current buffer; unread bytes are `buf[pos..]`. */
  buf: Uint8Array = EMPTY;
  /** Read position in `buf`. */
  pos = 0;
  /** Absolute number of bytes consumed so far. */
  offset = 0;
  /** True once the driver reported end of input. */
  eof = false;

  /** Unread bytes in the current buffer. */
  available(): number {
    return this.buf.length - this.pos;
  }

  /** Makes at least `n` (small) bytes contiguous in `buf[pos..]`; false at end of input. */
  *fill(n: number): Pull<boolean> {
    while (this.buf.length - this.pos < n) {
      if (this.eof) return false;
      const chunk = yield NEED_CHUNK;
      if (chunk === null || chunk === undefined) {
        this.eof = true;
        return false;
      }
      if (chunk.length === 0) continue;
      const rem = this.buf.length - this.pos;
      if (rem === 0) {
        this.buf = chunk;
      } else {
        const merged = new Uint8Array(rem + chunk.length);
        merged.set(this.buf.subarray(this.pos));
        merged.set(chunk, rem);
        this.buf = merged;
      }
      this.pos = 0;
    }
    return true;
  }

  /**
   * Consumes exactly `n` bytes. The result may alias input chunks: use it before
   * the next read or copy it. `n` must already be bounded by the caller.
   */
  *read(n: number): Pull<Uint8Array> {
    const avail = this.buf.length - this.pos;
    if (avail >= n) {
      const v = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return v;
    }
    if (n <= SMALL_READ) {
      if (!(yield* this.fill(n))) throw this.truncated(n);
      const v = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return v;
    }
    // Large read spanning chunks: assemble into one buffer without re-merging.
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos));
    let got = avail;
    this.buf = EMPTY;
    this.pos = 0;
    while (got < n) {
      if (this.eof) throw this.truncated(n - got);
      const chunk = yield NEED_CHUNK;
      if (chunk === null || chunk === undefined) {
        this.eof = true;
        throw this.truncated(n - got);
      }
      const take = Math.min(chunk.length, n - got);
      out.set(chunk.subarray(0, take), got);
      got += take;
      if (take < chunk.length) {
        this.buf = chunk;
        this.pos = take;
      }
    }
    this.offset += n;
    return out;
  }

  /** Consumes `n` bytes already made available with {@link fill}. */
  skip(n: number): void {
    this.pos += n;
    this.offset += n;
  }

  /** Requires the input to end here. */
  *expectEnd(): Pull<void> {
    if (yield* this.fill(1)) {
      throw new LtxError(
        "LTX_CORRUPT",
        `unexpected data after the end of the LTX file at offset ${this.offset}`,
      );
    }
  }

  /** The error for input that ended `missing` bytes too early. */
  truncated(missing: number): LtxError {
    return new LtxError(
      "LTX_TRUNCATED",
      `input ended ${missing} byte(s) early at offset ${this.offset + this.available()}`,
    );
  }
}

/** Runs a pull parser over an in-memory buffer. */
export function runPullSync<T>(gen: Pull<T>, bytes: Uint8Array): T {
  let r = gen.next(undefined); // starts the generator; the argument is ignored
  let sent = false;
  while (!r.done) {
    r = gen.next(sent ? null : bytes);
    sent = true;
  }
  return r.value;
}
