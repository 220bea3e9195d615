/**
 * fileApplyTarget with write-behind: whatever order the disk completes
 * writes in, the file ends up as if every write had happened in call order
 * (overlapping writes wait for the earlier ones; truncate, read and flush
 * wait for all), and a failed write surfaces.
 */
import type { FileHandle } from "node:fs/promises";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { fileApplyTarget } from "../../src/replicator/file-apply-target.js";

/** An in-memory "file" whose writes complete after random delays (out of order). */
function slowFile(rand: () => number, failAt?: number, failSync = false) {
  let data = new Uint8Array(0);
  /** File length at each datasync call. */
  const syncs: number[] = [];
  let writes = 0;
  let maxConcurrent = 0;
  let concurrent = 0;
  const handle = {
    async write(buf: Uint8Array, off: number, len: number, pos: number) {
      const n = writes++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      // Copy now (the caller may not reuse the buffer before we resolve, but the bytes must be these).
      const bytes = buf.slice(off, off + len);
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 4)));
      concurrent--;
      if (n === failAt) throw new Error("disk full");
      if (data.length < pos + len) {
        const grown = new Uint8Array(pos + len);
        grown.set(data);
        data = grown;
      }
      data.set(bytes, pos);
      return { bytesWritten: len, buffer: buf };
    },
    async truncate(size: number) {
      const next = new Uint8Array(size);
      next.set(data.subarray(0, Math.min(size, data.length)));
      data = next;
    },
    async datasync() {
      syncs.push(data.length);
      await new Promise((r) => setTimeout(r, 2));
      if (failSync) throw new Error("I/O error on sync");
    },
    async read(buf: Uint8Array, off: number, len: number, pos: number) {
      const got = data.subarray(pos, pos + len);
      buf.set(got, off);
      return { bytesRead: got.length, buffer: buf };
    },
  };
  return {
    handle: handle as unknown as FileHandle,
    contents: () => data,
    stats: () => ({ maxConcurrent, syncs }),
  };
}

const PAGE = 512;

/** A seeded pseudo-random source in [0, 1): repeatable delays. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

describe("fileApplyTarget write-behind", () => {
  test("random writes (runs, jumps, rewrites) end up as written in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ pgno: fc.integer({ min: 1, max: 40 }), run: fc.integer({ min: 1, max: 8 }) }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.integer({ min: 1, max: 1e9 }),
        async (ops, seed) => {
          let x = seed;
          const rand = () => {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            return x / 2 ** 32;
          };
          const file = slowFile(rand);
          const target = fileApplyTarget(file.handle, { writeBuffer: 4 * PAGE, writesInFlight: 3 });
          const model = new Uint8Array(48 * PAGE);
          let version = 0;
          for (const op of ops) {
            version++;
            for (let p = op.pgno; p < op.pgno + op.run; p++) {
              const page = new Uint8Array(PAGE).fill((version * 31 + p) & 0xff);
              model.set(page, (p - 1) * PAGE);
              await target.write((p - 1) * PAGE, page);
            }
          }
          await target.truncate(48 * PAGE);
          expect(Buffer.from(file.contents()).equals(Buffer.from(model))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("several writes go out at once; read and flush see everything; a failure surfaces", async () => {
    const rand = lcg(7);
    const file = slowFile(rand);
    const target = fileApplyTarget(file.handle, { writeBuffer: 2 * PAGE, writesInFlight: 4 });
    for (let p = 1; p <= 40; p++) await target.write((p - 1) * PAGE, new Uint8Array(PAGE).fill(p));
    expect((await target.read(39 * PAGE, PAGE))[0]).toBe(40);
    await target.flush();
    expect(file.contents().length).toBe(40 * PAGE);
    expect(file.stats().maxConcurrent).toBeGreaterThan(1);

    const failing = slowFile(rand, 2);
    const t2 = fileApplyTarget(failing.handle, { writeBuffer: 2 * PAGE, writesInFlight: 4 });
    const run = async () => {
      for (let p = 1; p <= 40; p++) await t2.write((p - 1) * PAGE, new Uint8Array(PAGE).fill(p));
      await t2.flush();
    };
    await expect(run()).rejects.toThrow("disk full");
  });

  test("syncs in the background every syncEvery bytes, one at a time; a failed sync surfaces", async () => {
    const rand = lcg(11);
    const file = slowFile(rand);
    const target = fileApplyTarget(file.handle, {
      writeBuffer: 4 * PAGE,
      writesInFlight: 4,
      syncEvery: 16 * PAGE,
    });
    for (let p = 1; p <= 256; p++) await target.write((p - 1) * PAGE, new Uint8Array(PAGE).fill(p));
    await target.flush();
    // The disk had work before the end: syncs started along the way, not only at the end.
    const syncs = file.stats().syncs;
    expect(syncs.length).toBeGreaterThanOrEqual(3);
    expect(syncs[0]!).toBeLessThan(128 * PAGE);
    expect(file.contents().length).toBe(256 * PAGE);

    const none = slowFile(rand);
    const plain = fileApplyTarget(none.handle, { writeBuffer: 4 * PAGE, writesInFlight: 4 });
    for (let p = 1; p <= 64; p++) await plain.write((p - 1) * PAGE, new Uint8Array(PAGE).fill(p));
    await plain.flush();
    expect(none.stats().syncs).toEqual([]);

    const failing = slowFile(rand, undefined, true);
    const t3 = fileApplyTarget(failing.handle, {
      writeBuffer: 4 * PAGE,
      writesInFlight: 4,
      syncEvery: 8 * PAGE,
    });
    const run = async () => {
      for (let p = 1; p <= 64; p++) await t3.write((p - 1) * PAGE, new Uint8Array(PAGE).fill(p));
      await t3.flush();
    };
    await expect(run()).rejects.toThrow("I/O error on sync");
  });

  test("bytes others wrote (restore's decode threads) count toward syncEvery", async () => {
    const file = slowFile(lcg(12));
    const target = fileApplyTarget(file.handle, { syncEvery: 16 * PAGE });
    target.countWritten(15 * PAGE);
    await target.flush();
    expect(file.stats().syncs).toEqual([]);
    target.countWritten(PAGE);
    expect(file.stats().syncs.length).toBe(1);
    await target.flush();
  });
});
