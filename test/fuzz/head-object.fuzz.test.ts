/**
 * Fuzzing the head object parser (src/layout/head-object.ts): valid heads
 * round-trip; anything else (random bytes, random JSON, mutated fields,
 * damaged text, hostile shapes) is either refused with
 * LayoutError(HEAD_OBJECT_INVALID) or, when accepted, satisfies every
 * invariant a reader relies on.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ltxKey } from "../../src/format/index.js";
import {
  HEAD_OBJECT_MAX_BYTES,
  HEAD_OBJECT_MAX_FILES,
  type HeadFile,
  type HeadObject,
  parseHeadObject,
  SNAPSHOT_LEVEL,
  serializeHeadObject,
} from "../../src/layout/index.js";
import { assertProperty, expectTyped, FUZZ_CASES, failureOf, fuzzTimeout } from "./fuzz-config.js";

const encoder = new TextEncoder();
const HEAD_CODES = /^HEAD_OBJECT_INVALID$/;

function file(level: number, minTXID: number, maxTXID: number, size: number, indexSize: number) {
  return {
    level,
    minTXID,
    maxTXID,
    key: ltxKey(level, minTXID, maxTXID),
    size,
    indexOffset: size - 16 - indexSize,
    indexSize,
    timestamp: 1_763_800_000_000 + maxTXID,
  } satisfies HeadFile;
}

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);

/** A head object the writer could publish. */
const validHead: fc.Arbitrary<HeadObject> = fc
  .record({
    writerId: id,
    generation: id,
    pageSizeLog: fc.integer({ min: 9, max: 16 }),
    commit: fc.integer({ min: 0, max: 0xffffffff }),
    snapshotTxid: fc.integer({ min: 1, max: 2 ** 40 }),
    steps: fc.array(
      fc.record({
        level: fc.integer({ min: 0, max: 3 }),
        overlap: fc.integer({ min: 0, max: 3 }),
        length: fc.integer({ min: 1, max: 50 }),
        indexSize: fc.integer({ min: 9, max: 5000 }),
        frames: fc.integer({ min: 0, max: 100_000 }),
      }),
      { maxLength: 12 },
    ),
    checksum: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: null }),
    timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
  })
  .map((g) => {
    const files: HeadFile[] = [file(SNAPSHOT_LEVEL, 1, g.snapshotTxid, 200_000, 4000)];
    let txid = g.snapshotTxid;
    for (const s of g.steps) {
      const min = Math.max(1, txid + 1 - s.overlap);
      const max = txid + s.length;
      files.push(file(s.level, min, max, 100 + 6 + s.frames + s.indexSize + 16, s.indexSize));
      txid = max;
    }
    return {
      format: "pagecast-head" as const,
      version: 1 as const,
      writerId: g.writerId,
      generation: g.generation,
      txid,
      timestamp: g.timestamp,
      pageSize: 2 ** g.pageSizeLog,
      commit: g.commit,
      postApplyChecksum: g.checksum,
      files,
    };
  });

/** Everything a reader relies on, checked on any head the parser accepted. */
function checkInvariants(h: HeadObject): void {
  expect(h.format).toBe("pagecast-head");
  expect(h.version).toBe(1);
  expect(h.files.length).toBeGreaterThan(0);
  expect(h.files.length).toBeLessThanOrEqual(HEAD_OBJECT_MAX_FILES);
  expect(h.files[0]!.level).toBe(SNAPSHOT_LEVEL);
  expect(h.files[0]!.minTXID).toBe(1);
  expect(h.files[h.files.length - 1]!.maxTXID).toBe(h.txid);
  expect(Number.isSafeInteger(h.commit) && h.commit >= 0 && h.commit <= 0xffffffff).toBe(true);
  expect(h.pageSize >= 512 && h.pageSize <= 65536 && (h.pageSize & (h.pageSize - 1)) === 0).toBe(
    true,
  );
  for (const [i, f] of h.files.entries()) {
    expect(f.key).toBe(ltxKey(f.level, f.minTXID, f.maxTXID));
    expect(f.indexOffset + f.indexSize + 16).toBe(f.size);
    expect(f.indexOffset).toBeGreaterThanOrEqual(100);
    if (i > 0) {
      const prev = h.files[i - 1]!;
      expect(f.level).not.toBe(SNAPSHOT_LEVEL);
      expect(f.minTXID).toBeLessThanOrEqual(prev.maxTXID + 1);
      expect(f.maxTXID).toBeGreaterThan(prev.maxTXID);
    }
  }
  // Whatever was accepted serializes and parses back to the same value.
  expect(parseHeadObject(serializeHeadObject(h))).toEqual(h);
}

/** Parses `bytes`: accepted heads must satisfy the invariants, refusals must be typed. */
function parseOrTyped(bytes: Uint8Array, label: string): HeadObject | undefined {
  let head: HeadObject;
  try {
    head = parseHeadObject(bytes);
  } catch (err) {
    expectTyped(err, HEAD_CODES, label);
    return undefined;
  }
  checkInvariants(head);
  return head;
}

/** A JSON document as a plain value (for field mutations). */
function toDoc(h: HeadObject): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(serializeHeadObject(h)));
}

const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    -1,
    0,
    0.5,
    -0,
    1e308,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 32,
    0xffffffff,
    "",
    "0",
    "1",
    "4096",
    "__proto__",
    null,
    true,
    [],
    {},
    "0009/0000000000000001-0000000000000001.ltx",
    "../../etc/passwd",
    "a".repeat(129),
  ),
);

const mutation = fc.oneof(
  fc.record({ op: fc.constant("set" as const), path: fc.nat(), value: hostileValue }),
  fc.record({ op: fc.constant("delete" as const), path: fc.nat() }),
  fc.record({
    op: fc.constant("add" as const),
    name: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor")),
    value: hostileValue,
  }),
  fc.record({ op: fc.constant("shuffle" as const), seed: fc.nat() }),
  fc.record({ op: fc.constant("duplicate" as const), path: fc.nat() }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

/** Applies a mutation to the document (in place); the path picks a top-level or file field. */
function mutate(doc: Record<string, unknown>, m: Mutation): void {
  const files = (Array.isArray(doc.files) ? doc.files : []) as Record<string, unknown>[];
  const targets: [Record<string, unknown>, string][] = [];
  for (const k of Object.keys(doc)) targets.push([doc, k]);
  for (const f of files) {
    if (typeof f === "object" && f !== null) for (const k of Object.keys(f)) targets.push([f, k]);
  }
  if (targets.length === 0) return;
  switch (m.op) {
    case "set": {
      const [obj, key] = targets[m.path % targets.length]!;
      obj[key] = m.value;
      return;
    }
    case "delete": {
      const [obj, key] = targets[m.path % targets.length]!;
      delete obj[key];
      return;
    }
    case "add":
      // JSON text keeps "__proto__" as an own key, as a hostile writer would send it.
      Object.defineProperty(
        typeof files[0] === "object" && files[0] !== null ? files[0] : doc,
        m.name,
        { value: m.value, enumerable: true, configurable: true, writable: true },
      );
      return;
    case "shuffle":
      if (files.length > 1) files.push(files.splice(m.seed % files.length, 1)[0]!);
      return;
    case "duplicate":
      if (files.length > 0)
        files.splice(m.path % files.length, 0, { ...files[m.path % files.length] });
  }
}

describe(`fuzz: head object parser (${FUZZ_CASES} cases per property)`, () => {
  test(
    "valid heads parse and round-trip",
    async () => {
      await assertProperty(
        fc.property(validHead, (h) => {
          const parsed = parseHeadObject(serializeHeadObject(h));
          expect(parsed).toEqual(h);
          checkInvariants(parsed);
        }),
      );
    },
    fuzzTimeout(5),
  );

  test(
    "mutated fields: typed refusal or a head that keeps every invariant",
    async () => {
      let refused = 0;
      await assertProperty(
        fc.property(validHead, fc.array(mutation, { minLength: 1, maxLength: 4 }), (h, ms) => {
          const doc = toDoc(h);
          for (const m of ms) mutate(doc, m);
          if (parseOrTyped(encoder.encode(JSON.stringify(doc)), JSON.stringify(ms)) === undefined)
            refused++;
        }),
      );
      expect(refused).toBeGreaterThan(FUZZ_CASES / 2);
    },
    fuzzTimeout(5),
  );

  test(
    "damaged text (byte flips, cuts, insertions) of valid heads",
    async () => {
      await assertProperty(
        fc.property(
          validHead,
          fc.array(
            fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 })),
            {
              minLength: 1,
              maxLength: 6,
            },
          ),
          (h, edits) => {
            let b = Array.from(serializeHeadObject(h));
            for (const [at, v, kind] of edits) {
              const p = at % (b.length + 1);
              if (kind === 0 && p < b.length) b[p] = v;
              else if (kind === 1) b = b.slice(0, p);
              else b.splice(p, 0, v);
            }
            parseOrTyped(Uint8Array.from(b), JSON.stringify(edits));
          },
        ),
      );
    },
    fuzzTimeout(5),
  );

  test(
    "random bytes and random JSON are refused with a typed error",
    async () => {
      await assertProperty(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 512 }),
            fc.jsonValue({ maxDepth: 4 }).map((v) => encoder.encode(JSON.stringify(v) ?? "null")),
            fc.string({ maxLength: 200, unit: "grapheme" }).map((s) => encoder.encode(s)),
          ),
          (bytes) => {
            parseOrTyped(bytes, `bytes ${bytes.length}`);
          },
        ),
      );
    },
    fuzzTimeout(1),
  );

  test("hostile sizes and shapes are bounded and typed", async () => {
    const base = toDoc(fc.sample(validHead, { numRuns: 1, seed: 1 })[0]!);
    const cases: [string, Uint8Array][] = [
      ["over the size limit", new Uint8Array(HEAD_OBJECT_MAX_BYTES + 1).fill(0x20)],
      ["deep nesting", encoder.encode("[".repeat(500_000))],
      ["deep object nesting", encoder.encode('{"a":'.repeat(150_000))],
      ["invalid UTF-8", Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d])],
      [
        "too many files",
        encoder.encode(
          JSON.stringify({
            ...base,
            files: new Array(HEAD_OBJECT_MAX_FILES + 1).fill((base.files as unknown[])[0]),
          }),
        ),
      ],
      ["lone surrogate in an id", encoder.encode(JSON.stringify({ ...base, writerId: "\ud800" }))],
    ];
    for (const [label, bytes] of cases) {
      const err = await failureOf(() => parseHeadObject(bytes));
      expectTyped(err, HEAD_CODES, label);
    }
    // Lenient but sound: a leading BOM (dropped by the UTF-8 decoder) and duplicate keys (last wins).
    parseOrTyped(encoder.encode(`\ufeff${JSON.stringify(base)}`), "BOM");
    parseOrTyped(
      encoder.encode(JSON.stringify(base).replace('"txid":', '"txid":1,"txid":')),
      "dup",
    );
    // A plan of 6,000 files still parses.
    const files: HeadFile[] = [file(SNAPSHOT_LEVEL, 1, 1, 1000, 100)];
    for (let i = 2; i <= 6000; i++) files.push(file(0, i, i, 1000, 100));
    const big = { ...(base as unknown as HeadObject), txid: 6000, files, postApplyChecksum: null };
    checkInvariants(parseHeadObject(serializeHeadObject(big)));
  });

  /*
   * HEAD_OBJECT_MAX_BYTES is the worst-case size of a head naming
   * HEAD_OBJECT_MAX_FILES files, so every head the limits allow can be
   * serialized and parsed back (the writer snapshots at the file limit).
   */
  test("a head naming HEAD_OBJECT_MAX_FILES files can be serialized", () => {
    const base = fc.sample(validHead, { numRuns: 1, seed: 1 })[0]!;
    const files: HeadFile[] = [file(SNAPSHOT_LEVEL, 1, 1_000_000, 1000, 100)];
    for (let i = 1; i < HEAD_OBJECT_MAX_FILES; i++) {
      files.push(file(0, 1_000_000 + i, 1_000_000 + i, 123_456, 4321));
    }
    const head = { ...base, txid: 1_000_000 + HEAD_OBJECT_MAX_FILES - 1, files };
    checkInvariants(parseHeadObject(serializeHeadObject(head)));
  });
});
