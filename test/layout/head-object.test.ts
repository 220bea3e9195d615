import { describe, expect, test } from "vitest";
import {
  HEAD_OBJECT_MAX_BYTES,
  type HeadObject,
  LayoutError,
  parseHeadObject,
  serializeHeadObject,
} from "../../src/layout/index.js";

function file(level: number, minTXID: number, maxTXID: number, size = 1000) {
  const key = `${level.toString(16).padStart(4, "0")}/${minTXID.toString(16).padStart(16, "0")}-${maxTXID.toString(16).padStart(16, "0")}.ltx`;
  return {
    level,
    minTXID,
    maxTXID,
    key,
    size,
    indexOffset: size - 16 - 30,
    indexSize: 30,
    timestamp: 1_700_000_000_000 + maxTXID,
  };
}

function head(): HeadObject {
  return {
    format: "pagecast-head",
    version: 1,
    writerId: "w-1",
    generation: "g_1",
    txid: 12,
    timestamp: 1_700_000_000_123,
    pageSize: 4096,
    commit: 250,
    postApplyChecksum: 0x8000000000000abcn,
    files: [file(9, 1, 5), file(1, 6, 10), file(0, 11, 11), file(0, 12, 12)],
  };
}

function mutate(f: (doc: Record<string, unknown>) => void): Uint8Array {
  const doc = JSON.parse(new TextDecoder().decode(serializeHeadObject(head())));
  f(doc);
  return new TextEncoder().encode(JSON.stringify(doc));
}

function expectInvalid(bytes: Uint8Array): void {
  let caught: unknown;
  try {
    parseHeadObject(bytes);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LayoutError);
  expect((caught as LayoutError).code).toBe("HEAD_OBJECT_INVALID");
}

describe("head object", () => {
  test("round-trips, checksum as 16 hex digits", () => {
    const bytes = serializeHeadObject(head());
    const text = new TextDecoder().decode(bytes);
    expect(text).toContain('"postApplyChecksum":"8000000000000abc"');
    expect(parseHeadObject(bytes)).toEqual(head());
  });

  test("null checksum and overlapping files are accepted", () => {
    const h = { ...head(), postApplyChecksum: null };
    h.files = [file(9, 1, 7), file(1, 6, 10), file(0, 11, 12)];
    expect(parseHeadObject(serializeHeadObject(h))).toEqual(h);
  });

  test.each<[string, (d: Record<string, unknown>) => void]>([
    ["missing field", (d) => delete d.commit],
    ["wrong format", (d) => (d.format = "other")],
    ["future version", (d) => (d.version = 2)],
    ["txid zero", (d) => (d.txid = 0)],
    ["txid fractional", (d) => (d.txid = 1.5)],
    ["txid unsafe", (d) => (d.txid = 2 ** 60)],
    ["page size not a power of two", (d) => (d.pageSize = 3000)],
    ["checksum uppercase", (d) => (d.postApplyChecksum = "8000000000000ABC")],
    ["checksum short", (d) => (d.postApplyChecksum = "abc")],
    ["writer id with slash", (d) => (d.writerId = "a/b")],
    ["files empty", (d) => (d.files = [])],
    ["files not array", (d) => (d.files = {})],
    ["first not snapshot", (d) => (d.files as unknown[]).shift()],
    ["gap", (d) => (d.files as unknown[]).splice(2, 1)],
    ["last != txid", (d) => (d.txid = 13)],
    ["key mismatch", (d) => ((d.files as Record<string, unknown>[])[1]!.key = "0001/x.ltx")],
    ["foreign key", (d) => ((d.files as Record<string, unknown>[])[1]!.key = "../../etc/passwd")],
    ["index past trailer", (d) => ((d.files as Record<string, unknown>[])[1]!.indexSize = 31)],
    ["level out of range", (d) => ((d.files as Record<string, unknown>[])[1]!.level = 10)],
    ["negative size", (d) => ((d.files as Record<string, unknown>[])[1]!.size = -1)],
  ])("rejects %s", (_name, f) => {
    expectInvalid(mutate(f));
  });

  test("ignores fields it does not know, at every level (forward compatibility)", () => {
    const h: HeadObject = {
      ...head(),
      skeleton: {
        key: "pagecast-skeleton/0000000000000001-0000000000000005.skeleton",
        size: 900,
        txid: 5,
      },
      page1: { key: head().files[3]!.key, offset: 100, size: 200 },
      writer: { health: "ok", divergences: 1, lastDivergenceAt: 5, lastDivergence: "x" },
    };
    const bytes = mutate((d) => {
      Object.assign(d, {
        skeleton: { ...h.skeleton, compression: "zstd" },
        page1: { ...h.page1, checksum: "abc" },
        writer: { ...h.writer, version: "9.9.9", hostname: { nested: [1, 2] } },
        // A field added by a later writer, and a hostile-looking name: both ignored.
        tiers: [{ level: 10, key: "x" }],
        ["__proto__"]: { polluted: true },
      });
      (d.files as Record<string, unknown>[])[0]!.url = "https://example.com/x";
      (d.files as Record<string, unknown>[])[2]!.pageCount = 3;
    });
    const parsed = parseHeadObject(bytes);
    expect(parsed).toEqual(h);
    expect(Object.keys(parsed)).not.toContain("tiers");
    expect(Object.keys(parsed.files[0]!)).not.toContain("url");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // What the parser knows stays strictly validated next to unknown fields.
    expectInvalid(
      mutate((d) => {
        d.future = { anything: true };
        d.txid = 0;
      }),
    );
    expectInvalid(
      mutate((d) => {
        d.future = 1;
        d.writer = { health: "sick", divergences: 1, lastDivergenceAt: 1, lastDivergence: "x" };
      }),
    );
    expectInvalid(
      mutate((d) => {
        (d.files as Record<string, unknown>[])[1]!.extra = 1;
        delete (d.files as Record<string, unknown>[])[1]!.indexSize;
      }),
    );
  });

  test("rejects non-JSON, non-object, invalid UTF-8 and oversized input", () => {
    expectInvalid(new TextEncoder().encode("{"));
    expectInvalid(new TextEncoder().encode("[1]"));
    expectInvalid(new TextEncoder().encode("null"));
    expectInvalid(new Uint8Array([0x7b, 0xff, 0x7d]));
    expectInvalid(new Uint8Array(HEAD_OBJECT_MAX_BYTES + 1));
  });

  test("serialize refuses an invalid head", () => {
    expect(() => serializeHeadObject({ ...head(), txid: 99 })).toThrow(LayoutError);
  });
});
