/**
 * The head's optional `writer` field (issue 11): the writer's own health,
 * present once it detected a divergence. Older heads (without it) still
 * parse, heads without anything to report serialize exactly as before, and
 * a malformed field is a typed error like any other.
 */
import { describe, expect, test } from "vitest";
import {
  HEAD_OBJECT_MAX_BYTES,
  type HeadObject,
  LayoutError,
  parseHeadObject,
  serializeHeadObject,
} from "../../src/layout/index.js";

function head(): HeadObject {
  const size = 1000;
  return {
    format: "pagecast-head",
    version: 1,
    writerId: "w-1",
    generation: "g_1",
    txid: 5,
    timestamp: 1_700_000_000_123,
    pageSize: 4096,
    commit: 250,
    postApplyChecksum: null,
    files: [
      {
        level: 9,
        minTXID: 1,
        maxTXID: 5,
        key: "0009/0000000000000001-0000000000000005.ltx",
        size,
        indexOffset: size - 16 - 30,
        indexSize: 30,
        timestamp: 1_700_000_000_123,
      },
    ],
  };
}

function invalid(writer: unknown): void {
  const doc = JSON.parse(new TextDecoder().decode(serializeHeadObject(head())));
  doc.writer = writer;
  let caught: unknown;
  try {
    parseHeadObject(new TextEncoder().encode(JSON.stringify(doc)));
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LayoutError);
  expect((caught as LayoutError).code).toBe("HEAD_OBJECT_INVALID");
}

describe("head object: writer health", () => {
  test("round-trips; absent when there is nothing to report (the older format, byte for byte)", () => {
    const h: HeadObject = {
      ...head(),
      writer: {
        health: "diverged",
        divergences: 2,
        lastDivergenceAt: 1_700_000_000_999,
        lastDivergence: "replica diverged from the database (page 7)",
      },
    };
    expect(parseHeadObject(serializeHeadObject(h))).toEqual(h);
    const plain = new TextDecoder().decode(serializeHeadObject(head()));
    expect(plain).not.toContain('writer"');
    expect(parseHeadObject(serializeHeadObject(head())).writer).toBeUndefined();
  });

  test("a reason at its longest, full of characters JSON escapes, fits the size limit's worst case", () => {
    const h: HeadObject = {
      ...head(),
      writer: {
        health: "ok",
        divergences: Number.MAX_SAFE_INTEGER,
        lastDivergenceAt: Number.MAX_SAFE_INTEGER,
        lastDivergence: "\u0001".repeat(200),
      },
    };
    const bytes = serializeHeadObject(h);
    expect(bytes.length).toBeLessThan(HEAD_OBJECT_MAX_BYTES);
    expect(parseHeadObject(bytes)).toEqual(h);
  });

  test.each<[string, unknown]>([
    ["not an object", "diverged"],
    ["unknown health", { health: "bad", divergences: 1, lastDivergenceAt: 1, lastDivergence: "x" }],
    ["negative count", { health: "ok", divergences: -1, lastDivergenceAt: 1, lastDivergence: "x" }],
    [
      "reason too long",
      { health: "ok", divergences: 1, lastDivergenceAt: 1, lastDivergence: "x".repeat(201) },
    ],
    ["missing field", { health: "ok", divergences: 1, lastDivergenceAt: 1 }],
  ])("rejects %s", (_name, writer) => invalid(writer));
});
