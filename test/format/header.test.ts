import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  CHECKSUM_FLAG,
  decodeLtxHeader,
  encodeLtxHeader,
  formatLtxFilename,
  HEADER_FLAG_NO_CHECKSUM,
  isSnapshotHeader,
  LtxError,
  type LtxHeader,
  ltxKey,
  parseLtxFilename,
  parseLtxKey,
} from "../../src/format/index.js";

const headerArb: fc.Arbitrary<LtxHeader> = fc
  .record({
    noChecksum: fc.boolean(),
    pageSize: fc.constantFrom(512, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
    commit: fc.integer({ min: 0, max: 0xffffffff }),
    minTXID: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    span: fc.integer({ min: 0, max: 1000 }),
    timestamp: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    pre: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
    walOffset: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    walSize: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    salt1: fc.integer({ min: 0, max: 0xffffffff }),
    salt2: fc.integer({ min: 0, max: 0xffffffff }),
    nodeID: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  })
  .map((r) => {
    const minTXID = Math.min(r.minTXID, Number.MAX_SAFE_INTEGER - r.span);
    const snapshot = minTXID === 1;
    return {
      flags: r.noChecksum ? HEADER_FLAG_NO_CHECKSUM : 0,
      pageSize: r.pageSize,
      commit: r.commit,
      minTXID,
      maxTXID: minTXID + r.span,
      timestamp: r.timestamp,
      preApplyChecksum: snapshot || r.noChecksum ? 0n : r.pre | CHECKSUM_FLAG,
      walOffset: r.walOffset,
      walSize: r.walSize,
      walSalt1: r.salt1,
      walSalt2: r.salt2,
      nodeID: r.nodeID,
    };
  });

function code(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    return (err as LtxError).code;
  }
}

describe("LTX header", () => {
  test("property: encode/decode round trip", () => {
    fc.assert(
      fc.property(headerArb, (h) => {
        const b = encodeLtxHeader(h);
        expect(b.length).toBe(100);
        expect(decodeLtxHeader(b)).toEqual(h);
        expect(isSnapshotHeader(h)).toBe(h.minTXID === 1);
      }),
      { numRuns: 500 },
    );
  });

  test("decoding validates like superfly/ltx Header.Validate", () => {
    const good = encodeLtxHeader({
      flags: 0,
      pageSize: 4096,
      commit: 2,
      minTXID: 3,
      maxTXID: 4,
      timestamp: 0,
      preApplyChecksum: CHECKSUM_FLAG | 5n,
      walOffset: 0,
      walSize: 0,
      walSalt1: 0,
      walSalt2: 0,
      nodeID: 0n,
    });
    const edit = (f: (dv: DataView) => void) => {
      const b = good.slice();
      f(new DataView(b.buffer));
      return b;
    };
    expect(code(() => decodeLtxHeader(good))).toBe("ok");
    expect(code(() => decodeLtxHeader(good.subarray(0, 99)))).toBe("LTX_TRUNCATED");
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint8(3, 0x32))))).toBe("LTX_CORRUPT"); // "LTX2"
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint32(4, 1))))).toBe("LTX_CORRUPT"); // flags
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint32(8, 4000))))).toBe("LTX_CORRUPT"); // page size
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint32(8, 131072))))).toBe("LTX_CORRUPT");
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigUint64(16, 0n))))).toBe("LTX_CORRUPT"); // min 0
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigUint64(24, 2n))))).toBe("LTX_CORRUPT"); // min > max
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigUint64(24, 1n << 53n))))).toBe(
      "LTX_UNSUPPORTED",
    );
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigUint64(40, 0n))))).toBe("LTX_CORRUPT"); // pre required
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigUint64(40, 5n))))).toBe("LTX_CORRUPT"); // pre flag
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigInt64(48, -1n))))).toBe("LTX_CORRUPT"); // wal offset < 0
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigInt64(56, 7n))))).toBe("LTX_CORRUPT"); // size w/o offset
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint32(64, 1))))).toBe("LTX_CORRUPT"); // salt w/o offset
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigInt64(32, 1n << 60n))))).toBe(
      "LTX_UNSUPPORTED",
    );
    // Snapshot with a pre-apply checksum, NoChecksum with one.
    expect(code(() => decodeLtxHeader(edit((d) => d.setBigUint64(16, 1n))))).toBe("LTX_CORRUPT");
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint32(4, HEADER_FLAG_NO_CHECKSUM))))).toBe(
      "LTX_CORRUPT",
    );
    // Reserved bytes are not checked (writers put zeros there; the file checksum covers them).
    expect(code(() => decodeLtxHeader(edit((d) => d.setUint8(99, 1))))).toBe("ok");
  });
});

describe("file names and keys", () => {
  test("format and parse", () => {
    expect(formatLtxFilename(1, 0x1f)).toBe("0000000000000001-000000000000001f.ltx");
    expect(parseLtxFilename("0000000000000001-000000000000001f.ltx")).toEqual({
      minTXID: 1,
      maxTXID: 31,
    });
    expect(ltxKey(9, 1, 300)).toBe("0009/0000000000000001-000000000000012c.ltx");
    expect(ltxKey(0x1a, 5, 5)).toBe("001a/0000000000000005-0000000000000005.ltx");
    expect(parseLtxKey("0009/0000000000000001-000000000000012c.ltx")).toEqual({
      level: 9,
      minTXID: 1,
      maxTXID: 300,
    });
    const max = Number.MAX_SAFE_INTEGER;
    expect(parseLtxFilename(formatLtxFilename(max, max))).toEqual({ minTXID: max, maxTXID: max });
  });

  test("rejects what is not an LTX name", () => {
    for (const bad of [
      "0000000000000001-000000000000001F.ltx",
      "0000000000000001-000000000000001f.ltx.tmp",
      "000000000000001-000000000000001f.ltx",
      "0000000000000002-0000000000000001.ltx",
      "0000000000000000-0000000000000001.ltx",
      "0020000000000000-0020000000000000.ltx",
      "pagecast-head.json",
    ]) {
      expect(parseLtxFilename(bad), bad).toBeUndefined();
    }
    expect(parseLtxKey("9/0000000000000001-0000000000000001.ltx")).toBeUndefined();
    expect(code(() => formatLtxFilename(0, 1))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => formatLtxFilename(1.5, 2))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => ltxKey(0x10000, 1, 1))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => ltxKey(-1, 1, 1))).toBe("LTX_INVALID_ARGUMENT");
  });
});
