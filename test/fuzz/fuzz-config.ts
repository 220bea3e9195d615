/**
 * Shared knobs of the fuzz suites: a short run in CI, the long one with
 * PAGECAST_FUZZ_CASES=100000 (see scripts/torture.mjs). PAGECAST_FUZZ_SEED
 * replays a fast-check run; a failure prints its seed and path.
 */
import fc from "fast-check";
import { expect } from "vitest";
import { PagecastError } from "../../src/errors.js";

/** Cases per property (default 1000 in CI). */
export const FUZZ_CASES = Math.max(1, Number(process.env.PAGECAST_FUZZ_CASES ?? 1000));

/** fast-check parameters for `runs` cases (default {@link FUZZ_CASES}). */
export function fuzzParams<T>(runs = FUZZ_CASES): fc.Parameters<T> {
  const seed = process.env.PAGECAST_FUZZ_SEED;
  return {
    numRuns: runs,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    endOnFailure: true,
  };
}

/** Cases run between two returns to the event loop (keeps vitest's worker RPC alive). */
const BATCH = 2000;

/**
 * `fc.assert` of a synchronous property in batches of {@link BATCH} runs,
 * yielding to the event loop between batches: a long synchronous loop would
 * starve vitest's worker heartbeat. Batch `i` uses seed `base + i`, so a
 * failure's printed seed replays it as PAGECAST_FUZZ_SEED.
 */
export async function assertProperty<Ts>(
  property: fc.IRawProperty<Ts, false>,
  runs = FUZZ_CASES,
): Promise<void> {
  const env = process.env.PAGECAST_FUZZ_SEED;
  const base = env !== undefined ? Number(env) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  for (let i = 0, done = 0; done < runs; i++, done += BATCH) {
    fc.assert(property, {
      numRuns: Math.min(BATCH, runs - done),
      seed: (base + i) | 0,
      endOnFailure: true,
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A vitest timeout for `runs` cases of about `perCaseMs` each (at least 60 s). */
export function fuzzTimeout(perCaseMs: number, runs = FUZZ_CASES): number {
  return Math.max(60_000, Math.ceil(runs * perCaseMs) + 30_000);
}

/**
 * Asserts that `err` is a deliberate pagecast error (a `PagecastError` whose
 * code matches `codes`), never a TypeError, RangeError or anything untyped.
 */
export function expectTyped(err: unknown, codes: RegExp, label = ""): void {
  if (!(err instanceof PagecastError)) {
    throw new Error(`${label}: untyped error ${String(err)}`, { cause: err });
  }
  expect(err.code, `${label}: ${err.message}`).toMatch(codes);
}

/** Runs `fn` and returns its error (or undefined), for properties that accept success or a typed error. */
export async function failureOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    return err;
  }
}
