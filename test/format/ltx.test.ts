import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  CHECKSUM_FLAG,
  crc64,
  DatabaseChecksum,
  decodeLtx,
  decodeLtxHeader,
  decodePageFrame,
  encodeLtx,
  encodeLtxHeader,
  HEADER_FLAG_NO_CHECKSUM,
  LtxDecoder,
  LtxEncoder,
  LtxError,
  type LtxHeader,
  type LtxHeaderInit,
  lockPgno,
  lz4DecompressBlock,
  readLtxPageIndex,
} from "./format-imports.js";
import {
  concat,
  encodeLegacyLtx,
  firstDifference,
  memRangeReader,
  prng,
  randomBytes,
  randomChunks,
} from "./helpers.js";

const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

/** Page content of mixed compressibility, derived from a seed. */
function pageData(pageSize: number, seed: number): Uint8Array {
  const rand = prng(seed);
  const kind = seed % 4;
  if (kind === 0) return new Uint8Array(pageSize);
  if (kind === 1) return randomBytes(pageSize, rand);
  const out = new Uint8Array(pageSize);
  const alphabet = randomBytes(kind === 2 ? 4 : 64, rand);
  for (let i = 0; i < pageSize; i++) out[i] = alphabet[Math.floor(rand() * alphabet.length)]!;
  return out;
}

interface Spec {
  header: LtxHeaderInit;
  pages: { pgno: number; data: Uint8Array }[];
  post: bigint;
}

const specArb: fc.Arbitrary<Spec> = fc
  .record({
    pageSize: fc.constantFrom(...PAGE_SIZES),
    snapshot: fc.boolean(),
    noChecksum: fc.boolean(),
    pgnoSeed: fc.integer(),
    count: fc.integer({ min: 0, max: 12 }),
    extraCommit: fc.integer({ min: 0, max: 5 }),
    minTXID: fc.integer({ min: 2, max: 2 ** 53 - 100 }),
    span: fc.integer({ min: 0, max: 50 }),
    timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
    pre: fc.bigInt({ min: 1n, max: (1n << 63n) - 1n }),
    post: fc.bigInt({ min: 1n, max: (1n << 63n) - 1n }),
    dataSeed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .map((r) => {
    const count = r.pageSize >= 32768 ? Math.min(r.count, 4) : r.count;
    let pgnos: number[];
    let commit: number;
    if (r.snapshot) {
      pgnos = Array.from({ length: count }, (_, i) => i + 1);
      commit = count;
    } else {
      const rand = prng(r.pgnoSeed);
      const set = new Set<number>();
      while (set.size < count) set.add(1 + Math.floor(rand() * 40));
      pgnos = [...set].sort((a, b) => a - b);
      commit = (pgnos.at(-1) ?? 1) + r.extraCommit;
    }
    const pages = pgnos.map((pgno, i) => ({
      pgno,
      data: pageData(r.pageSize, r.dataSeed + i * 7 + pgno),
    }));
    const minTXID = r.snapshot ? 1 : r.minTXID;
    const header: LtxHeaderInit = {
      flags: r.noChecksum ? HEADER_FLAG_NO_CHECKSUM : 0,
      pageSize: r.pageSize,
      commit,
      minTXID,
      maxTXID: minTXID + r.span,
      timestamp: r.timestamp,
      preApplyChecksum: r.snapshot || r.noChecksum ? 0n : r.pre | CHECKSUM_FLAG,
    };
    let post: bigint;
    if (r.noChecksum) post = 0n;
    else if (r.snapshot) {
      const sum = new DatabaseChecksum();
      for (const p of pages) sum.add(p.pgno, p.data);
      post = sum.value;
    } else post = r.post | CHECKSUM_FLAG;
    return { header, pages, post };
  });

function expectPages(
  actual: { pgno: number; data: Uint8Array }[],
  expected: { pgno: number; data: Uint8Array }[],
) {
  expect(actual.map((p) => p.pgno)).toEqual(expected.map((p) => p.pgno));
  for (let i = 0; i < expected.length; i++)
    expect(firstDifference(actual[i]!.data, expected[i]!.data)).toBe(-1);
}

describe("LTX round trips", () => {
  test("property: encode -> decodeLtx / LtxDecoder (random chunks) / readLtxPageIndex + decodePageFrame", async () => {
    await fc.assert(
      fc.asyncProperty(
        specArb,
        fc.integer(),
        fc.integer({ min: 1, max: 200_000 }),
        async (spec, chunkSeed, guess) => {
          const enc = new LtxEncoder(spec.header);
          const parts = [
            enc.headerBytes(),
            ...spec.pages.map((p) => enc.encodePage(p.pgno, p.data)),
          ];
          parts.push(enc.finish(spec.post));
          const bytes = concat(parts);
          expect(enc.bytesWritten).toBe(bytes.length);
          expect(
            firstDifference(
              bytes,
              encodeLtx({ header: spec.header, pages: spec.pages, postApplyChecksum: spec.post }),
            ),
          ).toBe(-1);

          const d = decodeLtx(bytes);
          expect(d.header).toEqual(enc.header);
          expectPages(d.pages, spec.pages);
          expect(d.trailer).toEqual(enc.trailer);
          expect(d.trailer.postApplyChecksum).toBe(spec.post);
          expect(d.pageIndex).toEqual(enc.pageIndex);

          const rand = prng(chunkSeed);
          const dec = new LtxDecoder(randomChunks(bytes, rand, 1 + Math.floor(rand() * 5000)));
          expect(await dec.readHeader()).toEqual(enc.header);
          const streamed: { pgno: number; data: Uint8Array }[] = [];
          for await (const p of dec.pages()) streamed.push(p);
          expectPages(streamed, spec.pages);
          const fin = await dec.finish();
          expect(fin.trailer).toEqual(enc.trailer);
          expect(fin.pageIndex).toEqual(enc.pageIndex);

          const reader = memRangeReader(bytes);
          const info = await readLtxPageIndex(reader, { suffixGuess: guess });
          expect(info.entries.toArray()).toEqual(enc.pageIndex);
          expect(info.fileSize).toBe(bytes.length);
          expect(info.trailer).toEqual(enc.trailer);
          const suffix = Math.max(guess, 64);
          expect(info.header === undefined).toBe(suffix < bytes.length);
          if (info.header) expect(info.header).toEqual(enc.header);
          expect(reader.reads.length).toBe(
            info.indexOffset >= bytes.length - Math.min(suffix, bytes.length) ? 1 : 2,
          );
          for (let i = 0; i < spec.pages.length; i++) {
            const e = info.entries.toArray()[i]!;
            const frame = bytes.subarray(e.offset, e.offset + e.size);
            const want = { pgno: e.pgno, pageSize: spec.header.pageSize };
            const page = decodePageFrame(frame, want);
            expect(firstDifference(page, spec.pages[i]!.data)).toBe(-1);
            // Decoded into a given page-sized buffer (hydration decodes into its image).
            const into = new Uint8Array(spec.header.pageSize).fill(0xee);
            expect(decodePageFrame(frame, want, into)).toBe(into);
            expect(firstDifference(into, spec.pages[i]!.data)).toBe(-1);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("legacy LZ4-frame page payloads decode through every reader", async () => {
    const pageSize = 4096;
    const pages = [1, 2, 3].map((pgno) => ({ pgno, data: pageData(pageSize, pgno + 20) }));
    const sum = new DatabaseChecksum();
    for (const p of pages) sum.add(p.pgno, p.data);
    const header = decodeLtxHeader(
      encodeLtxHeader({
        flags: 0,
        pageSize,
        commit: 3,
        minTXID: 1,
        maxTXID: 9,
        timestamp: 1,
        preApplyChecksum: 0n,
        walOffset: 0,
        walSize: 0,
        walSalt1: 0,
        walSalt2: 0,
        nodeID: 0n,
      }),
    );
    for (const frameOpts of [
      { contentChecksum: true },
      { blockChecksum: true, contentSize: true },
      { stored: true },
    ]) {
      const bytes = encodeLegacyLtx(header, pages, sum.value, frameOpts);
      expectPages(decodeLtx(bytes).pages, pages);
      const dec = new LtxDecoder(randomChunks(bytes, prng(1), 7));
      const got: { pgno: number; data: Uint8Array }[] = [];
      for await (const p of dec.pages()) got.push(p);
      await dec.finish();
      expectPages(got, pages);
      const info = await readLtxPageIndex(memRangeReader(bytes));
      for (const e of info.entries) {
        const frame = bytes.subarray(e.offset, e.offset + e.size);
        const data = decodePageFrame(frame, { pgno: e.pgno, pageSize });
        expect(firstDifference(data, pages[e.pgno - 1]!.data)).toBe(-1);
        const into = new Uint8Array(pageSize).fill(0xee);
        expect(decodePageFrame(frame, { pgno: e.pgno, pageSize }, into)).toBe(into);
        expect(firstDifference(into, pages[e.pgno - 1]!.data)).toBe(-1);
      }
    }
  });

  test("pages around the lock page (incremental, 64 KiB pages)", () => {
    const pageSize = 65536;
    const lock = lockPgno(pageSize);
    const pages = [lock - 1, lock + 1].map((pgno) => ({ pgno, data: pageData(pageSize, pgno) }));
    const header = {
      pageSize,
      commit: lock + 1,
      minTXID: 5,
      maxTXID: 5,
      preApplyChecksum: CHECKSUM_FLAG | 1n,
    };
    const bytes = encodeLtx({ header, pages, postApplyChecksum: CHECKSUM_FLAG | 2n });
    expectPages(decodeLtx(bytes).pages, pages);
    const enc = new LtxEncoder(header);
    enc.headerBytes();
    expect(() => enc.encodePage(lock, new Uint8Array(pageSize))).toThrow(LtxError);
  });

  // ~1 GiB of page data (several CPU seconds): opt in with PAGECAST_LONG_TESTS=1 (nightly).
  test.runIf(process.env.PAGECAST_LONG_TESTS === "1")(
    "snapshot spanning the lock page streams in constant memory",
    async () => {
      // 16,386 pages of 64 KiB = 1 GiB of database pages: exercises the lock-page skip
      // of snapshots end to end without ever holding the file.
      const pageSize = 65536;
      const lock = lockPgno(pageSize);
      const commit = lock + 1;
      const zero = new Uint8Array(pageSize);
      // NoChecksum keeps the CPU cost down (no database checksum pass over 1 GiB).
      const enc = new LtxEncoder({
        pageSize,
        commit,
        minTXID: 1,
        maxTXID: 1,
        flags: HEADER_FLAG_NO_CHECKSUM,
      });
      const first = pageData(pageSize, 1);
      function* frames(): Generator<Uint8Array> {
        yield enc.headerBytes();
        for (let pgno = 1; pgno <= commit; pgno++) {
          if (pgno === lock) continue;
          yield enc.encodePage(pgno, pgno === 1 ? first : zero);
        }
        yield enc.finish(0n);
      }
      const dec = new LtxDecoder(frames());
      let count = 0;
      let last = 0;
      for await (const p of dec.pages()) {
        count++;
        last = p.pgno;
      }
      const fin = await dec.finish();
      expect(count).toBe(commit - 1);
      expect(last).toBe(commit);
      expect(fin.pageIndex.length).toBe(commit - 1);
      expect(fin.pageIndex.at(-1)?.pgno).toBe(commit);
    },
    60_000,
  );
});

describe("golden layout", () => {
  test("header, frames, index and trailer at hand-computed offsets", () => {
    const header: LtxHeader = {
      flags: 0,
      pageSize: 512,
      commit: 10,
      minTXID: 5,
      maxTXID: 7,
      timestamp: 1700000000123,
      preApplyChecksum: 0x8000000000000001n,
      walOffset: 0x20,
      walSize: 0x1060,
      walSalt1: 0x01020304,
      walSalt2: 0x0a0b0c0d,
      nodeID: 0x1122334455667788n,
    };
    const zeros = new Uint8Array(512);
    const ones = new Uint8Array(512).fill(1);
    const post = 0x8000000000000abcn;
    const bytes = encodeLtx({
      header,
      pages: [
        { pgno: 2, data: zeros },
        { pgno: 9, data: ones },
      ],
      postApplyChecksum: post,
    });
    const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    // Header (100 bytes).
    expect(hex(bytes.subarray(0, 100))).toBe(
      "4c545831" + // magic
        "00000000" + // flags
        "00000200" + // page size
        "0000000a" + // commit
        "0000000000000005" + // min TXID
        "0000000000000007" + // max TXID
        "0000018bcfe5687b" + // timestamp 1700000000123
        "8000000000000001" + // pre-apply checksum
        "0000000000000020" + // WAL offset
        "0000000000001060" + // WAL size
        "01020304" + // salt 1
        "0a0b0c0d" + // salt 2
        "1122334455667788" + // node ID
        "00".repeat(20), // reserved
    );
    // A page of 512 equal bytes compresses to: token 0x1f (1 literal, long match), the
    // literal, offset 1, match length 4+15+255+232 = 506 (the match must stop 5 bytes
    // before the end), then a token for the 5 final literals.
    const block = (v: number) => [0x1f, v, 0x01, 0x00, 0xff, 0xe8, 0x50, v, v, v, v, v];
    // Frame of page 2 at offset 100: pgno, flags = PageHeaderFlagSize, size 12, block.
    expect(Array.from(bytes.subarray(100, 122))).toEqual([
      0,
      0,
      0,
      2,
      0,
      1,
      0,
      0,
      0,
      12,
      ...block(0),
    ]);
    // Frame of page 9 at offset 122.
    expect(Array.from(bytes.subarray(122, 144))).toEqual([
      0,
      0,
      0,
      9,
      0,
      1,
      0,
      0,
      0,
      12,
      ...block(1),
    ]);
    expect(lz4DecompressBlock(Uint8Array.from(block(1)), 512)).toEqual(ones);
    // Zero page header at 144, then the index varints at 150: (2,100,22) (9,122,22) 0.
    expect(Array.from(bytes.subarray(144, 150))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(bytes.subarray(150, 157))).toEqual([2, 100, 22, 9, 122, 22, 0]);
    // Index size field (7) at 157, trailer at 165.
    expect(Array.from(bytes.subarray(157, 165))).toEqual([0, 0, 0, 0, 0, 0, 0, 7]);
    expect(hex(bytes.subarray(165, 173))).toBe("8000000000000abc");
    expect(bytes.length).toBe(181);
    // File checksum: CRC over header, page headers + size prefixes with the pages
    // uncompressed, zero header, index, size field and post-apply checksum.
    const covered = concat([
      bytes.subarray(0, 100),
      bytes.subarray(100, 110),
      zeros,
      bytes.subarray(122, 132),
      ones,
      bytes.subarray(144, 173),
    ]);
    const fileChecksum = crc64(covered) | CHECKSUM_FLAG;
    expect(hex(bytes.subarray(173, 181))).toBe(fileChecksum.toString(16));
  });
});

describe("encoder rules", () => {
  const base = {
    pageSize: 512,
    commit: 5,
    minTXID: 3,
    maxTXID: 4,
    preApplyChecksum: CHECKSUM_FLAG | 7n,
  };
  const page = new Uint8Array(512);
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(LtxError);
      return (err as LtxError).code;
    }
    return "no error";
  };

  test("invalid headers are rejected", () => {
    expect(code(() => new LtxEncoder({ ...base, pageSize: 1000 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, minTXID: 0 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, minTXID: 5, maxTXID: 4 }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
    expect(code(() => new LtxEncoder({ ...base, maxTXID: 2 ** 53 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, preApplyChecksum: 0n }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
    expect(code(() => new LtxEncoder({ ...base, preApplyChecksum: 5n }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
    expect(
      code(() => new LtxEncoder({ ...base, minTXID: 1, preApplyChecksum: CHECKSUM_FLAG })),
    ).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, flags: 1 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, walSalt1: 1 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, walSize: 1 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => new LtxEncoder({ ...base, flags: HEADER_FLAG_NO_CHECKSUM }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
  });

  test("page order, size, commit and state are enforced", () => {
    const enc = new LtxEncoder(base);
    expect(code(() => enc.encodePage(1, page))).toBe("LTX_INVALID_STATE");
    enc.headerBytes();
    expect(code(() => enc.headerBytes())).toBe("LTX_INVALID_STATE");
    expect(code(() => enc.encodePage(6, page))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => enc.encodePage(0, page))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => enc.encodePage(2, new Uint8Array(511)))).toBe("LTX_INVALID_ARGUMENT");
    enc.encodePage(3, page);
    expect(code(() => enc.encodePage(3, page))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => enc.encodePage(2, page))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => enc.finish(0n))).toBe("LTX_INVALID_ARGUMENT");
    expect(code(() => enc.finish(5n))).toBe("LTX_INVALID_ARGUMENT");
    enc.finish(CHECKSUM_FLAG | 9n);
    expect(code(() => enc.encodePage(4, page))).toBe("LTX_INVALID_STATE");
    expect(code(() => enc.finish(CHECKSUM_FLAG))).toBe("LTX_INVALID_STATE");
  });

  test("snapshots must be contiguous, complete, and carry the right post-apply checksum", () => {
    const snap = { pageSize: 512, commit: 3, minTXID: 1, maxTXID: 1 };
    const e1 = new LtxEncoder(snap);
    e1.headerBytes();
    expect(code(() => e1.encodePage(2, page))).toBe("LTX_INVALID_ARGUMENT");
    e1.encodePage(1, page);
    expect(code(() => e1.encodePage(3, page))).toBe("LTX_INVALID_ARGUMENT");
    e1.encodePage(2, page);
    expect(code(() => e1.finish(CHECKSUM_FLAG))).toBe("LTX_INVALID_ARGUMENT"); // page 3 missing
    e1.encodePage(3, page);
    expect(code(() => e1.finish(CHECKSUM_FLAG | 1n))).toBe("LTX_CHECKSUM_MISMATCH");
    const sum = new DatabaseChecksum();
    for (let i = 1; i <= 3; i++) sum.add(i, page);
    e1.finish(sum.value);
    // NoChecksum snapshots need a zero post-apply checksum.
    const e2 = new LtxEncoder({ ...snap, commit: 0, flags: HEADER_FLAG_NO_CHECKSUM });
    e2.headerBytes();
    expect(code(() => e2.finish(CHECKSUM_FLAG))).toBe("LTX_INVALID_ARGUMENT");
    e2.finish(0n);
    // Empty database: the checksum is the bare flag.
    const e3 = new LtxEncoder({ ...snap, commit: 0 });
    e3.headerBytes();
    e3.finish(CHECKSUM_FLAG);
  });
});

describe("decoder rejects structural problems", () => {
  const pages = [1, 2, 3].map((pgno) => ({ pgno, data: pageData(1024, pgno) }));
  const sum = new DatabaseChecksum();
  for (const p of pages) sum.add(p.pgno, p.data);
  const snap = encodeLtx({
    header: { pageSize: 1024, commit: 3, minTXID: 1, maxTXID: 2 },
    pages,
    postApplyChecksum: sum.value,
  });

  async function streamCode(bytes: Uint8Array): Promise<string> {
    try {
      const dec = new LtxDecoder([bytes]);
      await dec.finish();
      return "ok";
    } catch (err) {
      expect(err).toBeInstanceOf(LtxError);
      return (err as LtxError).code;
    }
  }

  function syncCode(bytes: Uint8Array): string {
    try {
      decodeLtx(bytes);
      return "ok";
    } catch (err) {
      expect(err).toBeInstanceOf(LtxError);
      return (err as LtxError).code;
    }
  }

  test("valid file decodes; truncation at every length is LTX_TRUNCATED", async () => {
    expect(syncCode(snap)).toBe("ok");
    for (let n = 0; n < snap.length; n++) {
      const c = syncCode(snap.subarray(0, n));
      expect(c === "LTX_TRUNCATED" || c === "LTX_CORRUPT", `length ${n}: ${c}`).toBe(true);
    }
    expect(await streamCode(snap.subarray(0, 150))).toBe("LTX_TRUNCATED");
  });

  test("trailing data, bad magic, checksum mismatch, incomplete snapshot", async () => {
    expect(syncCode(concat([snap, new Uint8Array([0])]))).toBe("LTX_CORRUPT");
    const badMagic = snap.slice();
    badMagic[0] = 0x4d;
    expect(await streamCode(badMagic)).toBe("LTX_CORRUPT");
    const badPost = snap.slice();
    badPost[snap.length - 9] = badPost[snap.length - 9]! ^ 1;
    expect(syncCode(badPost)).toBe("LTX_CHECKSUM_MISMATCH");
    const reserved = snap.slice();
    reserved[90] = 1;
    expect(syncCode(reserved)).toBe("LTX_CHECKSUM_MISMATCH");
    // Drop page 3 from a snapshot by lowering... a snapshot claiming commit 4 is incomplete.
    const incomplete = encodeLtx({
      header: {
        pageSize: 1024,
        commit: 3,
        minTXID: 2,
        maxTXID: 2,
        preApplyChecksum: CHECKSUM_FLAG | 1n,
      },
      pages: pages.slice(0, 2),
      postApplyChecksum: CHECKSUM_FLAG | 1n,
    });
    const asSnapshot = incomplete.slice();
    new DataView(asSnapshot.buffer).setBigUint64(16, 1n); // minTXID = 1
    new DataView(asSnapshot.buffer).setBigUint64(40, 0n); // pre-apply 0
    expect(syncCode(asSnapshot)).toBe("LTX_CORRUPT");
  });

  test("maxPageSize caps allocations; source errors pass through; concurrency is refused", async () => {
    await expect(new LtxDecoder([snap], { maxPageSize: 512 }).readHeader()).rejects.toMatchObject({
      code: "LTX_UNSUPPORTED",
    });
    const boom = new Error("network");
    async function* failing() {
      yield snap.subarray(0, 120);
      throw boom;
    }
    await expect(new LtxDecoder(failing()).finish()).rejects.toBe(boom);
    const dec = new LtxDecoder([snap]);
    const a = dec.finish();
    await expect(dec.finish()).rejects.toMatchObject({ code: "LTX_INVALID_STATE" });
    await a;
    expect(() => new LtxDecoder(5 as unknown as Uint8Array[])).toThrow(LtxError);
    await expect(
      new LtxDecoder(["x"] as unknown as Uint8Array[]).readHeader(),
    ).rejects.toMatchObject({
      code: "LTX_INVALID_ARGUMENT",
    });
  });

  test("a 1-byte-chunk stream decodes", async () => {
    const chunks = Array.from(snap, (b) => Uint8Array.of(b));
    const dec = new LtxDecoder(chunks);
    let n = 0;
    for await (const _ of dec.pages()) n++;
    await dec.finish();
    expect(n).toBe(3);
  });
});
