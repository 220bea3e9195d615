import { MAX_TXID } from "./constants.js";
import { invalidArgument } from "./ltx-error.js";

/** True when `n` is a TXID pagecast can represent: an integer in 1..2^53-1. */
export function isValidTxid(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 1 && n <= MAX_TXID;
}

/** Throws `LTX_INVALID_ARGUMENT` unless `n` is a valid TXID. */
export function assertTxid(n: unknown, what: string): asserts n is number {
  if (!isValidTxid(n))
    throw invalidArgument(`${what} must be an integer in 1..2^53-1, got ${String(n)}`);
}

/** Formats a TXID as Litestream does: 16 lower-case hex digits. */
export function formatTxid(txid: number): string {
  assertTxid(txid, "TXID");
  return txid.toString(16).padStart(16, "0");
}
