/**
 * Where a file store keeps LTX files. Store keys are the same on every
 * backend: `<base>/<level as %04x>/<min %016x>-<max %016x>.ltx`, which is
 * also where Litestream's S3 client puts them. Litestream's *file* replica
 * client uses another layout, `<dir>/ltx/<level in decimal>/<min>-<max>.ltx`,
 * so a file store maps LTX keys there (the "Litestream layout") and back when
 * listing. Earlier pagecast versions stored LTX keys at their key path (the
 * "legacy layout", `<dir>/0000/...`); a file store still reads those, and a
 * writer moves them to the Litestream layout (see `FileStore`). Every other
 * key (head object, lease, skeletons) lives at its key path in both layouts.
 *
 * Paths here are `/`-separated and relative to the store root.
 */

const LEVEL_HEX = /^[0-9a-f]{4}$/;
const LEVEL_DECIMAL = /^(0|[1-9][0-9]{0,4})$/;
const LTX_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;
const MAX_LEVEL = 0xffff;

/** Directory name of the Litestream layout's level directories. */
export const LITESTREAM_LTX_DIR = "ltx";

/** An LTX key split into its parts. */
export interface LtxKeyParts {
  /** Everything before the level segment: `""` or ending in `/`. */
  base: string;
  level: number;
  /** `<min>-<max>.ltx`. */
  name: string;
}

function isLtxName(name: string): boolean {
  const m = LTX_NAME.exec(name);
  // The same TXID rules as LTX file names elsewhere: 1 <= min <= max.
  return m !== null && /[1-9a-f]/.test(m[1]!) && m[1]! <= m[2]!;
}

function split(path: string): { base: string; dir: string; name: string } | undefined {
  const last = path.lastIndexOf("/");
  if (last < 0) return undefined;
  const dirStart = path.lastIndexOf("/", last - 1) + 1;
  return {
    base: path.slice(0, dirStart),
    dir: path.slice(dirStart, last),
    name: path.slice(last + 1),
  };
}

/** The parts of an LTX key (`<base><%04x>/<min>-<max>.ltx`), or `undefined` for other keys. */
export function parseLtxStoreKey(key: string): LtxKeyParts | undefined {
  const parts = split(key);
  if (!parts || !LEVEL_HEX.test(parts.dir) || !isLtxName(parts.name)) return undefined;
  return { base: parts.base, level: Number.parseInt(parts.dir, 16), name: parts.name };
}

/** Path of an LTX key in the Litestream layout: `<base>ltx/<level>/<name>`. */
export function litestreamPath(parts: LtxKeyParts): string {
  return `${parts.base}${LITESTREAM_LTX_DIR}/${parts.level}/${parts.name}`;
}

/** Path of an LTX key in the legacy layout: the key itself. */
export function legacyPath(parts: LtxKeyParts): string {
  return `${parts.base}${parts.level.toString(16).padStart(4, "0")}/${parts.name}`;
}

/**
 * The store key of a path in the Litestream layout (`<base>ltx/<n>/<name>`
 * with a canonical decimal level), or `undefined` for any other path.
 */
export function keyOfLitestreamPath(path: string): string | undefined {
  const parts = split(path);
  if (!parts || !LEVEL_DECIMAL.test(parts.dir) || !isLtxName(parts.name)) return undefined;
  const level = Number(parts.dir);
  if (level > MAX_LEVEL) return undefined;
  const base = parts.base;
  const suffix = `${LITESTREAM_LTX_DIR}/`;
  if (base !== suffix && !base.endsWith(`/${suffix}`)) return undefined;
  return legacyPath({ base: base.slice(0, -suffix.length), level, name: parts.name });
}

/**
 * For a legacy level directory path (`<base><%04x>/`), the Litestream-layout
 * directory holding the same files (`<base>ltx/<n>/`); else `undefined`.
 */
export function litestreamLevelDir(dir: string): string | undefined {
  const parts = parseLtxStoreKey(`${dir}0000000000000001-0000000000000001.ltx`);
  if (!parts) return undefined;
  return `${parts.base}${LITESTREAM_LTX_DIR}/${parts.level}/`;
}

/** Whether a directory name is a legacy level directory (`%04x`). */
export function isLegacyLevelDir(name: string): boolean {
  return LEVEL_HEX.test(name);
}

/** Whether a file name is an LTX file name (`<min %016x>-<max %016x>.ltx`). */
export function isLtxFileName(name: string): boolean {
  return isLtxName(name);
}
