/**
 * `ByteRange` validation and clamping, shared by the backends that slice
 * objects themselves (memory, file) and by the S3 backend when a server
 * ignores or refuses a Range header.
 */
import type { ByteRange } from "./object-store.js";
import { InvalidStoreArgumentError } from "./store-errors.js";

/** Half-open span `[start, end)` of an object, already clamped to its size. */
export interface ResolvedRange {
  start: number;
  end: number;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Throws `InvalidStoreArgumentError` unless the range's numbers are non-negative safe integers. */
export function validateRange(range: ByteRange): void {
  if ("suffix" in range) {
    if (!isCount(range.suffix)) {
      throw new InvalidStoreArgumentError("range suffix must be a non-negative integer");
    }
    return;
  }
  if (!isCount(range.offset) || !isCount(range.length)) {
    throw new InvalidStoreArgumentError("range offset and length must be non-negative integers");
  }
}

/**
 * The bytes of a `size`-byte object that `range` selects (all of them without
 * a range). A range starting at or past the end selects nothing, at `size`.
 */
export function resolveRange(range: ByteRange | undefined, size: number): ResolvedRange {
  if (range === undefined) return { start: 0, end: size };
  if ("suffix" in range) return { start: Math.max(0, size - range.suffix), end: size };
  const start = Math.min(range.offset, size);
  return { start, end: Math.min(size, start + range.length) };
}

/** True when the range can select no byte whatever the object's size. */
export function isEmptyRange(range: ByteRange | undefined): boolean {
  if (range === undefined) return false;
  return "suffix" in range ? range.suffix === 0 : range.length === 0;
}
