/**
 * Fuzzing read-your-writes bookmarks (src/router/write-position.ts): they
 * come from clients (cookies, headers), so anything malformed must be a
 * RouterError(ROUTER_BOOKMARK_INVALID) that does not echo the input, and
 * every bookmark the router makes must decode to what it encoded.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { decodeBookmark, encodeBookmark } from "../../src/router/write-position.js";
import { assertProperty, expectTyped, FUZZ_CASES, fuzzTimeout } from "./fuzz-config.js";

const n = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const requirement = fc.record({
  txid: n,
  after: fc.option(fc.record({ after: n, at: n }), { nil: undefined }),
  timeAt: fc.option(n, { nil: undefined }),
});

const b36 = fc.stringMatching(/^[0-9a-z]{0,12}$/);
const nearBookmark = fc
  .tuple(
    fc.constantFrom("pc1", "pc2", "PC1", "", "pc1 "),
    fc.array(b36, { minLength: 0, maxLength: 6 }),
    fc.constantFrom(".", "..", ",", ". "),
  )
  .map(([p, parts, sep]) => [p, ...parts].join(sep));

describe(`fuzz: bookmarks (${FUZZ_CASES} cases per property)`, () => {
  test(
    "router bookmarks round-trip",
    async () => {
      await assertProperty(
        fc.property(requirement, (req) => {
          expect(decodeBookmark(encodeBookmark(req))).toEqual(req);
        }),
      );
    },
    fuzzTimeout(1),
  );

  test(
    "client-supplied bookmarks: a requirement or a typed error that never echoes the input",
    async () => {
      await assertProperty(
        fc.property(
          fc.oneof(
            nearBookmark,
            fc.string({ maxLength: 100, unit: "binary" }),
            fc.constant("pc1.".padEnd(5000, "z")),
          ),
          (text) => {
            try {
              const req = decodeBookmark(text);
              expect(Number.isSafeInteger(req.txid) && req.txid >= 0).toBe(true);
              expect(decodeBookmark(encodeBookmark(req))).toEqual(req);
            } catch (err) {
              expectTyped(err, /^ROUTER_BOOKMARK_INVALID$/, JSON.stringify(text));
              if (text.length > 8) expect((err as Error).message.includes(text)).toBe(false);
            }
          },
        ),
      );
    },
    fuzzTimeout(1),
  );
});
