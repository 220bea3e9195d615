/**
 * Key rules shared by every backend, so that a key valid on one store is valid
 * on all of them (and maps to a path inside a file store's root), and the one
 * key order every backend lists in: UTF-8 byte order, as S3 does.
 */
import { InvalidStoreArgumentError } from "./store-errors.js";

/** S3's limit on a key's UTF-8 length. */
export const MAX_KEY_BYTES = 1024;

const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();

/** Shortened, control-free rendering of an untrusted string for error messages. */
export function describeKey(key: string): string {
  const shown = key.length > 80 ? `${key.slice(0, 80)}...` : key;
  return JSON.stringify(shown);
}

function checkCommon(value: string, what: string): void {
  if (CONTROL.test(value))
    throw new InvalidStoreArgumentError(`${what} contains a control character`);
  if (value.includes("\\")) throw new InvalidStoreArgumentError(`${what} contains a backslash`);
  if (value.startsWith("/")) throw new InvalidStoreArgumentError(`${what} starts with "/"`);
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidStoreArgumentError(`${what} is not well-formed Unicode`);
  }
  if (encoder.encode(value).length > MAX_KEY_BYTES) {
    throw new InvalidStoreArgumentError(`${what} is longer than ${MAX_KEY_BYTES} bytes`);
  }
}

/**
 * Throws `InvalidStoreArgumentError` unless `key` is a relative `/`-separated
 * key without empty, `.` or `..` segments, backslashes or control characters.
 */
export function validateKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) {
    throw new InvalidStoreArgumentError("key must be a non-empty string");
  }
  checkCommon(key, `key ${describeKey(key)}`);
  for (const segment of key.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new InvalidStoreArgumentError(
        `key ${describeKey(key)} has an empty, "." or ".." segment`,
      );
    }
  }
}

/**
 * Throws `InvalidStoreArgumentError` unless `prefix` could begin a valid key:
 * like a key, but it may be empty, end with `/`, and end in a partial segment.
 */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== "string") throw new InvalidStoreArgumentError("prefix must be a string");
  if (prefix === "") return;
  checkCommon(prefix, `prefix ${describeKey(prefix)}`);
  const segments = prefix.split("/");
  // The last segment may be partial ("ab" of "abc") or empty (trailing "/").
  for (const segment of segments.slice(0, -1)) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new InvalidStoreArgumentError(
        `prefix ${describeKey(prefix)} has an empty, "." or ".." segment`,
      );
    }
  }
}

/** `prefix` made to name a "directory": empty stays empty, otherwise it ends with `/`. */
export function directoryPrefix(prefix: string): string {
  return prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
}

// UTF-16 code unit order differs from code point (= UTF-8 byte) order only
// where surrogates meet U+E000..U+FFFF; remapping those two blocks fixes it.
function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Compares keys in UTF-8 byte order (S3's list order). */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}
