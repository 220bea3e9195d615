import { describe, expect, test } from "vitest";
import {
  CHECKSUM_FLAG,
  decodePageFrame,
  encodeLtx,
  LtxError,
  type RangeReader,
  readLtxPageIndex,
  storeRangeReader,
} from "../../src/format/index.js";
import type { GetOptions, GetResult, ObjectStore } from "../../src/storage/object-store.js";
import { memRangeReader } from "./helpers.js";

function manyPages(n: number, pageSize = 512): Uint8Array {
  return encodeLtx({
    header: { pageSize, commit: n, minTXID: 2, maxTXID: 2, preApplyChecksum: CHECKSUM_FLAG | 1n },
    pages: Array.from({ length: n }, (_, i) => ({
      pgno: i + 1,
      data: new Uint8Array(pageSize).fill(i & 0xff),
    })),
    postApplyChecksum: CHECKSUM_FLAG | 2n,
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

describe("readLtxPageIndex", () => {
  test("small file: one suffix read, header included", async () => {
    const file = manyPages(3);
    const r = memRangeReader(file);
    const info = await readLtxPageIndex(r);
    expect(r.reads).toEqual([{ suffix: 65536 }]);
    expect(info.header?.commit).toBe(3);
    expect(info.entries.toArray().map((e) => e.pgno)).toEqual([1, 2, 3]);
    // JSON (ltx-dump, logs) shows the entries as an array of objects.
    expect(JSON.parse(JSON.stringify(info.entries))).toEqual(info.entries.toArray());
    expect(info.entries.toArray()[0]!.offset).toBe(100);
    expect(info.indexOffset + info.indexSize + 24).toBe(file.length);
  });

  test("large index: suffix read then one exact range read", async () => {
    const file = manyPages(3000);
    const r = memRangeReader(file);
    const info = await readLtxPageIndex(r, { suffixGuess: 1024 });
    expect(info.indexSize).toBeGreaterThan(1024);
    expect(r.reads).toEqual([
      { suffix: 1024 },
      { offset: info.indexOffset, length: info.indexSize },
    ]);
    expect(info.header).toBeUndefined();
    expect(info.entries.count).toBe(3000);
    const e = info.entries.toArray()[2999]!;
    const page = decodePageFrame(file.subarray(e.offset, e.offset + e.size), {
      pgno: 3000,
      pageSize: 512,
    });
    expect(page).toEqual(new Uint8Array(512).fill(2999 & 0xff));
  });

  test("index exactly inside the suffix: one read, no header", async () => {
    const file = manyPages(3000);
    const probe = await readLtxPageIndex(memRangeReader(file), { suffixGuess: 1 << 20 });
    const r = memRangeReader(file);
    const info = await readLtxPageIndex(r, { suffixGuess: probe.indexSize + 24 });
    expect(r.reads.length).toBe(1);
    expect(info.header).toBeUndefined();
    expect(info.entries).toEqual(probe.entries);
  });

  test("inconsistent range responses are rejected", async () => {
    const file = manyPages(3000);
    const wrap = (
      f: (
        range: Parameters<RangeReader["read"]>[0],
        n: number,
      ) => Awaited<ReturnType<RangeReader["read"]>>,
    ) => {
      let n = 0;
      return { read: async (range: Parameters<RangeReader["read"]>[0]) => f(range, n++) };
    };
    const base = memRangeReader(file);
    const sizeChanged = wrap((range, n) => {
      if (n === 0)
        return { bytes: file.slice(-1024), offset: file.length - 1024, totalSize: file.length };
      return {
        bytes: new Uint8Array((range as { length: number }).length),
        offset: (range as { offset: number }).offset,
        totalSize: file.length + 1,
      };
    });
    expect(await code(readLtxPageIndex(sizeChanged, { suffixGuess: 1024 }))).toBe("LTX_CORRUPT");
    const shortRead = wrap(() => ({
      bytes: file.slice(-10),
      offset: file.length - 10,
      totalSize: file.length,
    }));
    expect(await code(readLtxPageIndex(shortRead, { suffixGuess: 1024 }))).toBe("LTX_CORRUPT");
    const wrongOffset = wrap(() => ({
      bytes: file.slice(-1024),
      offset: 0,
      totalSize: file.length,
    }));
    expect(await code(readLtxPageIndex(wrongOffset, { suffixGuess: 1024 }))).toBe("LTX_CORRUPT");
    const junk = wrap(() => null as never);
    expect(await code(readLtxPageIndex(junk))).toBe("LTX_CORRUPT");
    expect(await code(readLtxPageIndex(base, { suffixGuess: 0 }))).toBe("LTX_INVALID_ARGUMENT");
    expect(await code(readLtxPageIndex(memRangeReader(file.subarray(0, 50))))).toBe(
      "LTX_TRUNCATED",
    );
  });

  test("index entries are checked against the layout", async () => {
    // Four 512-byte pages filled with one value: each frame is 6 + 4 + 12 = 22 bytes, so the
    // index is (1,100,22) (2,122,22) (3,144,22) (4,166,22) 0, all one-byte varints.
    const file = manyPages(4);
    const info = await readLtxPageIndex(memRangeReader(file));
    expect(info.entries.toArray().map((e) => e.offset)).toEqual([100, 122, 144, 166]);
    const at = info.indexOffset;
    expect(Array.from(file.subarray(at, at + 13))).toEqual([
      1,
      100,
      22,
      2,
      122,
      22,
      3,
      (144 & 0x7f) | 0x80,
      1,
      22,
      4,
      (166 & 0x7f) | 0x80,
      1,
    ]);
    const edit = (i: number, v: number) => {
      const b = file.slice();
      b[at + i] = v;
      return b;
    };
    expect(await code(readLtxPageIndex(memRangeReader(edit(4, 121))))).toBe("LTX_CORRUPT"); // overlapping frame
    expect(await code(readLtxPageIndex(memRangeReader(edit(3, 1))))).toBe("LTX_CORRUPT"); // pgno not ascending
    expect(await code(readLtxPageIndex(memRangeReader(edit(2, 23))))).toBe("LTX_CORRUPT"); // size leaves a gap
    expect(await code(readLtxPageIndex(memRangeReader(edit(9, 5))))).toBe("LTX_CORRUPT"); // beyond commit 4 (header known)
    const zeroHeader = file.slice();
    zeroHeader[at - 1] = 1;
    expect(await code(readLtxPageIndex(memRangeReader(zeroHeader)))).toBe("LTX_CORRUPT");
  });
});

describe("decodePageFrame", () => {
  const file = manyPages(2, 1024);
  const frame = async () => {
    const info = await readLtxPageIndex(memRangeReader(file));
    const e = info.entries.toArray()[1]!;
    return file.slice(e.offset, e.offset + e.size);
  };

  test("checks page number, flags, size prefix and page size", async () => {
    const f = await frame();
    expect(decodePageFrame(f, { pgno: 2, pageSize: 1024 })).toEqual(new Uint8Array(1024).fill(1));
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
        return "ok";
      } catch (err) {
        expect(err).toBeInstanceOf(LtxError);
        return (err as LtxError).code;
      }
    };
    expect(codeOf(() => decodePageFrame(f, { pgno: 1, pageSize: 1024 }))).toBe("LTX_CORRUPT");
    expect(codeOf(() => decodePageFrame(f, { pgno: 2, pageSize: 2048 }))).toBe("LTX_CORRUPT");
    expect(
      codeOf(() => decodePageFrame(f.subarray(0, f.length - 1), { pgno: 2, pageSize: 1024 })),
    ).toBe("LTX_CORRUPT");
    expect(
      codeOf(() => decodePageFrame(Uint8Array.from([...f, 0]), { pgno: 2, pageSize: 1024 })),
    ).toBe("LTX_CORRUPT");
    const flags = f.slice();
    flags[5] = 3;
    expect(codeOf(() => decodePageFrame(flags, { pgno: 2, pageSize: 1024 }))).toBe("LTX_CORRUPT");
    expect(codeOf(() => decodePageFrame(f.subarray(0, 4), { pgno: 2, pageSize: 1024 }))).toBe(
      "LTX_CORRUPT",
    );
    expect(codeOf(() => decodePageFrame(f, { pgno: 0, pageSize: 1024 }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
    expect(codeOf(() => decodePageFrame(f, { pgno: 2, pageSize: 1000 }))).toBe(
      "LTX_INVALID_ARGUMENT",
    );
  });
});

describe("storeRangeReader", () => {
  test("maps ObjectStore.get ranges", async () => {
    const file = manyPages(3000);
    const calls: GetOptions[] = [];
    const store = {
      url: "mem://test",
      async get(key: string, options?: GetOptions): Promise<GetResult> {
        expect(key).toBe("0000/0000000000000002-0000000000000002.ltx");
        calls.push(options ?? {});
        const range = options?.range;
        let start = 0;
        let end = file.length;
        if (range && "suffix" in range) start = Math.max(0, file.length - range.suffix);
        else if (range) {
          start = Math.min(range.offset, file.length);
          end = Math.min(range.offset + range.length, file.length);
        }
        return {
          notModified: false,
          body: file.slice(start, end),
          offset: start,
          meta: { key, size: file.length, etag: "e", lastModified: new Date(0) },
        };
      },
    } as unknown as ObjectStore;
    const info = await readLtxPageIndex(
      storeRangeReader(store, "0000/0000000000000002-0000000000000002.ltx"),
      {
        suffixGuess: 4096,
      },
    );
    expect(info.entries.count).toBe(3000);
    expect(calls.map((c) => c.range)).toEqual([
      { suffix: 4096 },
      { offset: info.indexOffset, length: info.indexSize },
    ]);

    const notModified = { get: async () => ({ notModified: true }) } as unknown as ObjectStore;
    expect(await code(storeRangeReader(notModified, "k").read({ suffix: 10 }))).toBe("LTX_CORRUPT");
  });
});
