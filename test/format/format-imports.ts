/** Re-exports for format tests, plus an assertion that an error is a PagecastError. */
import { expect } from "vitest";
import { PagecastError } from "../../src/errors.js";

export * from "../../src/format/index.js";

/** Asserts `err` is a PagecastError (what every deliberate error must be). */
export function PagecastErrorGuard(err: unknown): void {
  expect(err).toBeInstanceOf(PagecastError);
}
