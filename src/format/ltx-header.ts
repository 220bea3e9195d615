import { isValidPageSize } from "./checksum.js";
import {
  CHECKSUM_FLAG,
  HEADER_FLAG_MASK,
  HEADER_FLAG_NO_CHECKSUM,
  LTX_HEADER_SIZE,
  LTX_TRAILER_SIZE,
} from "./constants.js";
import { LtxError, type LtxErrorCode } from "./ltx-error.js";
import { isValidTxid } from "./txid.js";

/** The 100-byte LTX header, decoded. */
export interface LtxHeader {
  /** Header flags; only {@link HEADER_FLAG_NO_CHECKSUM} is valid. */
  flags: number;
  /** Database page size in bytes (power of two, 512..65536). */
  pageSize: number;
  /** Database size in pages after applying the file. */
  commit: number;
  /** First transaction ID covered (1 = snapshot). */
  minTXID: number;
  /** Last transaction ID covered. */
  maxTXID: number;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  /** Database checksum before applying the file (0 for snapshots / NoChecksum). */
  preApplyChecksum: bigint;
  /** Offset in the source WAL (0 for journal/compaction). */
  walOffset: number;
  /** Size of the source WAL segment (0 for journal/compaction). */
  walSize: number;
  /** WAL salt 1 (0 for journal/compaction). */
  walSalt1: number;
  /** WAL salt 2 (0 for journal/compaction). */
  walSalt2: number;
  /** Creator node ID (0 if unset). */
  nodeID: bigint;
}

/** The 16-byte LTX trailer, decoded. */
export interface LtxTrailer {
  /** Database checksum after applying the file (0 when NoChecksum). */
  postApplyChecksum: bigint;
  /** CRC-64/ISO file checksum with bit 63 set. */
  fileChecksum: bigint;
}

/** True when the header describes a full snapshot (minTXID === 1). */
export function isSnapshotHeader(h: LtxHeader): boolean {
  return h.minTXID === 1;
}

/** True when the header disables database checksum tracking. */
export function hasNoChecksum(h: LtxHeader): boolean {
  return (h.flags & HEADER_FLAG_NO_CHECKSUM) !== 0;
}

const U64_MAX = (1n << 64n) - 1n;

function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function isU64(v: unknown): v is bigint {
  return typeof v === "bigint" && v >= 0n && v <= U64_MAX;
}

function isNonNegSafe(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Returns why `h` is invalid (the rules of superfly/ltx `Header.Validate`, plus
 * range checks of the JS representation), or `undefined` when it is valid.
 */
export function ltxHeaderProblem(h: LtxHeader): string | undefined {
  if (h === null || typeof h !== "object") return "header must be an object";
  if (!isU32(h.flags) || (h.flags & ~HEADER_FLAG_MASK) !== 0) {
    return `invalid flags: ${String(h.flags)}`;
  }
  if (!isValidPageSize(h.pageSize)) return `invalid page size: ${String(h.pageSize)}`;
  if (!isU32(h.commit)) return `invalid commit: ${String(h.commit)}`;
  if (!isValidTxid(h.minTXID)) return `invalid minimum transaction id: ${String(h.minTXID)}`;
  if (!isValidTxid(h.maxTXID)) return `invalid maximum transaction id: ${String(h.maxTXID)}`;
  if (h.minTXID > h.maxTXID) return `transaction ids out of order: (${h.minTXID},${h.maxTXID})`;
  if (typeof h.timestamp !== "number" || !Number.isSafeInteger(h.timestamp)) {
    return `invalid timestamp: ${String(h.timestamp)}`;
  }
  if (!isNonNegSafe(h.walOffset)) return `invalid wal offset: ${String(h.walOffset)}`;
  if (!isNonNegSafe(h.walSize)) return `invalid wal size: ${String(h.walSize)}`;
  if (!isU32(h.walSalt1) || !isU32(h.walSalt2)) return "invalid wal salt";
  if (!isU64(h.nodeID)) return `invalid node id: ${String(h.nodeID)}`;
  if (!isU64(h.preApplyChecksum)) return "invalid pre-apply checksum";
  if ((h.walSalt1 !== 0 || h.walSalt2 !== 0) && h.walOffset === 0) {
    return "wal offset required if salt exists";
  }
  if (h.walOffset === 0 && h.walSize !== 0) return "wal offset required if wal size exists";
  if (isSnapshotHeader(h)) {
    if (h.preApplyChecksum !== 0n) return "pre-apply checksum must be zero on snapshots";
  } else if (hasNoChecksum(h)) {
    if (h.preApplyChecksum !== 0n) return "pre-apply checksum not allowed with NoChecksum";
  } else {
    if (h.preApplyChecksum === 0n) return "pre-apply checksum required on non-snapshot files";
    if ((h.preApplyChecksum & CHECKSUM_FLAG) === 0n) return "invalid pre-apply checksum format";
  }
  return undefined;
}

/** Throws `code` (default `LTX_INVALID_ARGUMENT`) unless `h` is a valid header. */
export function validateLtxHeader(h: LtxHeader, code: LtxErrorCode = "LTX_INVALID_ARGUMENT"): void {
  const problem = ltxHeaderProblem(h);
  if (problem !== undefined) throw new LtxError(code, `invalid LTX header: ${problem}`);
}

function putU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, Math.floor(v / 0x100000000));
  dv.setUint32(off + 4, v >>> 0);
}

/** Encodes a (validated) header into its 100-byte form. */
export function encodeLtxHeader(h: LtxHeader): Uint8Array {
  validateLtxHeader(h);
  const b = new Uint8Array(LTX_HEADER_SIZE);
  const dv = new DataView(b.buffer);
  b[0] = 0x4c; // "LTX1"
  b[1] = 0x54;
  b[2] = 0x58;
  b[3] = 0x31;
  dv.setUint32(4, h.flags);
  dv.setUint32(8, h.pageSize);
  dv.setUint32(12, h.commit);
  putU64(dv, 16, h.minTXID);
  putU64(dv, 24, h.maxTXID);
  dv.setBigInt64(32, BigInt(h.timestamp));
  dv.setBigUint64(40, h.preApplyChecksum);
  putU64(dv, 48, h.walOffset);
  putU64(dv, 56, h.walSize);
  dv.setUint32(64, h.walSalt1);
  dv.setUint32(68, h.walSalt2);
  dv.setBigUint64(72, h.nodeID);
  return b;
}

function readU64Number(dv: DataView, off: number, what: string): number {
  const hi = dv.getUint32(off);
  const lo = dv.getUint32(off + 4);
  if (hi > 0x1fffff) {
    throw new LtxError(
      "LTX_UNSUPPORTED",
      `${what} exceeds 2^53-1, which pagecast cannot represent`,
    );
  }
  return hi * 0x100000000 + lo;
}

/**
 * Decodes and validates a 100-byte header (extra bytes are ignored). Throws
 * `LTX_CORRUPT` (or `LTX_TRUNCATED` when shorter than 100 bytes, and
 * `LTX_UNSUPPORTED` for 64-bit values beyond 2^53-1).
 */
export function decodeLtxHeader(b: Uint8Array): LtxHeader {
  if (!(b instanceof Uint8Array))
    throw new LtxError("LTX_INVALID_ARGUMENT", "header must be a Uint8Array");
  if (b.length < LTX_HEADER_SIZE) {
    throw new LtxError(
      "LTX_TRUNCATED",
      `LTX header needs ${LTX_HEADER_SIZE} bytes, got ${b.length}`,
    );
  }
  if (b[0] !== 0x4c || b[1] !== 0x54 || b[2] !== 0x58 || b[3] !== 0x31) {
    throw new LtxError("LTX_CORRUPT", "not an LTX file (bad magic)");
  }
  const dv = new DataView(b.buffer, b.byteOffset, LTX_HEADER_SIZE);
  const walOffset = dv.getBigInt64(48);
  const walSize = dv.getBigInt64(56);
  if (walOffset < 0n) throw new LtxError("LTX_CORRUPT", "invalid LTX header: negative wal offset");
  if (walSize < 0n) throw new LtxError("LTX_CORRUPT", "invalid LTX header: negative wal size");
  const ts = dv.getBigInt64(32);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER) || ts < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new LtxError("LTX_UNSUPPORTED", "LTX timestamp exceeds the representable range");
  }
  const h: LtxHeader = {
    flags: dv.getUint32(4),
    pageSize: dv.getUint32(8),
    commit: dv.getUint32(12),
    minTXID: readU64Number(dv, 16, "minimum TXID"),
    maxTXID: readU64Number(dv, 24, "maximum TXID"),
    timestamp: Number(ts),
    preApplyChecksum: dv.getBigUint64(40),
    walOffset: readU64Number(dv, 48, "wal offset"),
    walSize: readU64Number(dv, 56, "wal size"),
    walSalt1: dv.getUint32(64),
    walSalt2: dv.getUint32(68),
    nodeID: dv.getBigUint64(72),
  };
  validateLtxHeader(h, "LTX_CORRUPT");
  return h;
}

/**
 * Returns why `t` is invalid for a file with header flags `h` (superfly/ltx
 * `Trailer.Validate`), or `undefined`. Without a header, the post-apply
 * checksum may be zero or flagged.
 */
export function ltxTrailerProblem(t: LtxTrailer, h?: LtxHeader): string | undefined {
  if (!isU64(t.postApplyChecksum) || !isU64(t.fileChecksum)) return "checksums must be u64 bigints";
  if (h === undefined) {
    if (t.postApplyChecksum !== 0n && (t.postApplyChecksum & CHECKSUM_FLAG) === 0n) {
      return "invalid post-apply checksum format";
    }
  } else if (hasNoChecksum(h)) {
    if (t.postApplyChecksum !== 0n) return "post-apply checksum not allowed with NoChecksum";
  } else {
    if (t.postApplyChecksum === 0n) return "post-apply checksum required";
    if ((t.postApplyChecksum & CHECKSUM_FLAG) === 0n) return "invalid post-apply checksum format";
  }
  if (t.fileChecksum === 0n) return "file checksum required";
  if ((t.fileChecksum & CHECKSUM_FLAG) === 0n) return "invalid file checksum format";
  return undefined;
}

/** Encodes a trailer into its 16-byte form (no validation). */
export function encodeLtxTrailer(t: LtxTrailer): Uint8Array {
  const b = new Uint8Array(LTX_TRAILER_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, t.postApplyChecksum));
  dv.setBigUint64(8, BigInt.asUintN(64, t.fileChecksum));
  return b;
}

/** Decodes (without validating) a 16-byte trailer. */
export function decodeLtxTrailer(b: Uint8Array): LtxTrailer {
  if (b.length < LTX_TRAILER_SIZE) {
    throw new LtxError(
      "LTX_TRUNCATED",
      `LTX trailer needs ${LTX_TRAILER_SIZE} bytes, got ${b.length}`,
    );
  }
  const dv = new DataView(b.buffer, b.byteOffset, LTX_TRAILER_SIZE);
  return { postApplyChecksum: dv.getBigUint64(0), fileChecksum: dv.getBigUint64(8) };
}
