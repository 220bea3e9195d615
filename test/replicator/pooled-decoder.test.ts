/**
 * Restore's pooled decoder (frames split on this thread, pages decompressed
 * and checksummed in batches) against the streaming LtxDecoder: the same
 * pages, page checksums and trailer for every input (page sizes, snapshots
 * and deltas, tracked checksums or not, any chunking, multi-batch files,
 * frames straddling chunks, LZ4-frame pages), and a failure wherever the
 * streaming decoder fails. Inline here; restore-threads.test.ts runs the
 * built package's worker threads.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import {
  CHECKSUM_FLAG,
  encodeLtx,
  HEADER_FLAG_NO_CHECKSUM,
  LtxDecoder,
  LtxError,
  type LtxHeaderInit,
  pageChecksum,
} from "../../src/format/index.js";
import { PageDecodePool } from "../../src/replicator/page-decode-pool.js";
import { PooledLtxDecoder } from "../../src/replicator/pooled-ltx-decoder.js";
import { fixtureContent, prng, randomChunks } from "../format/helpers.js";

const pool = new PageDecodePool(0);
afterAll(() => pool.close());

interface Decoded {
  header: unknown;
  pages: { pgno: number; data: Uint8Array; hi: number | undefined; lo: number | undefined }[];
  trailer: unknown;
}

async function* stream(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

async function decodeWith(dec: LtxDecoder): Promise<Decoded | { error: unknown }> {
  try {
    const header = await dec.readHeader();
    const pages: Decoded["pages"] = [];
    for await (const p of dec.pages()) {
      pages.push({ pgno: p.pgno, data: p.data.slice(), hi: p.checksumHi, lo: p.checksumLo });
    }
    const { trailer } = await dec.finish();
    return { header, pages, trailer };
  } catch (error) {
    return { error };
  }
}

const streaming = (chunks: Uint8Array[]) => decodeWith(new LtxDecoder(stream(chunks)));
const pooled = (chunks: Uint8Array[]) => decodeWith(new PooledLtxDecoder(stream(chunks), pool));

/** A valid LTX file: a snapshot of `commit` pages or a delta of some of them. */
function ltxFile(opts: {
  pageSize: number;
  commit: number;
  snapshot: boolean;
  checksums: boolean;
  seed: number;
  compat?: "0.5.1";
}): Uint8Array {
  const { pageSize, commit, snapshot, checksums, seed } = opts;
  const rand = prng(seed);
  const lock = 0x40000000 / pageSize + 1;
  const pages: { pgno: number; data: Uint8Array }[] = [];
  for (let pgno = 1; pgno <= commit; pgno++) {
    if (pgno === lock || (!snapshot && rand() < 0.5)) continue;
    // Mixed content: text-like, random and zero pages.
    const kind = rand();
    const data =
      kind < 0.2
        ? new Uint8Array(pageSize)
        : fixtureContent(pageSize, kind < 0.4 ? "random" : Math.floor(rand() * 1e9));
    pages.push({ pgno, data });
  }
  // The database checksum: XOR of the page checksums, flag bit set.
  let post = 0n;
  if (checksums) {
    for (const p of pages) post ^= pageChecksum(p.pgno, p.data);
    post |= CHECKSUM_FLAG;
  }
  const header: LtxHeaderInit = {
    pageSize,
    commit,
    minTXID: snapshot ? 1 : 5,
    maxTXID: snapshot ? 4 : 6,
    timestamp: 1_700_000_000_000,
    flags: checksums ? 0 : HEADER_FLAG_NO_CHECKSUM,
    preApplyChecksum: snapshot || !checksums ? 0n : CHECKSUM_FLAG | 7n,
  };
  return encodeLtx({
    header,
    pages,
    postApplyChecksum: snapshot ? post : checksums ? CHECKSUM_FLAG | 9n : 0n,
    ...(opts.compat ? { compat: opts.compat } : {}),
  });
}

function expectSame(a: Decoded | { error: unknown }, b: Decoded | { error: unknown }): void {
  if ("error" in a) throw a.error;
  if ("error" in b) throw b.error;
  expect(b.header).toEqual(a.header);
  expect(b.trailer).toEqual(a.trailer);
  expect(b.pages.length).toBe(a.pages.length);
  for (let i = 0; i < a.pages.length; i++) {
    const x = a.pages[i]!;
    const y = b.pages[i]!;
    expect([y.pgno, y.hi, y.lo]).toEqual([x.pgno, x.hi, x.lo]);
    expect(Buffer.from(y.data).equals(Buffer.from(x.data))).toBe(true);
  }
}

describe("PooledLtxDecoder (inline) equals the streaming decoder", () => {
  test("random files, any chunking", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(512, 1024, 4096, 65536),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 1e9 }),
        fc.constantFrom(7, 301, 5000, 1 << 20),
        async (pageSize, n, snapshot, checksums, seed, maxChunk) => {
          const commit = Math.max(1, Math.ceil((n * 4096) / pageSize));
          const file = ltxFile({ pageSize, commit, snapshot, checksums, seed });
          const chunks = randomChunks(file, prng(seed), maxChunk);
          expectSame(await streaming(chunks), await pooled(chunks));
        },
      ),
      { numRuns: 60 },
    );
  });

  test("a multi-batch snapshot: frames straddling chunks, batches rotating mid-chunk", async () => {
    // ~7 MB of pages (several 1 MiB batches), in chunks of odd sizes.
    const file = ltxFile({
      pageSize: 4096,
      commit: 1800,
      snapshot: true,
      checksums: true,
      seed: 3,
    });
    for (const size of [4099, 65_537, 3 << 20]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < file.length; i += size) chunks.push(file.subarray(i, i + size));
      expectSame(await streaming(chunks), await pooled(chunks));
    }
  });

  test("LZ4-frame pages (ltx v0.5.1) go through the streaming decoder", async () => {
    const file = ltxFile({
      pageSize: 4096,
      commit: 30,
      snapshot: true,
      checksums: true,
      seed: 5,
      compat: "0.5.1",
    });
    const chunks = randomChunks(file, prng(5), 1000);
    expectSame(await streaming(chunks), await pooled(chunks));
  });
});

describe("PooledLtxDecoder fails wherever the streaming decoder fails", () => {
  test("one flipped byte, or a truncated or extended file", async () => {
    const base = ltxFile({ pageSize: 1024, commit: 40, snapshot: true, checksums: true, seed: 11 });
    const delta = ltxFile({
      pageSize: 1024,
      commit: 40,
      snapshot: false,
      checksums: true,
      seed: 12,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(base, delta),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom("flip", "truncate", "extend"),
        async (file, at, xor, how) => {
          const i = at % file.length;
          let bad: Uint8Array;
          if (how === "flip") {
            bad = file.slice();
            bad[i]! ^= xor;
          } else if (how === "truncate") {
            bad = file.subarray(0, i);
          } else {
            bad = new Uint8Array(file.length + 1);
            bad.set(file);
          }
          const chunks = randomChunks(bad, prng(at), 700);
          const want = await streaming(chunks);
          const got = await pooled(chunks);
          if ("error" in want) {
            expect("error" in got).toBe(true);
            expect((got as { error: unknown }).error).toBeInstanceOf(LtxError);
          } else {
            // A flip the format cannot see (e.g. in a NoChecksum field): same result.
            expectSame(want, got);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a page that does not decompress names the page", async () => {
    const file = ltxFile({ pageSize: 4096, commit: 8, snapshot: true, checksums: true, seed: 2 });
    // The first frame's payload starts after the header (100), page header (6) and size (4).
    const bad = file.slice();
    bad[110]! = 0xff;
    bad[111]! = 0xff;
    const got = await pooled([bad]);
    expect("error" in got).toBe(true);
    const err = (got as { error: LtxError }).error;
    expect(err).toBeInstanceOf(LtxError);
    expect(err.code).toMatch(/^LTX_/);
  });
});

describe("PooledLtxDecoder writing pages to a file (restore's output)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pagecast-pooled-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("every page lands at its offset; pages come out stored, with the same checksums", async () => {
    for (const [i, snapshot] of [true, false].entries()) {
      const file = ltxFile({ pageSize: 4096, commit: 1800, snapshot, checksums: true, seed: 7 });
      const chunks = randomChunks(file, prng(i), 70_000);
      const want = await streaming(chunks);
      if ("error" in want) throw want.error;
      const path = join(dir, `out-${i}.db`);
      const fd = openSync(path, "w+");
      let storedBytes = 0;
      const got: { pgno: number; hi?: number; lo?: number; stored?: boolean; size: number }[] = [];
      try {
        const dec = new PooledLtxDecoder(stream(chunks), pool, {
          writeFd: fd,
          onStored: (n) => {
            storedBytes += n;
          },
        });
        await dec.readHeader();
        for await (const p of dec.pages()) {
          got.push({
            pgno: p.pgno,
            hi: p.checksumHi,
            lo: p.checksumLo,
            stored: p.stored,
            size: p.data.length,
          });
        }
        expect((await dec.finish()).trailer).toEqual(want.trailer);
      } finally {
        closeSync(fd);
      }
      expect(got.map((p) => [p.pgno, p.hi, p.lo])).toEqual(
        want.pages.map((p) => [p.pgno, p.hi, p.lo]),
      );
      expect(got.every((p) => p.stored === true && p.size === 0)).toBe(true);
      expect(storedBytes).toBe(want.pages.length * 4096);
      const written = readFileSync(path);
      for (const p of want.pages) {
        const at = (p.pgno - 1) * 4096;
        expect(Buffer.from(p.data).equals(written.subarray(at, at + 4096))).toBe(true);
      }
    }
  });

  test("a failed write fails the decoder with the file system's error", async () => {
    const file = ltxFile({ pageSize: 4096, commit: 40, snapshot: true, checksums: true, seed: 9 });
    const path = join(dir, "read-only.db");
    closeSync(openSync(path, "w"));
    const fd = openSync(path, "r");
    try {
      const got = await decodeWith(new PooledLtxDecoder(stream([file]), pool, { writeFd: fd }));
      expect("error" in got).toBe(true);
      expect((got as { error: { code?: string } }).error.code).toBe("EBADF");
    } finally {
      closeSync(fd);
    }
  });
});
