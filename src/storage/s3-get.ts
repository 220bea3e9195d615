/**
 * The range logic of an S3 `get`, shared by both S3 backends: a zero-length
 * range reads only the metadata (HTTP cannot ask for it), and a range the
 * server refuses with 416 (starting past the end, or a suffix longer than
 * the object on some servers) is asked again for exactly what exists.
 * Runtime-agnostic (no `node:` imports).
 */
import { isEmptyRange, resolveRange, validateRange } from "./byte-range.js";
import { sameEtag } from "./etag.js";
import type { ByteRange, GetOptions, GetResult, ObjectMeta } from "./object-store.js";
import { NotFoundError, ObjectTooLargeError, StoreRequestError } from "./store-errors.js";
import { describeKey } from "./store-keys.js";
import { checkMaxBytes } from "./store-options.js";

/** One get request (with its retries) for `range`; "unsatisfiable" for a 416. */
export type RangeRequest = (range: ByteRange | undefined) => Promise<GetResult | "unsatisfiable">;

/** `get` of `key` in the store at `where` through `request` and `head`. */
export async function s3Get(
  key: string,
  where: string,
  options: GetOptions,
  request: RangeRequest,
  head: () => Promise<ObjectMeta | undefined>,
): Promise<GetResult> {
  const range = options.range;
  if (range) validateRange(range);
  checkMaxBytes(options);
  if (!isEmptyRange(range)) {
    const first = await request(range);
    if (first !== "unsatisfiable") return first;
  }
  const meta = await head();
  if (!meta) throw new NotFoundError(key);
  if (options.ifNoneMatch !== undefined && sameEtag(options.ifNoneMatch, meta.etag)) {
    return { notModified: true };
  }
  const { start, end } = resolveRange(range, meta.size);
  if (start === end) return { notModified: false, body: new Uint8Array(0), meta, offset: start };
  if (options.maxBytes !== undefined && end - start > options.maxBytes) {
    throw new ObjectTooLargeError(key, { size: end - start, maxBytes: options.maxBytes, meta });
  }
  const second = await request({ offset: start, length: end - start });
  if (second === "unsatisfiable") {
    throw new StoreRequestError(`S3 get ${describeKey(key)} in ${where}: range refused`, {
      retryable: true,
      status: 416,
    });
  }
  return second;
}
