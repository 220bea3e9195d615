import { invalidArgument } from "./ltx-error.js";
import { assertTxid, formatTxid, isValidTxid } from "./txid.js";

const FILENAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;
const KEY_RE = /^([0-9a-f]{4})\/([0-9a-f]{16}-[0-9a-f]{16}\.ltx)$/;

/** Litestream's LTX file name: `%016x-%016x.ltx`. */
export function formatLtxFilename(minTXID: number, maxTXID: number): string {
  assertTxid(minTXID, "minTXID");
  assertTxid(maxTXID, "maxTXID");
  return `${formatTxid(minTXID)}-${formatTxid(maxTXID)}.ltx`;
}

/**
 * Parses an LTX file name. Returns `undefined` unless it matches exactly
 * (lower-case hex) with 1 <= minTXID <= maxTXID <= 2^53-1.
 */
export function parseLtxFilename(name: string): { minTXID: number; maxTXID: number } | undefined {
  if (typeof name !== "string") return undefined;
  const m = FILENAME_RE.exec(name);
  if (m === null) return undefined;
  const minTXID = Number.parseInt(m[1]!, 16);
  const maxTXID = Number.parseInt(m[2]!, 16);
  if (!isValidTxid(minTXID) || !isValidTxid(maxTXID) || minTXID > maxTXID) return undefined;
  return { minTXID, maxTXID };
}

/** Key prefix of a level directory: `%04x/`. */
export function ltxLevelPrefix(level: number): string {
  if (!Number.isInteger(level) || level < 0 || level > 0xffff) {
    throw invalidArgument(`invalid level: ${String(level)}`);
  }
  return `${level.toString(16).padStart(4, "0")}/`;
}

/** Storage key of an LTX file relative to a replica root: `%04x/<min>-<max>.ltx`. */
export function ltxKey(level: number, minTXID: number, maxTXID: number): string {
  return ltxLevelPrefix(level) + formatLtxFilename(minTXID, maxTXID);
}

/** Parses a key produced by {@link ltxKey}; `undefined` when it is not one. */
export function parseLtxKey(
  key: string,
): { level: number; minTXID: number; maxTXID: number } | undefined {
  if (typeof key !== "string") return undefined;
  const m = KEY_RE.exec(key);
  if (m === null) return undefined;
  const range = parseLtxFilename(m[2]!);
  if (range === undefined) return undefined;
  return { level: Number.parseInt(m[1]!, 16), ...range };
}
