/**
 * Which page encoding an LTX writer uses, named by the oldest superfly/ltx
 * release that must read the files. Both encodings are LTX v3 and every
 * pagecast reader (and ltx >= v0.5.2) reads both; only writers choose.
 *
 * - `"0.5.2"` (the default): each page is an LZ4 *block* behind a 4-byte
 *   compressed-size prefix (page header flag `PageHeaderFlagSize`). What
 *   ltx v0.5.2 and later write (Litestream 0.5.16+).
 * - `"0.5.1"`: each page is an LZ4 *frame* (page header flags 0, no size
 *   prefix), what ltx v0.5.1 (Litestream 0.5.0-0.5.15) writes and the only
 *   encoding it reads: its decoder refuses any page header flag ("no flags
 *   allowed, reserved for future use").
 */
import { invalidArgument } from "./ltx-error.js";

/** The page encodings a writer can choose (see the module comment). */
export type LtxCompat = "0.5.1" | "0.5.2";

/** What writers use unless told otherwise: the current LZ4-block encoding. */
export const DEFAULT_LTX_COMPAT: LtxCompat = "0.5.2";

/** Every accepted {@link LtxCompat} value. */
export const LTX_COMPAT_VALUES: readonly LtxCompat[] = ["0.5.1", "0.5.2"];

/**
 * Checks an untrusted compat setting (option or CLI flag); `undefined` gives
 * the default. Throws `LtxError(LTX_INVALID_ARGUMENT)` naming the valid values.
 */
export function resolveLtxCompat(value: unknown): LtxCompat {
  if (value === undefined) return DEFAULT_LTX_COMPAT;
  if (typeof value === "string" && (LTX_COMPAT_VALUES as readonly string[]).includes(value)) {
    return value as LtxCompat;
  }
  throw invalidArgument(
    `invalid ltxCompat ${JSON.stringify(String(value).slice(0, 40))}: expected one of ${LTX_COMPAT_VALUES.join(", ")}`,
  );
}
