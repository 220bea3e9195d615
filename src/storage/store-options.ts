/**
 * Validation of per-call options shared by every backend, so that a bad
 * option is refused the same way whatever the store.
 */
import type { GetOptions, ListOptions, PutOptions } from "./object-store.js";
import { InvalidStoreArgumentError } from "./store-errors.js";
import { compareKeys, validatePrefix } from "./store-keys.js";

/** The most keys one list page returns (S3's limit). */
export const MAX_LIST_KEYS = 1000;

/** The most keys one delete request carries (S3's DeleteObjects limit). */
export const DELETE_BATCH_SIZE = 1000;

/** Checks `options.maxKeys` and `options.prefix`; page sizes above 1000 are lowered to 1000. */
export function checkListOptions(options: ListOptions): { prefix: string; maxKeys: number } {
  const prefix = options.prefix ?? "";
  validatePrefix(prefix);
  const maxKeys = options.maxKeys ?? MAX_LIST_KEYS;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
    throw new InvalidStoreArgumentError("maxKeys must be a positive integer");
  }
  return { prefix, maxKeys: Math.min(maxKeys, MAX_LIST_KEYS) };
}

/**
 * For backends whose continuation token is the last key listed: the larger of
 * `startAfter` and the token, i.e. the key the page starts after.
 */
export function listStartAfter(options: ListOptions): string | undefined {
  return [options.startAfter, options.continuationToken]
    .filter((k): k is string => typeof k === "string" && k !== "")
    .sort(compareKeys)
    .pop();
}

/**
 * Pages through keys for backends that hold them all at hand (memory, file):
 * sorts in S3 order, keeps those under `prefix` after `startAfter` and the
 * continuation token (which is simply the last key of the previous page).
 */
export function paginateKeys<T extends { key: string }>(
  items: T[],
  checked: { prefix: string; maxKeys: number },
  options: ListOptions,
): { page: T[]; continuationToken?: string } {
  const { prefix, maxKeys } = checked;
  const after = listStartAfter(options);
  const sorted = items
    .filter(
      (item) =>
        item.key.startsWith(prefix) && (after === undefined || compareKeys(item.key, after) > 0),
    )
    .sort((a, b) => compareKeys(a.key, b.key));
  const page = sorted.slice(0, maxKeys);
  const last = page[page.length - 1];
  return sorted.length > maxKeys && last ? { page, continuationToken: last.key } : { page };
}

/** Checks that a put's conditions are ones the contract knows. */
export function checkPutOptions(options: PutOptions): void {
  if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== "*") {
    throw new InvalidStoreArgumentError('ifNoneMatch on put must be "*"');
  }
  if (options.ifMatch !== undefined && (typeof options.ifMatch !== "string" || !options.ifMatch)) {
    throw new InvalidStoreArgumentError("ifMatch must be a non-empty ETag");
  }
}

/** Checks that a body is a Uint8Array (JS callers may pass anything). */
export function checkBody(body: Uint8Array): void {
  if (!(body instanceof Uint8Array)) {
    throw new InvalidStoreArgumentError("body must be a Uint8Array");
  }
}

/** Checks `options.maxBytes` (a non-negative safe integer when given). */
export function checkMaxBytes(options: GetOptions): void {
  const max = options.maxBytes;
  if (max !== undefined && (typeof max !== "number" || !Number.isSafeInteger(max) || max < 0)) {
    throw new InvalidStoreArgumentError("maxBytes must be a non-negative integer");
  }
}
