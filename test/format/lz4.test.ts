import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  decodePageFrame,
  LtxError,
  lz4CompressBlock,
  lz4CompressBound,
  lz4DecompressBlock,
  PagecastErrorGuard,
} from "./format-imports.js";
import {
  firstDifference,
  fixtureContent,
  fromBase64,
  makeLz4Frame,
  prng,
  randomBytes,
} from "./helpers.js";
import { LZ4_CLI_FRAMES } from "./lz4-cli-frames.js";

function roundTrip(data: Uint8Array): Uint8Array {
  const c = lz4CompressBlock(data);
  expect(c.length).toBeLessThanOrEqual(lz4CompressBound(data.length));
  const d = lz4DecompressBlock(c, data.length);
  expect(firstDifference(d, data)).toBe(-1);
  return c;
}

function expectLtxError(fn: () => unknown): LtxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    PagecastErrorGuard(err);
    return err as LtxError;
  }
  throw new Error("expected an LtxError");
}

describe("lz4 block round trips", () => {
  test("empty input", () => {
    const c = roundTrip(new Uint8Array(0));
    expect(Array.from(c)).toEqual([0]);
  });

  test("every size 0..300 and selected sizes up to 70000, three data shapes", () => {
    const rand = prng(1);
    const sizes = [
      ...Array.from({ length: 301 }, (_, i) => i),
      511,
      512,
      4095,
      4096,
      4097,
      65535,
      65536,
      65537,
      70000,
    ];
    for (const n of sizes) {
      roundTrip(randomBytes(n, rand)); // incompressible
      roundTrip(new Uint8Array(n).fill(0x61)); // one long run
      const rep = new Uint8Array(n);
      for (let i = 0; i < n; i++) rep[i] = "abcdefghij".charCodeAt(i % 10) ^ (i % 97 === 0 ? 1 : 0);
      roundTrip(rep);
    }
  });

  test("compresses repetitive data well and random data with bounded expansion", () => {
    const zeros = lz4CompressBlock(new Uint8Array(65536));
    expect(zeros.length).toBeLessThan(300);
    const text = fixtureContent(4096, 1);
    expect(lz4CompressBlock(text).length).toBeLessThan(1600);
    const rnd = randomBytes(65536, prng(2));
    expect(lz4CompressBlock(rnd).length).toBeLessThanOrEqual(lz4CompressBound(65536));
  });

  test("property: arbitrary bytes and structured bytes round trip", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (data) => {
        roundTrip(data);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.uint8Array({ minLength: 1, maxLength: 20 }),
            fc.integer({ min: 1, max: 400 }),
          ),
          {
            maxLength: 40,
          },
        ),
        (runs) => {
          const parts: number[] = [];
          for (const [pat, reps] of runs) for (let i = 0; i < reps; i++) parts.push(...pat);
          roundTrip(Uint8Array.from(parts));
        },
      ),
      { numRuns: 200 },
    );
  });

  test("offsets up to the 65535 window are used correctly", () => {
    const rand = prng(3);
    const block = randomBytes(65535, rand);
    const data = new Uint8Array(65535 * 2 + 100);
    data.set(block, 0);
    data.set(block, 65535);
    data.set(block.subarray(0, 100), 131070);
    const c = roundTrip(data);
    expect(c.length).toBeLessThan(70000);
  });
});

describe("lz4 known-answer blocks (hand-made)", () => {
  test("literals only", () => {
    expect(
      new TextDecoder().decode(lz4DecompressBlock(Uint8Array.from([0x30, 0x61, 0x62, 0x63]), 3)),
    ).toBe("abc");
  });

  test("overlapping match (offset 1) then final literals", () => {
    // token: 1 literal, match length 4+4; "a", offset 1, then 5 literals "bbbbb".
    const block = Uint8Array.from([0x14, 0x61, 0x01, 0x00, 0x50, 0x62, 0x62, 0x62, 0x62, 0x62]);
    expect(new TextDecoder().decode(lz4DecompressBlock(block, 14))).toBe("aaaaaaaaabbbbb");
  });

  test("extended literal and match lengths", () => {
    // 20 literals (15 + 5), then a match of offset 20 with length 4 + 15 + 1 = 20, then 0-literal end token.
    const lits = Array.from({ length: 20 }, (_, i) => 0x41 + i);
    const block = Uint8Array.from([0xff, 5, ...lits, 20, 0, 1, 0x00]);
    const out = lz4DecompressBlock(block, 40);
    expect(Array.from(out)).toEqual([...lits, ...lits]);
  });

  test("overlapping match with offset 3 repeats the pattern", () => {
    const block = Uint8Array.from([0x34, 0x78, 0x79, 0x7a, 0x03, 0x00, 0x00]);
    expect(new TextDecoder().decode(lz4DecompressBlock(block, 11))).toBe("xyzxyzxyzxy");
  });

  test("decodes reference lz4 (v1.9.4 CLI) frames as legacy page payloads", () => {
    for (const f of LZ4_CLI_FRAMES) {
      const payload = fromBase64(f.base64);
      const frame = new Uint8Array(6 + payload.length);
      frame[3] = 5; // pgno 5, flags 0 (legacy)
      frame.set(payload, 6);
      expect(decodePageFrame(frame, { pgno: 5, pageSize: f.size }), f.name).toEqual(
        fixtureContent(f.size, f.seed),
      );
    }
  });
});

describe("lz4 malformed input", () => {
  test("typed errors for each kind of damage", () => {
    const good = lz4CompressBlock(fixtureContent(4096, 1));
    expectLtxError(() => lz4DecompressBlock(good, 4095)); // output too small
    expectLtxError(() => lz4DecompressBlock(good, 4097)); // output too large
    expectLtxError(() => lz4DecompressBlock(good.subarray(0, good.length - 1), 4096));
    expectLtxError(() => lz4DecompressBlock(new Uint8Array(0), 10));
    expectLtxError(() =>
      lz4DecompressBlock(Uint8Array.from([0x14, 0x61, 0x02, 0x00, 0x50, 1, 2, 3, 4, 5]), 14),
    ); // offset beyond output
    expectLtxError(() =>
      lz4DecompressBlock(Uint8Array.from([0x14, 0x61, 0x00, 0x00, 0x50, 1, 2, 3, 4, 5]), 14),
    ); // offset 0
    expectLtxError(() => lz4DecompressBlock(Uint8Array.from([0xf0, 255, 255, 255]), 100)); // literal length runs off
    expectLtxError(() => lz4DecompressBlock(Uint8Array.from([0x14, 0x61, 0x01]), 14)); // truncated offset
    expectLtxError(() =>
      lz4DecompressBlock(Uint8Array.from([0x1f, 0x61, 0x01, 0x00, 255, 255]), 1000),
    ); // truncated match length
    expectLtxError(() => lz4DecompressBlock(Uint8Array.from([0x14, 0x61, 0x01, 0x00]), 9)); // ends with a match
    expect(expectLtxError(() => lz4DecompressBlock(good, -1)).code).toBe("LTX_INVALID_ARGUMENT");
    expect(expectLtxError(() => lz4DecompressBlock(good, 2 ** 40)).code).toBe(
      "LTX_INVALID_ARGUMENT",
    );
  });

  test("fuzz: random and mutated blocks only ever fail with LtxError", () => {
    const rand = prng(42);
    const sources = [
      fixtureContent(4096, 7),
      new Uint8Array(4096),
      randomBytes(4096, rand),
      fixtureContent(512, 9),
    ];
    const blocks = sources.map((s) => lz4CompressBlock(s));
    for (let i = 0; i < 4000; i++) {
      const which = i % blocks.length;
      const base = blocks[which]!;
      let input: Uint8Array;
      if (i % 7 === 0) {
        input = randomBytes(Math.floor(rand() * 200), rand);
      } else {
        input = base.slice();
        const edits = 1 + Math.floor(rand() * 4);
        for (let e = 0; e < edits; e++) {
          const pos = Math.floor(rand() * input.length);
          input[pos] =
            rand() < 0.5 ? input[pos]! ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
        }
        if (rand() < 0.2) input = input.subarray(0, Math.floor(rand() * input.length));
      }
      const size = sources[which]!.length + (rand() < 0.1 ? Math.floor(rand() * 64) - 32 : 0);
      try {
        const out = lz4DecompressBlock(input, Math.max(0, size));
        expect(out.length).toBe(Math.max(0, size));
      } catch (err) {
        if (!(err instanceof LtxError)) throw err;
      }
    }
  });
});

describe("legacy LZ4 frame payloads", () => {
  const page = fixtureContent(4096, 11);
  const wrap = (payload: Uint8Array, pgno = 3) => {
    const f = new Uint8Array(6 + payload.length);
    new DataView(f.buffer).setUint32(0, pgno);
    f.set(payload, 6);
    return f;
  };

  test("all flag combinations decode", () => {
    for (const blockChecksum of [false, true]) {
      for (const contentChecksum of [false, true]) {
        for (const contentSize of [false, true]) {
          for (const stored of [false, true]) {
            for (const blockSize of [65536, 1000]) {
              const frame = makeLz4Frame(page, {
                blockChecksum,
                contentChecksum,
                contentSize,
                stored,
                blockSize,
              });
              expect(decodePageFrame(wrap(frame), { pgno: 3, pageSize: 4096 })).toEqual(page);
            }
          }
        }
      }
    }
  });

  test("damaged frames are rejected with LtxError", () => {
    const frame = makeLz4Frame(page, {
      blockChecksum: true,
      contentChecksum: true,
      contentSize: true,
    });
    const set = (f: Uint8Array, i: number, v: (old: number) => number) => {
      const at = i < 0 ? f.length + i : i;
      f[at] = v(f[at]!);
      return f;
    };
    const cases: [string, (f: Uint8Array) => Uint8Array][] = [
      ["magic", (f) => set(f, 0, () => 0)],
      ["version", (f) => set(f, 4, (x) => x & 0x3f)],
      ["reserved FLG bit", (f) => set(f, 4, (x) => x | 0x02)],
      ["reserved BD bits", (f) => set(f, 5, (x) => x | 0x01)],
      ["header checksum", (f) => set(f, 14, (x) => x ^ 1)],
      ["content size", (f) => set(f, 6, (x) => x ^ 1)],
      ["block checksum", (f) => set(f, -9, (x) => x ^ 1)],
      ["content checksum", (f) => set(f, -1, (x) => x ^ 1)],
      ["truncated", (f) => f.subarray(0, f.length - 3)],
      ["trailing byte", (f) => Uint8Array.from([...f, 0])],
    ];
    const reasons: Record<string, RegExp> = {
      magic: /bad magic/,
      version: /version/,
      "reserved FLG bit": /reserved FLG/,
      "reserved BD bits": /reserved BD/,
      "header checksum": /header checksum/,
      "content size": /header checksum/,
      "block checksum": /block checksum/,
      "content checksum": /content checksum/,
      truncated: /ended/,
      "trailing byte": /after the page frame/,
    };
    for (const [name, damage] of cases) {
      const err = expectLtxError(() =>
        decodePageFrame(wrap(damage(frame.slice())), { pgno: 3, pageSize: 4096 }),
      );
      expect(err.message, name).toMatch(reasons[name]!);
    }
    // Declared content size differs from the page size (header checksum valid).
    const sized = makeLz4Frame(fixtureContent(2048, 1), { contentSize: true });
    expect(
      expectLtxError(() => decodePageFrame(wrap(sized), { pgno: 3, pageSize: 4096 })).message,
    ).toMatch(/content size/);
    // Wrong page size and dictionary frames.
    expectLtxError(() =>
      decodePageFrame(wrap(makeLz4Frame(fixtureContent(2048, 1))), { pgno: 3, pageSize: 4096 }),
    );
    const dict = makeLz4Frame(page).slice();
    dict[4] = dict[4]! | 0x01;
    expectLtxError(() => decodePageFrame(wrap(dict), { pgno: 3, pageSize: 4096 }));
  });
});

// Cross-check against the reference implementation when its CLI is installed.
const hasLz4Cli = spawnSync("lz4", ["--version"], { stdio: "ignore" }).status === 0;

describe.skipIf(!hasLz4Cli)("reference lz4 CLI decodes our blocks", () => {
  test("random, structured and repetitive inputs", () => {
    const rand = prng(99);
    const inputs = [
      new Uint8Array(0),
      fixtureContent(4096, 5),
      fixtureContent(65536, 6),
      randomBytes(65536, rand),
      new Uint8Array(65536),
      ...Array.from({ length: 20 }, (_, i) => {
        const alphabet = randomBytes(1 + i * 3, rand);
        return Uint8Array.from(
          { length: 1 + Math.floor(rand() * 30000) },
          () => alphabet[Math.floor(rand() * alphabet.length)]!,
        );
      }),
    ];
    for (const input of inputs) {
      const frame = makeLz4Frame(input, { contentChecksum: true, blockChecksum: true });
      const out = spawnSync("lz4", ["-d", "-c"], { input: frame, maxBuffer: 1 << 24 });
      expect(out.status).toBe(0);
      expect(firstDifference(new Uint8Array(out.stdout), input)).toBe(-1);
    }
  });
});
