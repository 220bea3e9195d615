/**
 * One page frame: page header (pgno u32, flags u16), then either a u32
 * compressed size and an LZ4 block (PageHeaderFlagSize, what every current
 * writer emits) or, for legacy frames (flags 0), an LZ4 frame.
 */
import { isValidPageSize } from "./checksum.js";
import { ChunkReader, type Pull, runPullSync } from "./chunk-reader.js";
import {
  LTX_PAGE_HEADER_SIZE,
  LTX_PAGE_SIZE_PREFIX_SIZE,
  PAGE_HEADER_FLAG_SIZE,
} from "./constants.js";
import type { Crc64 } from "./crc64.js";
import { corrupt, invalidArgument } from "./ltx-error.js";
import { lz4CompressBound, lz4DecodeInto } from "./lz4-block.js";
import { maxLegacyFramePayload, readLegacyLz4Frame } from "./lz4-frame.js";

/** Largest encoded frame (header included) a valid file can hold for `pageSize`. */
export function maxFrameSize(pageSize: number): number {
  return (
    LTX_PAGE_HEADER_SIZE +
    Math.max(
      LTX_PAGE_SIZE_PREFIX_SIZE + lz4CompressBound(pageSize),
      maxLegacyFramePayload(pageSize),
    )
  );
}

/**
 * Decompresses an LZ4 block payload that must yield exactly one page, into
 * `into` when given (exactly `pageSize` bytes), else into a new buffer.
 */
export function decompressPage(
  payload: Uint8Array,
  pageSize: number,
  into?: Uint8Array,
): Uint8Array {
  const out = into?.length === pageSize ? into : new Uint8Array(pageSize);
  const end = lz4DecodeInto(payload, 0, payload.length, out, 0, pageSize, 0);
  if (end !== pageSize) throw corrupt(`page decompressed to ${end} bytes, expected ${pageSize}`);
  return out;
}

/**
 * Reads the part of a frame after its page header and returns the page
 * (decompressed into `into`, when given, for LZ4 block frames).
 * Feeds the size prefix (when present) to `crc`; the caller hashes the page.
 */
export function* readFrameBody(
  r: ChunkReader,
  flags: number,
  pageSize: number,
  crc: Crc64 | undefined,
  into?: Uint8Array,
): Pull<Uint8Array> {
  if (flags === PAGE_HEADER_FLAG_SIZE) {
    const sb = yield* r.read(LTX_PAGE_SIZE_PREFIX_SIZE);
    crc?.update(sb);
    const size = ((sb[0]! << 24) | (sb[1]! << 16) | (sb[2]! << 8) | sb[3]!) >>> 0;
    if (size === 0 || size > lz4CompressBound(pageSize)) {
      throw corrupt(`invalid compressed page size: ${size}`);
    }
    return decompressPage(yield* r.read(size), pageSize, into);
  }
  if (flags === 0) return yield* readLegacyLz4Frame(r, pageSize);
  throw corrupt(`invalid page header flags: 0x${flags.toString(16)}`);
}

/**
 * Decodes one page frame read by byte range (e.g. located with the page index).
 * Checks that it is the frame of `expect.pgno`, that its flags are valid, that
 * the size prefix accounts for exactly the rest of `frame`, and that the
 * payload expands to exactly `expect.pageSize` bytes. Returns the page:
 * `into` when given (`pageSize` bytes long), else a new array. (`into` may
 * hold anything when the frame turns out invalid.)
 */
export function decodePageFrame(
  frame: Uint8Array,
  expect: { pgno: number; pageSize: number },
  into?: Uint8Array,
): Uint8Array {
  if (!(frame instanceof Uint8Array)) throw invalidArgument("frame must be a Uint8Array");
  const { pgno, pageSize } = expect;
  if (!Number.isInteger(pgno) || pgno < 1 || pgno > 0xffffffff) {
    throw invalidArgument(`invalid page number: ${String(pgno)}`);
  }
  if (!isValidPageSize(pageSize)) throw invalidArgument(`invalid page size: ${String(pageSize)}`);
  if (frame.length < LTX_PAGE_HEADER_SIZE) throw corrupt("page frame too short");
  const gotPgno = ((frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!) >>> 0;
  const flags = (frame[4]! << 8) | frame[5]!;
  if (gotPgno !== pgno) throw corrupt(`page frame holds page ${gotPgno}, expected ${pgno}`);
  if (flags === PAGE_HEADER_FLAG_SIZE) {
    if (frame.length < LTX_PAGE_HEADER_SIZE + LTX_PAGE_SIZE_PREFIX_SIZE)
      throw corrupt("page frame too short");
    const size = ((frame[6]! << 24) | (frame[7]! << 16) | (frame[8]! << 8) | frame[9]!) >>> 0;
    const start = LTX_PAGE_HEADER_SIZE + LTX_PAGE_SIZE_PREFIX_SIZE;
    if (size !== frame.length - start) {
      throw corrupt(
        `page frame size prefix ${size} does not match the frame (${frame.length - start})`,
      );
    }
    if (size === 0 || size > lz4CompressBound(pageSize))
      throw corrupt(`invalid compressed page size: ${size}`);
    return decompressPage(frame.subarray(start), pageSize, into);
  }
  if (flags !== 0) throw corrupt(`invalid page header flags: 0x${flags.toString(16)}`);
  const body = frame.subarray(LTX_PAGE_HEADER_SIZE);
  if (body.length > maxLegacyFramePayload(pageSize)) throw corrupt("legacy page frame too large");
  const r = new ChunkReader();
  const page = runPullSync(readLegacyLz4Frame(r, pageSize), body);
  if (r.offset !== body.length) throw corrupt("unexpected bytes after the page frame");
  if (into?.length !== pageSize) return page;
  into.set(page);
  return into;
}
