/**
 * Fuzzing every reader with damaged LTX files: bit flips, byte overwrites,
 * truncations, insertions, deletions, splices and targeted field overwrites.
 * The only acceptable failure is an LtxError (a PagecastError); a damaged file
 * that still decodes must decode to the original pages. Case count:
 * PAGECAST_FUZZ_CASES (default 10,000).
 */
import { describe, expect, test } from "vitest";
import { PagecastError } from "../../src/errors.js";
import {
  CHECKSUM_FLAG,
  DatabaseChecksum,
  decodeLtx,
  decodeLtxHeader,
  decodePageFrame,
  encodeLtx,
  encodeLtxHeader,
  HEADER_FLAG_NO_CHECKSUM,
  LtxDecoder,
  LtxError,
  type LtxHeaderInit,
  type PageIndexEntry,
  readLtxPageIndex,
} from "../../src/format/index.js";
import {
  encodeLegacyLtx,
  firstDifference,
  fixtureContent,
  memRangeReader,
  prng,
  randomBytes,
  randomChunks,
} from "./helpers.js";

const CASES = Number.parseInt(process.env.PAGECAST_FUZZ_CASES ?? "10000", 10);

interface Base {
  name: string;
  bytes: Uint8Array;
  pageSize: number;
  pages: { pgno: number; data: Uint8Array }[];
  index: PageIndexEntry[];
}

function page(pageSize: number, seed: number): Uint8Array {
  if (seed % 3 === 0) return new Uint8Array(pageSize).fill(seed & 0xff);
  if (seed % 3 === 1) return randomBytes(pageSize, prng(seed));
  return fixtureContent(pageSize, seed);
}

function snapshotChecksum(pages: { pgno: number; data: Uint8Array }[]): bigint {
  const sum = new DatabaseChecksum();
  for (const p of pages) sum.add(p.pgno, p.data);
  return sum.value;
}

function makeBases(): Base[] {
  const bases: Base[] = [];
  const add = (
    name: string,
    header: LtxHeaderInit,
    pgnos: number[],
    post: bigint | "snapshot",
    legacy?: object,
  ) => {
    const pages = pgnos.map((pgno) => ({
      pgno,
      data: page(header.pageSize, pgno * 13 + header.pageSize),
    }));
    const postApplyChecksum = post === "snapshot" ? snapshotChecksum(pages) : post;
    const bytes = legacy
      ? encodeLegacyLtx(
          decodeLtxHeader(
            encodeLtxHeader({
              flags: 0,
              timestamp: 0,
              preApplyChecksum: 0n,
              walOffset: 0,
              walSize: 0,
              walSalt1: 0,
              walSalt2: 0,
              nodeID: 0n,
              ...header,
            }),
          ),
          pages,
          postApplyChecksum,
          legacy,
        )
      : encodeLtx({ header, pages, postApplyChecksum });
    bases.push({
      name,
      bytes,
      pageSize: header.pageSize,
      pages,
      index: decodeLtx(bytes).pageIndex,
    });
  };
  add(
    "snapshot-512",
    { pageSize: 512, commit: 4, minTXID: 1, maxTXID: 3, timestamp: 1700000000000 },
    [1, 2, 3, 4],
    "snapshot",
  );
  add(
    "incremental-1024",
    {
      pageSize: 1024,
      commit: 40,
      minTXID: 9,
      maxTXID: 9,
      preApplyChecksum: CHECKSUM_FLAG | 0x1234n,
      walOffset: 32,
      walSize: 4096,
      walSalt1: 7,
      walSalt2: 8,
    },
    [2, 17, 40],
    CHECKSUM_FLAG | 0x5678n,
  );
  add(
    "nochecksum-4096",
    { pageSize: 4096, commit: 3, minTXID: 300, maxTXID: 310, flags: HEADER_FLAG_NO_CHECKSUM },
    [1, 3],
    0n,
  );
  add("empty-snapshot", { pageSize: 512, commit: 0, minTXID: 1, maxTXID: 1 }, [], CHECKSUM_FLAG);
  add(
    "legacy-snapshot-512",
    { pageSize: 512, commit: 3, minTXID: 1, maxTXID: 1 },
    [1, 2, 3],
    "snapshot",
    { contentChecksum: true },
  );
  add(
    "legacy-incremental-1024",
    { pageSize: 1024, commit: 9, minTXID: 5, maxTXID: 6, preApplyChecksum: CHECKSUM_FLAG | 1n },
    [4, 9],
    CHECKSUM_FLAG | 2n,
    { blockChecksum: true, contentSize: true, blockSize: 300 },
  );
  return bases;
}

const EXTREMES = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff];

function mutate(base: Base, rand: () => number): { bytes: Uint8Array; what: string } {
  const src = base.bytes;
  const pick = (n: number) => Math.floor(rand() * n);
  const kind = pick(8);
  const b = src.slice();
  switch (kind) {
    case 0: {
      const flips = 1 + pick(3);
      for (let i = 0; i < flips; i++) {
        const pos = pick(b.length);
        b[pos] = b[pos]! ^ (1 << pick(8));
      }
      return { bytes: b, what: `bitflip x${flips}` };
    }
    case 1: {
      const pos = pick(b.length);
      b[pos] = pick(256);
      return { bytes: b, what: `overwrite @${pos}` };
    }
    case 2: {
      const n = pick(src.length);
      return { bytes: src.slice(0, n), what: `truncate to ${n}` };
    }
    case 3: {
      const pos = pick(src.length + 1);
      const ins = randomBytes(1 + pick(8), rand);
      const out = new Uint8Array(src.length + ins.length);
      out.set(src.subarray(0, pos));
      out.set(ins, pos);
      out.set(src.subarray(pos), pos + ins.length);
      return { bytes: out, what: `insert ${ins.length} @${pos}` };
    }
    case 4: {
      const pos = pick(src.length);
      const n = 1 + pick(Math.min(16, src.length - pos));
      const out = new Uint8Array(src.length - n);
      out.set(src.subarray(0, pos));
      out.set(src.subarray(pos + n), pos);
      return { bytes: out, what: `delete ${n} @${pos}` };
    }
    case 5: {
      const from = pick(src.length);
      const to = pick(src.length);
      const n = 1 + pick(32);
      b.set(src.subarray(from, Math.min(from + n, src.length)).slice(0, b.length - to), to);
      return { bytes: b, what: `splice ${from}->${to}` };
    }
    default: {
      // Targeted field overwrite with extreme or random values.
      const dv = new DataView(b.buffer);
      const fields: [number, 1 | 2 | 4 | 8][] = [
        [4, 4],
        [8, 4],
        [12, 4],
        [16, 8],
        [24, 8],
        [32, 8],
        [40, 8],
        [48, 8],
        [56, 8],
        [64, 4],
        [68, 4],
        [72, 8],
        [b.length - 24, 8],
        [b.length - 16, 8],
        [b.length - 8, 8],
      ];
      for (const e of base.index)
        fields.push([e.offset, 4], [e.offset + 4, 2], [e.offset + 6, 4], [e.offset + 10, 1]);
      const indexStart = b.length - 24 - Number(dv.getBigUint64(b.length - 24));
      for (let p = Math.max(0, indexStart - 6); p < b.length - 24; p++) fields.push([p, 1]);
      const [off, size] = fields[pick(fields.length)]!;
      if (off < 0 || off + size > b.length) return { bytes: b, what: "noop" };
      const v = rand() < 0.6 ? EXTREMES[pick(EXTREMES.length)]! : Math.floor(rand() * 2 ** 32);
      if (size === 1) dv.setUint8(off, v & 0xff);
      else if (size === 2) dv.setUint16(off, v & 0xffff);
      else if (size === 4) dv.setUint32(off, v >>> 0);
      else
        dv.setBigUint64(
          off,
          rand() < 0.3 ? (1n << 64n) - 1n - BigInt(pick(3)) : BigInt(v) * BigInt(1 + pick(1 << 20)),
        );
      return { bytes: b, what: `field ${off}/${size}=${v}` };
    }
  }
}

function samePages(
  a: { pgno: number; data: Uint8Array }[],
  b: { pgno: number; data: Uint8Array }[],
): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => p.pgno === b[i]!.pgno && firstDifference(p.data, b[i]!.data) === -1);
}

/** Runs `fn`; an LtxError is an accepted outcome, anything else is a bug. */
async function tolerate(label: string, fn: () => unknown): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof LtxError && err instanceof PagecastError && err.code.startsWith("LTX_"))
      return false;
    throw new Error(`${label}: unexpected ${String(err)}`, { cause: err });
  }
}

describe("fuzz: damaged LTX files", () => {
  test(
    `${CASES} mutated files through decodeLtx, LtxDecoder, readLtxPageIndex and decodePageFrame`,
    async () => {
      const bases = makeBases();
      const rand = prng(0xc0ffee);
      const guesses = [1, 64, 100, 200, 1000, 65536];
      let decodedOk = 0;
      let rejected = 0;
      for (let i = 0; i < CASES; i++) {
        const base = bases[i % bases.length]!;
        const { bytes, what } = mutate(base, rand);
        const label = `case ${i} (${base.name}, ${what})`;

        const okSync = await tolerate(`${label} decodeLtx`, () => {
          const d = decodeLtx(bytes);
          // A damaged file may only "succeed" if it still means exactly the same pages.
          if (!samePages(d.pages, base.pages))
            throw new Error("decoded different pages without error");
        });
        if (okSync) decodedOk++;
        else rejected++;

        await tolerate(`${label} LtxDecoder`, async () => {
          const dec = new LtxDecoder(randomChunks(bytes, rand, 1 + Math.floor(rand() * 400)));
          const got: { pgno: number; data: Uint8Array }[] = [];
          for await (const p of dec.pages()) got.push(p);
          await dec.finish();
          if (!samePages(got, base.pages)) throw new Error("decoded different pages without error");
        });

        await tolerate(`${label} readLtxPageIndex`, async () => {
          const info = await readLtxPageIndex(memRangeReader(bytes), {
            suffixGuess: guesses[i % guesses.length]!,
          });
          for (const e of info.entries) {
            await tolerate(`${label} decodePageFrame(index)`, () =>
              decodePageFrame(bytes.subarray(e.offset, e.offset + e.size), {
                pgno: e.pgno,
                pageSize: info.header?.pageSize ?? base.pageSize,
              }),
            );
          }
        });

        for (const e of base.index) {
          await tolerate(`${label} decodePageFrame`, () =>
            decodePageFrame(bytes.subarray(e.offset, e.offset + e.size), {
              pgno: e.pgno,
              pageSize: base.pageSize,
            }),
          );
        }
      }
      // Sanity: the generator produces damage that is mostly detected, plus harmless no-ops.
      expect(rejected).toBeGreaterThan(CASES * 0.8);
      expect(decodedOk + rejected).toBe(CASES);
    },
    Math.max(120_000, CASES * 2),
  );

  test("random garbage of every small length", async () => {
    const rand = prng(7);
    for (let n = 0; n < 600; n++) {
      const junk = randomBytes(n, rand);
      if (n >= 4) junk.set([0x4c, 0x54, 0x58, 0x31], 0);
      await tolerate(`junk ${n}`, () => decodeLtx(junk));
      await tolerate(`junk ${n} stream`, () => new LtxDecoder([junk]).finish());
      await tolerate(`junk ${n} tail`, () => readLtxPageIndex(memRangeReader(junk)));
      await tolerate(`junk ${n} frame`, () => decodePageFrame(junk, { pgno: 1, pageSize: 512 }));
    }
  });
});
