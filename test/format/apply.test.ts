import { describe, expect, test } from "vitest";
import {
  applyLtxFiles,
  CHECKSUM_FLAG,
  DatabaseChecksum,
  databaseChecksum,
  encodeLtx,
  HEADER_FLAG_NO_CHECKSUM,
  LtxApplier,
  LtxDecoder,
  LtxError,
  type LtxPage,
} from "../../src/format/index.js";
import {
  BufferTarget,
  concat,
  firstDifference,
  prng,
  randomBytes,
  randomChunks,
} from "./helpers.js";

const PS = 512;

function pageOf(seed: number): Uint8Array {
  return randomBytes(PS, prng(seed));
}

/** Builds an LTX file turning image `before` (pages) into `after`. */
function diff(
  before: Uint8Array[],
  after: Uint8Array[],
  minTXID: number,
  maxTXID: number,
  opts: { noChecksum?: boolean; post?: bigint; pre?: bigint } = {},
): Uint8Array {
  const img = (pages: Uint8Array[]) => concat(pages);
  const changed = after
    .map((data, i) => ({ pgno: i + 1, data }))
    .filter((p) => {
      const old = before[p.pgno - 1];
      return minTXID === 1 || old === undefined || firstDifference(old, p.data) !== -1;
    });
  const tracked = !opts.noChecksum;
  return encodeLtx({
    header: {
      pageSize: PS,
      commit: after.length,
      minTXID,
      maxTXID,
      flags: opts.noChecksum ? HEADER_FLAG_NO_CHECKSUM : 0,
      preApplyChecksum:
        minTXID === 1 || !tracked ? 0n : (opts.pre ?? databaseChecksum(img(before), PS)),
    },
    pages: changed,
    postApplyChecksum: tracked ? (opts.post ?? databaseChecksum(img(after), PS)) : 0n,
  });
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(LtxError);
    return (err as LtxError).code;
  }
}

describe("LtxApplier", () => {
  const v1 = [pageOf(1), pageOf(2), pageOf(3)];
  const v2 = [pageOf(1), pageOf(22), pageOf(3), pageOf(4)];
  const v3 = [pageOf(31), pageOf(22)];

  test("applies a snapshot and incrementals (growth and shrink) to an identical image", async () => {
    const target = new BufferTarget();
    target.write(0, new Uint8Array(10 * PS).fill(0xee)); // stale content must vanish
    const files = [diff([], v1, 1, 5), diff(v1, v2, 6, 6), diff(v2, v3, 7, 9)];
    const rand = prng(3);
    const pos = await applyLtxFiles(
      target,
      files.map((f) => randomChunks(f, rand, 200)),
    );
    expect(pos).toEqual({
      txid: 9,
      pageSize: PS,
      commit: 2,
      checksum: databaseChecksum(concat(v3), PS),
    });
    expect(target.bytes()).toEqual(concat(v3));
  });

  test("reports positions and results per file", async () => {
    const target = new BufferTarget();
    const a = new LtxApplier(target);
    expect(a.position).toBeUndefined();
    const r1 = await a.apply([diff([], v1, 1, 5)]);
    expect(r1.pageCount).toBe(3);
    expect(r1.position.txid).toBe(5);
    const r2 = await a.apply(new LtxDecoder([diff(v1, v2, 6, 6)]));
    expect(r2.pageCount).toBe(2);
    expect(a.position?.commit).toBe(4);
    expect(target.bytes()).toEqual(concat(v2));
  });

  test("database growth without writing every new page counts zero pages", async () => {
    const target = new BufferTarget();
    const a = new LtxApplier(target);
    await a.apply([diff([], v1, 1, 1)]);
    const zero = new Uint8Array(PS);
    const grown = [...v1, zero, pageOf(5)];
    const sum = new DatabaseChecksum();
    for (const [i, p] of grown.entries()) sum.add(i + 1, p);
    const file = encodeLtx({
      header: {
        pageSize: PS,
        commit: 5,
        minTXID: 2,
        maxTXID: 2,
        preApplyChecksum: databaseChecksum(concat(v1), PS),
      },
      pages: [{ pgno: 5, data: grown[4]! }],
      postApplyChecksum: sum.value,
    });
    await a.apply([file]);
    expect(target.bytes()).toEqual(concat(grown));
    expect(a.position?.checksum).toBe(sum.value);
  });

  test("chain rules: snapshot first, contiguous TXIDs, constant page size", async () => {
    expect(await code(new LtxApplier(new BufferTarget()).apply([diff(v1, v2, 6, 6)]))).toBe(
      "LTX_NOT_CONTIGUOUS",
    );

    const a = new LtxApplier(new BufferTarget());
    await a.apply([diff([], v1, 1, 5)]);
    expect(await code(a.apply([diff(v1, v2, 7, 7)]))).toBe("LTX_NOT_CONTIGUOUS");
    // The applier refuses to continue after a failure.
    expect(await code(a.apply([diff(v1, v2, 6, 6)]))).toBe("LTX_INVALID_STATE");

    const b = new LtxApplier(new BufferTarget());
    await b.apply([diff([], v1, 1, 5)]);
    expect(await code(b.apply([diff([], v1, 1, 5)]))).toBe("LTX_NOT_CONTIGUOUS");

    const c = new LtxApplier(new BufferTarget());
    await c.apply([diff([], v1, 1, 5)]);
    const other = encodeLtx({
      header: {
        pageSize: 1024,
        commit: 1,
        minTXID: 6,
        maxTXID: 6,
        preApplyChecksum: databaseChecksum(concat(v1), PS),
      },
      pages: [{ pgno: 1, data: new Uint8Array(1024) }],
      postApplyChecksum: CHECKSUM_FLAG | 1n,
    });
    expect(await code(c.apply([other]))).toBe("LTX_NOT_CONTIGUOUS");
  });

  test("pre-apply and post-apply checksums are verified", async () => {
    const a = new LtxApplier(new BufferTarget());
    await a.apply([diff([], v1, 1, 5)]);
    expect(await code(a.apply([diff(v1, v2, 6, 6, { pre: CHECKSUM_FLAG | 12345n })]))).toBe(
      "LTX_CHECKSUM_MISMATCH",
    );

    const b = new LtxApplier(new BufferTarget());
    await b.apply([diff([], v1, 1, 5)]);
    expect(await code(b.apply([diff(v1, v2, 6, 6, { post: CHECKSUM_FLAG | 999n })]))).toBe(
      "LTX_CHECKSUM_MISMATCH",
    );

    // With verification off, a wrong post-apply checksum is taken at its word.
    const c = new LtxApplier(new BufferTarget(), { verifyChecksums: false });
    await c.apply([diff([], v1, 1, 5)]);
    await c.apply([diff(v1, v2, 6, 6, { post: CHECKSUM_FLAG | 999n })]);
    expect(c.position?.checksum).toBe(CHECKSUM_FLAG | 999n);
  });

  test("NoChecksum files apply without checksum checks", async () => {
    const target = new BufferTarget();
    const pos = await applyLtxFiles(target, [
      [diff([], v1, 1, 1, { noChecksum: true })],
      [diff(v1, v2, 2, 3, { noChecksum: true })],
    ]);
    expect(pos.txid).toBe(3);
    expect(target.bytes()).toEqual(concat(v2));
  });

  test("a corrupt file fails with LtxError and leaves the applier refusing more", async () => {
    const a = new LtxApplier(new BufferTarget());
    const file = diff([], v1, 1, 5);
    const bad = file.slice();
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff;
    expect(await code(a.apply([bad]))).not.toBe("ok");
    expect(await code(a.apply([file]))).toBe("LTX_INVALID_STATE");
  });

  test("resume continues from an existing image (read back to build checksums)", async () => {
    const target = new BufferTarget();
    target.write(0, concat(v1));
    const a = new LtxApplier(target);
    expect(
      await code(a.resume({ txid: 5, pageSize: PS, commit: 3, checksum: CHECKSUM_FLAG | 3n })),
    ).toBe("LTX_CHECKSUM_MISMATCH");
    const b = new LtxApplier(target);
    await b.resume({
      txid: 5,
      pageSize: PS,
      commit: 3,
      checksum: databaseChecksum(concat(v1), PS),
    });
    await b.apply([diff(v1, v2, 6, 6)]);
    expect(target.bytes()).toEqual(concat(v2));

    const noRead = { write: () => {}, truncate: () => {} };
    expect(await code(new LtxApplier(noRead).resume({ txid: 5, pageSize: PS, commit: 3 }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
    expect(() => new LtxApplier({} as never)).toThrow(LtxError);
    expect(await code(applyLtxFiles(new BufferTarget(), []))).toBe("LTX_INVALID_ARGUMENT");
  });

  test("pages the decoder stored itself are accounted for, not written again", async () => {
    /** Writes each page to the target itself, as restore's decode threads do. */
    class StoringDecoder extends LtxDecoder {
      constructor(
        file: Uint8Array,
        readonly target: BufferTarget,
        readonly keepChecksum = true,
      ) {
        super([file]);
      }
      override async *pages(): AsyncGenerator<LtxPage> {
        for await (const p of super.pages()) {
          this.target.write((p.pgno - 1) * PS, p.data);
          yield {
            pgno: p.pgno,
            data: new Uint8Array(0),
            stored: true,
            ...(this.keepChecksum ? { checksumHi: p.checksumHi!, checksumLo: p.checksumLo! } : {}),
          };
        }
      }
    }
    const target = new BufferTarget();
    const writes: number[] = [];
    const watched = {
      write: (offset: number, bytes: Uint8Array) => {
        writes.push(offset);
        target.write(offset, bytes);
      },
      truncate: (size: number) => target.truncate(size),
    };
    const a = new LtxApplier(watched);
    await a.apply(new StoringDecoder(diff([], v1, 1, 5), target));
    const r = await a.apply(new StoringDecoder(diff(v1, v2, 6, 6), target));
    expect(writes).toEqual([]);
    expect(target.bytes()).toEqual(concat(v2));
    // The checksums the decoder reported still verify the image.
    expect(r.position.checksum).toBe(databaseChecksum(concat(v2), PS));
    // A stored page without its checksum cannot be accounted for.
    const b = new LtxApplier(watched);
    expect(await code(b.apply(new StoringDecoder(diff([], v1, 1, 5), target, false)))).toBe(
      "LTX_INVALID_STATE",
    );
  });
});
