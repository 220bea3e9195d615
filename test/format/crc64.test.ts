import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  CHECKSUM_FLAG,
  Crc64,
  Crc64Combiner,
  crc64,
  DatabaseChecksum,
  databaseChecksum,
  decodeLtx,
  encodeLtx,
  LtxError,
  lockPgno,
  pageChecksum,
} from "../../src/format/index.js";
import { xxh32 } from "../../src/format/xxh32.js";

const enc = new TextEncoder();

/** Bit-at-a-time reference (Go hash/crc64 semantics: inverted in and out), using BigInt. */
function crc64Reference(data: Uint8Array, crc = 0n): bigint {
  const POLY = 0xd800000000000000n;
  const MASK = (1n << 64n) - 1n;
  let c = ~crc & MASK;
  for (const b of data) {
    c ^= BigInt(b);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ POLY : c >> 1n;
  }
  return ~c & MASK;
}

describe("crc64 (CRC-64/ISO as Go computes it)", () => {
  test("check value of 123456789", () => {
    expect(crc64(enc.encode("123456789"))).toBe(0xb90956c775a41001n);
  });

  test("empty input is 0", () => {
    expect(crc64(new Uint8Array(0))).toBe(0n);
  });

  test("matches a bitwise reference for random inputs and offsets", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(20), (data, cut) => {
        const ref = crc64Reference(data);
        expect(crc64(data)).toBe(ref);
        const k = Math.min(cut, data.length);
        expect(crc64(data.subarray(k), crc64(data.subarray(0, k)))).toBe(ref);
        const c = new Crc64();
        c.update(data, 0, k);
        c.update(data, k, data.length);
        expect(c.value).toBe(ref);
      }),
      { numRuns: 300 },
    );
  });

  test("bulk (word-load) path matches the reference at every buffer alignment", () => {
    // Views at byte offsets 0..7 of a shared buffer, lengths around the
    // word-path threshold and past it (16- and 8-byte steps, byte tails),
    // with start/end inside the view.
    const backing = new Uint8Array(2048 + 16);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 167 + 13) & 0xff;
    for (let off = 0; off < 8; off++) {
      for (const len of [63, 64, 65, 71, 72, 73, 79, 80, 81, 88, 95, 96, 97, 1000, 2048]) {
        const view = backing.subarray(off, off + len);
        expect(crc64(view)).toBe(crc64Reference(view));
        const s = len >> 3;
        const c = new Crc64().update(view, s, len - 1);
        expect(c.value).toBe(crc64Reference(view.subarray(s, len - 1)));
      }
    }
  });
});

describe("Crc64Combiner", () => {
  test("crc(A ‖ B) from crc(A) and crc(B) matches the reference for many lengths", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const joined = new Uint8Array(a.length + b.length);
        joined.set(a);
        joined.set(b, a.length);
        const c = new Crc64().update(a);
        const cb = new Crc64().update(b);
        Crc64Combiner.for(b.length).append(c, cb.hi, cb.lo);
        expect(c.value).toBe(crc64Reference(joined));
      }),
      { numRuns: 200 },
    );
    for (const n of [4096, 65536]) {
      const a = new Uint8Array(13).map((_, i) => i * 7);
      const b = new Uint8Array(n).map((_, i) => (i * 31) ^ (i >>> 8));
      const c = new Crc64().update(a);
      const cb = new Crc64().update(b);
      Crc64Combiner.for(n).append(c, cb.hi, cb.lo);
      expect(c.value).toBe(new Crc64().update(a).update(b).value);
    }
  });

  test("decoded pages carry their page checksum, computed with the file checksum", () => {
    for (const pageSize of [512, 4096]) {
      const pages = [1, 2, 3].map((pgno) => ({
        pgno,
        data: new Uint8Array(pageSize).map((_, i) => (i * pgno) ^ (i >>> 3)),
      }));
      const file = encodeLtx({
        header: { pageSize, commit: 3, minTXID: 1, maxTXID: 1 },
        pages,
        postApplyChecksum: databaseChecksum(
          new Uint8Array(pageSize * 3).map(
            (_, i) => pages[Math.floor(i / pageSize)]!.data[i % pageSize]!,
          ),
          pageSize,
        ),
      });
      for (const p of decodeLtx(file).pages) {
        const sum = (BigInt(p.checksumHi!) << 32n) | BigInt(p.checksumLo!);
        expect(sum).toBe(pageChecksum(p.pgno, p.data));
      }
    }
  });

  test("refuses lengths it cannot precompute", () => {
    expect(() => new Crc64Combiner(-1)).toThrow(LtxError);
    expect(() => new Crc64Combiner(1.5)).toThrow(LtxError);
  });
});

describe("page and database checksums", () => {
  test("pageChecksum = crc64(pgno BE32 || page) | flag", () => {
    const page = new Uint8Array(4096);
    for (let i = 0; i < page.length; i++) page[i] = (i * 31) & 0xff;
    const prefixed = new Uint8Array(4 + 4096);
    new DataView(prefixed.buffer).setUint32(0, 7);
    prefixed.set(page, 4);
    expect(pageChecksum(7, page)).toBe(crc64Reference(prefixed) | CHECKSUM_FLAG);
  });

  test("DatabaseChecksum XORs page checksums, keeps bit 63, and can remove pages", () => {
    const a = new Uint8Array(512).fill(1);
    const b = new Uint8Array(512).fill(2);
    const sum = new DatabaseChecksum();
    expect(sum.value).toBe(CHECKSUM_FLAG);
    sum.add(1, a);
    sum.add(2, b);
    expect(sum.value).toBe(CHECKSUM_FLAG | (pageChecksum(1, a) ^ pageChecksum(2, b)));
    sum.remove(1, a);
    expect(sum.value).toBe(pageChecksum(2, b));
    sum.xor(pageChecksum(2, b));
    expect(sum.value).toBe(CHECKSUM_FLAG);
  });

  test("the lock page is excluded", () => {
    const size = 65536;
    const lock = lockPgno(size);
    expect(lock).toBe(16385);
    expect(lockPgno(4096)).toBe(262145);
    const sum = new DatabaseChecksum();
    sum.add(lock, new Uint8Array(size).fill(9));
    expect(sum.value).toBe(CHECKSUM_FLAG);
  });

  test("databaseChecksum over an image", () => {
    const db = new Uint8Array(3 * 1024);
    for (let i = 0; i < db.length; i++) db[i] = i % 251;
    const expected =
      CHECKSUM_FLAG |
      (pageChecksum(1, db.subarray(0, 1024)) ^
        pageChecksum(2, db.subarray(1024, 2048)) ^
        pageChecksum(3, db.subarray(2048)));
    expect(databaseChecksum(db, 1024)).toBe(expected);
  });

  test("invalid arguments are typed errors", () => {
    expect(() => pageChecksum(0, new Uint8Array(512))).toThrow(LtxError);
    expect(() => pageChecksum(1, new Uint8Array(100))).toThrow(LtxError);
    expect(() => lockPgno(1000)).toThrow(LtxError);
  });
});

describe("xxh32", () => {
  test("known answers", () => {
    expect(xxh32(new Uint8Array(0))).toBe(0x02cc5d05);
    expect(xxh32(enc.encode("a"))).toBe(0x550d7456);
    expect(xxh32(enc.encode("abc"))).toBe(0x32d153ff);
    expect(xxh32(enc.encode("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f);
  });
});
