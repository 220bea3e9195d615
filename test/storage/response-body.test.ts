/** readBodyAtMost: bodies read into one array of the announced length, bounded. */
import { describe, expect, test } from "vitest";
import { readBodyAtMost } from "../../src/storage/response-body.js";

describe("readBodyAtMost", () => {
  async function* chunks(sizes: number[]): AsyncGenerator<Uint8Array> {
    let n = 0;
    for (const size of sizes) {
      const c = new Uint8Array(size);
      for (let i = 0; i < size; i++) c[i] = (n + i) & 0xff;
      n += size;
      yield c;
    }
  }
  const expected = (total: number) => Uint8Array.from({ length: total }, (_, i) => i & 0xff);

  test("with the announced length: one array of exactly that size", async () => {
    const out = await readBodyAtMost(chunks([1000, 5000, 3]), Number.POSITIVE_INFINITY, 6003);
    expect(out).toEqual(expected(6003));
    expect(out?.buffer.byteLength).toBe(6003);
  });

  test("a body longer or shorter than announced is returned as read; over the limit: undefined", async () => {
    expect(await readBodyAtMost(chunks([100, 100, 50]), 1000, 120)).toEqual(expected(250));
    expect(await readBodyAtMost(chunks([100, 20]), 1000, 500)).toEqual(expected(120));
    expect(await readBodyAtMost(chunks([100, 100]), 150, 100)).toBeUndefined();
    expect(await readBodyAtMost(chunks([100, 100]), 150)).toBeUndefined();
  });

  test("an announced length beyond any range GET is not allocated up front", async () => {
    // A lying server announcing 1 TB sends 300 bytes: no 1 TB allocation, the bytes as read.
    expect(await readBodyAtMost(chunks([200, 100]), Number.POSITIVE_INFINITY, 1e12)).toEqual(
      expected(300),
    );
  });
});
