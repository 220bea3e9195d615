/**
 * LTX v3 file format (bit-compatible with Litestream 0.5 / superfly/ltx v0.5):
 * header/trailer codecs, CRC-64/ISO and database checksums, a pure-TS LZ4
 * block codec, streaming encoder/decoder, random access via the page index,
 * file naming, and applying files to a database image. Reader-safe: no
 * `node:` imports.
 */
export {
  type ApplyPosition,
  type ApplyResult,
  type ApplyTarget,
  applyLtxFiles,
  LtxApplier,
  type LtxApplierOptions,
  type LtxSource,
} from "./apply.js";
export {
  DatabaseChecksum,
  databaseChecksum,
  isValidPageSize,
  lockPgno,
  pageChecksum,
} from "./checksum.js";
export {
  CHECKSUM_FLAG,
  HEADER_FLAG_MASK,
  HEADER_FLAG_NO_CHECKSUM,
  LTX_HEADER_SIZE,
  LTX_INDEX_SIZE_FIELD_SIZE,
  LTX_MAGIC,
  LTX_PAGE_HEADER_SIZE,
  LTX_PAGE_SIZE_PREFIX_SIZE,
  LTX_TRAILER_SIZE,
  MAX_PAGE_SIZE,
  MAX_TXID,
  MIN_PAGE_SIZE,
  PAGE_HEADER_FLAG_SIZE,
  PENDING_BYTE,
} from "./constants.js";
export { Crc64, Crc64Combiner, crc64 } from "./crc64.js";
export {
  formatLtxFilename,
  ltxKey,
  ltxLevelPrefix,
  parseLtxFilename,
  parseLtxKey,
} from "./filename.js";
export {
  DEFAULT_LTX_COMPAT,
  LTX_COMPAT_VALUES,
  type LtxCompat,
  resolveLtxCompat,
} from "./ltx-compat.js";
export { decodeLtx, LtxDecoder, type LtxDecoderOptions, type LtxPage } from "./ltx-decoder.js";
export {
  completeLtxHeader,
  encodeLtx,
  LtxEncoder,
  type LtxEncoderOptions,
  type LtxHeaderInit,
} from "./ltx-encoder.js";
export { LtxError, type LtxErrorCode } from "./ltx-error.js";
export {
  decodeLtxHeader,
  decodeLtxTrailer,
  encodeLtxHeader,
  encodeLtxTrailer,
  hasNoChecksum,
  isSnapshotHeader,
  type LtxHeader,
  type LtxTrailer,
  ltxHeaderProblem,
  ltxTrailerProblem,
  validateLtxHeader,
} from "./ltx-header.js";
export {
  LZ4_MAX_INPUT_SIZE,
  LZ4_MAX_OUTPUT_SIZE,
  lz4CompressBlock,
  lz4CompressBound,
  lz4DecompressBlock,
} from "./lz4-block.js";
export { decodePageFrame, maxFrameSize } from "./page-frame.js";
export { PageIndexEntries, type PageIndexEntry, parsePageIndex } from "./page-index.js";
export {
  DEFAULT_SUFFIX_GUESS,
  type LtxPageIndexInfo,
  type RangeReader,
  readLtxPageIndex,
  storeRangeReader,
} from "./tail-reader.js";
export { assertTxid, formatTxid, isValidTxid } from "./txid.js";
