import { PagecastError } from "../errors.js";

/**
 * Stable codes of {@link LtxError}.
 * - `LTX_CORRUPT`: the bytes are not a well-formed LTX file / LZ4 payload.
 * - `LTX_TRUNCATED`: the input ended before the structure was complete.
 * - `LTX_CHECKSUM_MISMATCH`: a file, pre-apply or post-apply checksum does not match.
 * - `LTX_NOT_CONTIGUOUS`: an LTX file does not follow the previous one (apply).
 * - `LTX_UNSUPPORTED`: valid per the format but outside what pagecast handles
 *   (TXIDs above 2^53-1, LZ4 dictionaries, page sizes above a configured cap...).
 * - `LTX_INVALID_ARGUMENT`: a caller passed an invalid value (encoder input, options).
 * - `LTX_INVALID_STATE`: an API was called out of order (e.g. a page after `finish`).
 */
export type LtxErrorCode =
  | "LTX_CORRUPT"
  | "LTX_TRUNCATED"
  | "LTX_CHECKSUM_MISMATCH"
  | "LTX_NOT_CONTIGUOUS"
  | "LTX_UNSUPPORTED"
  | "LTX_INVALID_ARGUMENT"
  | "LTX_INVALID_STATE";

/** Error thrown by everything in `src/format` on purpose. */
export class LtxError extends PagecastError {
  declare readonly code: LtxErrorCode;

  constructor(code: LtxErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Shorthand for a `LTX_CORRUPT` error. */
export function corrupt(message: string): LtxError {
  return new LtxError("LTX_CORRUPT", message);
}

/** Shorthand for a `LTX_INVALID_ARGUMENT` error. */
export function invalidArgument(message: string): LtxError {
  return new LtxError("LTX_INVALID_ARGUMENT", message);
}
