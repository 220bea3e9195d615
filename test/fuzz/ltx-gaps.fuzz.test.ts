/**
 * LTX decoders not covered by test/format/fuzz.test.ts (which mutates whole
 * files through decodeLtx, LtxDecoder, readLtxPageIndex and decodePageFrame):
 * the LZ4 block decoder on arbitrary input, header/trailer/page-index codecs
 * on arbitrary bytes, frames checked against arbitrary expectations, a
 * hostile RangeReader, and LtxApplier over damaged chains. Outcome: typed
 * LtxError only.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  DatabaseChecksum,
  decodeLtxHeader,
  decodeLtxTrailer,
  decodePageFrame,
  encodeLtx,
  HEADER_FLAG_NO_CHECKSUM,
  LtxApplier,
  LtxDecoder,
  lz4CompressBlock,
  lz4DecompressBlock,
  parsePageIndex,
  type RangeReader,
  readLtxPageIndex,
} from "../../src/format/index.js";
import {
  assertProperty,
  expectTyped,
  FUZZ_CASES,
  failureOf,
  fuzzParams,
  fuzzTimeout,
} from "./fuzz-config.js";

const LTX_CODES = /^LTX_/;

async function typedOrOk(label: string, fn: () => unknown): Promise<boolean> {
  const err = await failureOf(fn);
  if (err === undefined) return true;
  expectTyped(err, LTX_CODES, label);
  return false;
}

function pages(pageSize: number, pgnos: number[], seed: number) {
  return pgnos.map((pgno) => ({
    pgno,
    data: Uint8Array.from({ length: pageSize }, (_, i) => ((i >> (seed % 5)) * pgno + seed) & 255),
  }));
}

/** A snapshot and two incremental files over 512-byte pages, with real checksums. */
function chain(seed: number): Uint8Array[] {
  const sum = new DatabaseChecksum();
  const snap = pages(512, [1, 2, 3, 4], seed);
  for (const p of snap) sum.add(p.pgno, p.data);
  const files = [
    encodeLtx({
      header: { pageSize: 512, commit: 4, minTXID: 1, maxTXID: 1, timestamp: 1 },
      pages: snap,
      postApplyChecksum: sum.value,
    }),
  ];
  let txid = 1;
  let image = new Map(snap.map((p) => [p.pgno, p.data]));
  for (const changed of [
    [2, 5],
    [1, 3, 6],
  ]) {
    const pre = sum.value;
    const next = pages(512, changed, seed + txid);
    for (const p of next) {
      const old = image.get(p.pgno);
      if (old) sum.remove(p.pgno, old);
      sum.add(p.pgno, p.data);
    }
    image = new Map([...image, ...next.map((p) => [p.pgno, p.data] as const)]);
    txid++;
    files.push(
      encodeLtx({
        header: {
          pageSize: 512,
          commit: Math.max(...image.keys()),
          minTXID: txid,
          maxTXID: txid,
          timestamp: txid,
          preApplyChecksum: pre,
        },
        pages: next,
        postApplyChecksum: sum.value,
      }),
    );
  }
  return files;
}

/**
 * A sparse database image (like a file: writing far away allocates nothing),
 * recording the largest size asked for. The applier streams pages before the
 * file checksum is known, so a damaged page number or commit can ask for a
 * far offset; a file target makes that a sparse hole.
 */
function sparseTarget() {
  const writes = new Map<number, Uint8Array>();
  const state = { size: 0, largest: 0 };
  return {
    state,
    write(offset: number, bytes: Uint8Array) {
      writes.set(offset, bytes.slice());
      state.size = Math.max(state.size, offset + bytes.length);
      state.largest = Math.max(state.largest, state.size);
    },
    truncate(size: number) {
      for (const offset of writes.keys()) if (offset >= size) writes.delete(offset);
      state.size = size;
      state.largest = Math.max(state.largest, size);
    },
  };
}

describe(`fuzz: LTX decoder gaps (${FUZZ_CASES} cases per property)`, () => {
  test(
    "LZ4 block decoder: exact output size or LtxError, on arbitrary input",
    async () => {
      await assertProperty(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 600 }),
            // Valid blocks with a damaged byte or a wrong expected size.
            fc
              .tuple(
                fc.uint8Array({ minLength: 1, maxLength: 2000 }),
                fc.nat(),
                fc.integer({ min: 0, max: 255 }),
              )
              .map(([src, at, v]) => {
                const block = lz4CompressBlock(src);
                block[at % block.length] = v;
                return block;
              }),
          ),
          fc.integer({ min: 0, max: 70_000 }),
          (src, size) => {
            try {
              const out = lz4DecompressBlock(src, size);
              expect(out.length).toBe(size);
            } catch (err) {
              expectTyped(err, LTX_CODES, `lz4 ${src.length} -> ${size}`);
            }
          },
        ),
      );
    },
    fuzzTimeout(2),
  );

  test(
    "LZ4 round trip of arbitrary data",
    async () => {
      await assertProperty(
        fc.property(fc.uint8Array({ maxLength: 5000 }), (src) => {
          expect(lz4DecompressBlock(lz4CompressBlock(src), src.length)).toEqual(src);
        }),
      );
    },
    fuzzTimeout(2),
  );

  test(
    "header, trailer and page-index codecs on arbitrary bytes",
    async () => {
      await assertProperty(
        fc.property(fc.uint8Array({ maxLength: 160 }), fc.nat(), (bytes, cut) => {
          for (const [name, fn] of [
            ["header", () => decodeLtxHeader(bytes)],
            ["trailer", () => decodeLtxTrailer(bytes)],
            ["index", () => parsePageIndex(bytes, 0, cut % (bytes.length + 1))],
          ] as const) {
            try {
              fn();
            } catch (err) {
              expectTyped(err, LTX_CODES, name);
            }
          }
        }),
      );
    },
    fuzzTimeout(1),
  );

  test(
    "page frames against arbitrary expectations (including invalid page numbers and sizes)",
    async () => {
      const file = chain(1)[0]!;
      await assertProperty(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 700 }),
            fc
              .tuple(fc.nat(), fc.nat())
              .map(([a, b]) => file.subarray(a % file.length, (a % file.length) + (b % 800))),
          ),
          fc.oneof(
            fc.integer({ min: -2, max: 8 }),
            fc.constantFrom(0x100000000, Number.NaN, 1.5, 2 ** 53),
          ),
          fc.oneof(fc.constantFrom(512, 1024, 4096, 65536), fc.integer({ min: -1, max: 70_000 })),
          (frame, pgno, pageSize) => {
            try {
              const page = decodePageFrame(frame, { pgno, pageSize });
              expect(page.length).toBe(pageSize);
            } catch (err) {
              expectTyped(err, LTX_CODES, `frame ${frame.length} pgno ${pgno} size ${pageSize}`);
            }
          },
        ),
      );
    },
    fuzzTimeout(1),
  );

  test(
    "readLtxPageIndex over a hostile RangeReader",
    async () => {
      const file = chain(2)[1]!;
      const answer = fc.record({
        kind: fc.constantFrom(
          "honest",
          "lie-size",
          "lie-offset",
          "short",
          "huge-size",
          "not-bytes",
          "throw-typed",
        ),
        n: fc.integer({ min: -5, max: 2 ** 33 }),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(answer, { minLength: 1, maxLength: 3 }),
          fc.integer({ min: 1, max: 500 }),
          async (answers, guess) => {
            let i = 0;
            const reader: RangeReader = {
              async read(range) {
                const a = answers[Math.min(i++, answers.length - 1)]!;
                const offset =
                  "suffix" in range ? Math.max(0, file.length - range.suffix) : range.offset;
                const length =
                  "suffix" in range
                    ? file.length - offset
                    : Math.min(range.length, file.length - offset);
                const bytes = file.slice(offset, offset + length);
                switch (a.kind) {
                  case "lie-size":
                    return { bytes, offset, totalSize: a.n };
                  case "lie-offset":
                    return { bytes, offset: a.n, totalSize: file.length };
                  case "short":
                    return {
                      bytes: bytes.subarray(
                        0,
                        Math.max(0, bytes.length - 1 - (Math.abs(a.n) % 50)),
                      ),
                      offset,
                      totalSize: file.length,
                    };
                  case "huge-size":
                    return { bytes, offset: offset + 2 ** 40, totalSize: 2 ** 40 + file.length };
                  case "not-bytes":
                    return {
                      bytes: Array.from(bytes) as unknown as Uint8Array,
                      offset,
                      totalSize: file.length,
                    };
                  case "throw-typed":
                    return decodeLtxHeader(new Uint8Array(3)) as never;
                  default:
                    return { bytes, offset, totalSize: file.length };
                }
              },
            };
            await typedOrOk(JSON.stringify(answers), () =>
              readLtxPageIndex(reader, { suffixGuess: guess }),
            );
          },
        ),
        fuzzParams(),
      );
    },
    fuzzTimeout(2),
  );

  test(
    "LtxApplier over damaged chains: a typed error, or exactly the undamaged result",
    async () => {
      const good = chain(3);
      const expected = await new LtxApplier(sparseTarget()).apply([good[0]!]).then(async (r0) => {
        const applier = new LtxApplier(sparseTarget());
        await applier.apply([good[0]!]);
        await applier.apply([good[1]!]);
        return { first: r0.position, last: (await applier.apply([good[2]!])).position };
      });
      let rejected = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 2 }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 3,
          }),
          fc.nat(),
          fc.integer({ min: 1, max: 64 }),
          async (which, edits, cut, chunk) => {
            const files = good.map((f) => f.slice());
            const victim = files[which]!;
            for (const [at, v] of edits) victim[at % victim.length] = v;
            if (cut % 4 === 0) files[which] = victim.slice(0, cut % victim.length);
            const applier = new LtxApplier(sparseTarget());
            let position = expected.first;
            const ok = await typedOrOk(`file ${which} ${JSON.stringify(edits)}`, async () => {
              for (const f of files) {
                const chunks: Uint8Array[] = [];
                for (let p = 0; p < f.length; p += chunk) chunks.push(f.subarray(p, p + chunk));
                position = (await applier.apply(chunks)).position;
              }
            });
            if (ok) expect(position).toEqual(expected.last);
            else rejected++;
          },
        ),
        fuzzParams(),
      );
      expect(rejected).toBeGreaterThan(FUZZ_CASES / 2);
    },
    fuzzTimeout(3),
  );

  test("a page size above the decoder's maximum is refused before any page is read", async () => {
    const big = pages(65536, [1], 1);
    const sum = new DatabaseChecksum();
    sum.add(1, big[0]!.data);
    const file = encodeLtx({
      header: { pageSize: 65536, commit: 1, minTXID: 1, maxTXID: 1 },
      pages: big,
      postApplyChecksum: sum.value,
    });
    const err = await failureOf(() => new LtxDecoder([file], { maxPageSize: 4096 }).readHeader());
    expectTyped(err, /^LTX_UNSUPPORTED$|^LTX_CORRUPT$/, "maxPageSize");
  });

  test("zero pages of a grown database are checksummed exactly (grow, shrink, regrow)", async () => {
    const pageSize = 512;
    const image = new Map<number, Uint8Array>();
    const zero = new Uint8Array(pageSize);
    const expected = (commit: number) => {
      const sum = new DatabaseChecksum();
      for (let p = 1; p <= commit; p++) sum.add(p, image.get(p) ?? zero);
      return sum.value;
    };
    const steps: [number, number[]][] = [
      [3, [1, 2, 3]],
      [400, [200]],
      [150, [2]],
      [1000, [160, 999]],
      [1001, []],
    ];
    const applier = new LtxApplier({ write() {}, truncate() {} });
    let pre = 0n;
    for (const [i, [commit, pgnos]] of steps.entries()) {
      for (const p of [...image.keys()]) if (p > commit) image.delete(p);
      const written = pages(pageSize, pgnos, i + 1);
      for (const pg of written) image.set(pg.pgno, pg.data);
      const post = expected(commit);
      const file = encodeLtx({
        header: { pageSize, commit, minTXID: i + 1, maxTXID: i + 1, preApplyChecksum: pre },
        pages: written,
        postApplyChecksum: post,
      });
      const res = await applier.apply([file]);
      expect(res.position.checksum).toBe(post);
      pre = post;
    }
  });

  /*
   * LtxApplier never sizes work or memory by an incremental file's `commit`
   * claim: unwritten pages grown into are zero pages accounted for
   * arithmetically, and a commit above SQLite's maximum page count is a typed
   * LtxError, not a RangeError/OOM.
   */
  test("applying a file that claims a huge database size is bounded", async () => {
    const snapshot = pages(4096, [1, 2, 3], 1);
    const snap = encodeLtx({
      header: { pageSize: 4096, commit: 3, minTXID: 1, maxTXID: 1, flags: HEADER_FLAG_NO_CHECKSUM },
      pages: snapshot,
      postApplyChecksum: 0n,
    });
    const inc = encodeLtx({
      header: {
        pageSize: 4096,
        commit: 0xffffffff,
        minTXID: 2,
        maxTXID: 2,
        flags: HEADER_FLAG_NO_CHECKSUM,
      },
      pages: [snapshot[1]!],
      postApplyChecksum: 0n,
    });
    const applier = new LtxApplier({ write() {}, truncate() {} });
    await applier.apply([snap]);
    const err = await failureOf(() => applier.apply([inc]));
    if (err !== undefined) expectTyped(err, LTX_CODES, "huge commit");
  });
});
