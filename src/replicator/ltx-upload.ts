/**
 * Putting an {@link UploadableLtx} into a store, whether it is held in memory
 * or spooled to a temp file (streamed then: a multipart upload on S3, so
 * memory stays at a few parts whatever the file's size).
 */
import { decodeLtx } from "../format/index.js";
import type { ObjectStore, PutOptions, PutResult } from "../storage/object-store.js";
import { putStream } from "../storage/put-stream.js";
import { NotFoundError } from "../storage/store-errors.js";
import type { UploadableLtx } from "./ltx-builder.js";

/** Writes `enc` to `key` (same options and errors as `ObjectStore.put`). */
export function putLtx(
  store: ObjectStore,
  key: string,
  enc: UploadableLtx,
  options?: PutOptions,
): Promise<PutResult> {
  return enc.bytes !== undefined
    ? store.put(key, enc.bytes, options)
    : putStream(store, key, enc.spool, options);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** How an object found under an LTX file's key compares with the file. */
export type StoredLtxMatch =
  /** The very same file (an earlier attempt of this upload landed). */
  | "same"
  /** Another file, or nothing: another writer's work. */
  | "other"
  /** The read-back was damaged on the way: look again later. */
  | "damaged";

/** Reads of a spooled file's trailer before a mismatch counts as another writer's file. */
const TRAILER_READS = 3;

/**
 * Compares what `key` holds with `enc` (after a create-only put found the
 * key taken). In-memory files are compared whole; a body that differs and
 * fails its own checksums was damaged in transit. A spooled file is
 * compared by size and trailer, whose file checksum (CRC-64 of the whole
 * file, header timestamp included) tells another writer's file apart
 * without downloading a large object; since 16 bytes carry no checksum of
 * their own, a mismatch counts only when repeated reads agree.
 */
export async function compareStoredLtx(
  store: ObjectStore,
  key: string,
  enc: UploadableLtx,
): Promise<StoredLtxMatch> {
  try {
    if (enc.bytes !== undefined) {
      const res = await store.get(key);
      if (res.notModified) return "other";
      if (sameBytes(res.body, enc.bytes)) return "same";
      return intactLtx(res.body) ? "other" : "damaged";
    }
    let previous: Uint8Array | undefined;
    for (let i = 0; i < TRAILER_READS; i++) {
      const res = await store.get(key, { range: { suffix: enc.trailer.length } });
      if (res.notModified) return "other";
      if (res.meta.size !== enc.size) return "other";
      if (sameBytes(res.body, enc.trailer)) return "same";
      if (previous !== undefined && sameBytes(previous, res.body)) return "other";
      previous = res.body;
    }
    return "damaged";
  } catch (err) {
    if (err instanceof NotFoundError) return "other";
    throw err;
  }
}

/** Whether `key` holds exactly `enc` (see {@link compareStoredLtx}). */
export async function storedLtxMatches(
  store: ObjectStore,
  key: string,
  enc: UploadableLtx,
): Promise<boolean> {
  return (await compareStoredLtx(store, key, enc)) === "same";
}

function intactLtx(body: Uint8Array): boolean {
  try {
    decodeLtx(body);
    return true;
  } catch {
    return false;
  }
}

/** Releases what holds `enc` (its temp file); in-memory files need nothing. Idempotent. */
export function disposeLtx(enc: UploadableLtx): void {
  enc.spool?.dispose();
}
