/** PageCache: a byte-bounded LRU keyed by immutable object + frame range. */
import { describe, expect, test } from "vitest";
import { PageCache } from "../../src/vfs/page-cache.js";
import type { PageLocation, PlanFile } from "../../src/vfs/page-index.js";

const file = { key: "obj" } as PlanFile;
const loc = (i: number): PageLocation => ({ file, offset: i * 10_000, size: 100 });
const page = (i: number, bytes = 1000) => new Uint8Array(bytes).fill(i & 0xff);

describe("PageCache", () => {
  test("stays within its byte bound, evicting the least recently used first", () => {
    const cache = new PageCache(3500);
    for (let i = 0; i < 3; i++) cache.set(loc(i), page(i));
    // A use refreshes page 0; peek and has do not refresh page 1.
    expect(cache.get(loc(0))?.[0]).toBe(0);
    expect(cache.peek(loc(1))?.[0]).toBe(1);
    expect(cache.has(loc(1))).toBe(true);
    cache.set(loc(3), page(3));
    expect(cache.has(loc(1))).toBe(false);
    expect([0, 2, 3].map((i) => cache.has(loc(i)))).toEqual([true, true, true]);
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 3000, maxBytes: 3500 });
    expect(cache.free).toBe(500);
    // A big page evicts as many as it needs.
    cache.set(loc(4), page(4, 2500));
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 3500 });
    expect(cache.has(loc(0))).toBe(false);
    expect(cache.has(loc(2))).toBe(false);
    expect(cache.has(loc(3))).toBe(true);
  });

  test("B-tree interior pages outlive scans, up to a quarter of the cache", () => {
    const interior = (i: number) => {
      const p = page(0x41, 1000);
      p[0] = i % 2 ? 0x05 : 0x02;
      return p;
    };
    const cache = new PageCache(10_000);
    cache.set(loc(0), interior(0));
    cache.set(loc(1), interior(1));
    // A scan of 30 leaves through a cache of 10: the interior pages stay.
    for (let i = 2; i < 32; i++) cache.set(loc(i), page(0x0d));
    expect(cache.has(loc(0)) && cache.has(loc(1))).toBe(true);
    expect(cache.stats()).toMatchObject({ entries: 10, bytes: 10_000 });
    // Beyond their share (2,500 bytes here) the least recent interior pages go.
    for (let i = 40; i < 44; i++) cache.set(loc(i), interior(i));
    for (let i = 50; i < 60; i++) cache.set(loc(i), page(0x0d));
    const kept = [0, 1, 40, 41, 42, 43].filter((i) => cache.has(loc(i)));
    expect(kept).toEqual([42, 43]);
    expect(cache.stats().bytes).toBeLessThanOrEqual(10_000);
  });

  test("a page larger than the cache is not kept; re-setting a page does not double count", () => {
    const cache = new PageCache(2000);
    cache.set(loc(0), page(0, 2001));
    expect(cache.stats().entries).toBe(0);
    cache.set(loc(1), page(1));
    cache.set(loc(1), page(9));
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 1000 });
    expect(cache.peek(loc(1))?.[0]).toBe(9);
  });

  test("fillIfRoom keeps a reserve and never evicts; hits and misses are counted; clear empties", () => {
    const cache = new PageCache(3000);
    const fill = (i: number) => (slot: Uint8Array) => slot.fill(i);
    cache.set(loc(0), page(0));
    expect(cache.fillIfRoom(loc(1), 1000, 1000, fill(1))).toBe(true);
    expect(cache.fillIfRoom(loc(2), 1000, 1, fill(2))).toBe(false);
    expect(cache.has(loc(0)) && cache.has(loc(1))).toBe(true);
    cache.get(loc(0));
    cache.get(loc(7));
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, entries: 2, bytes: 2000 });
    cache.clear();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(cache.free).toBe(3000);
  });

  test("10,000 random operations: bytes always match the pages held and stay within the bound", () => {
    const cache = new PageCache(50_000);
    let x = 12345;
    const rnd = () => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x;
    };
    const held = new Map<number, number>();
    for (let n = 0; n < 10_000; n++) {
      const i = rnd() % 200;
      const size = 1 + (rnd() % 3000);
      if (rnd() % 3 === 0) cache.get(loc(i));
      else cache.set(loc(i), page(i, size));
      held.clear();
      let bytes = 0;
      for (let k = 0; k < 200; k++) {
        const p = cache.peek(loc(k));
        if (p) {
          held.set(k, p.byteLength);
          bytes += p.byteLength;
        }
      }
      expect(cache.stats().bytes).toBe(bytes);
      expect(bytes).toBeLessThanOrEqual(50_000);
      expect(cache.stats().entries).toBe(held.size);
    }
  });

  test("keyed by object identity, offset and size: objectId first, then key", () => {
    const cache = new PageCache(10_000);
    const a = { key: "0000/a.ltx", objectId: "etag-1" } as PlanFile;
    // The same object listed again (another replica, a pinned version): same identity.
    const aAgain = { key: "0000/a.ltx", objectId: "etag-1" } as PlanFile;
    // A rewritten object under the same key: a different identity.
    const aRewritten = { key: "0000/a.ltx", objectId: "etag-2" } as PlanFile;
    const plain = { key: "0000/a.ltx" } as PlanFile;
    cache.set({ file: a, offset: 100, size: 50 }, page(1));
    expect(cache.peek({ file: aAgain, offset: 100, size: 50 })?.[0]).toBe(1);
    expect(cache.has({ file: aRewritten, offset: 100, size: 50 })).toBe(false);
    expect(cache.has({ file: plain, offset: 100, size: 50 })).toBe(false);
    // Another frame size at that offset is another frame.
    expect(cache.has({ file: a, offset: 100, size: 51 })).toBe(false);
    cache.set({ file: plain, offset: 100, size: 50 }, page(2));
    expect(cache.peek({ file: plain, offset: 100, size: 50 })?.[0]).toBe(2);
    expect(cache.peek({ file: a, offset: 100, size: 50 })?.[0]).toBe(1);
    // Replacing the frame at an offset leaves one entry; evicting an object's last frame forgets it.
    cache.set({ file: a, offset: 100, size: 60 }, page(3));
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 2000 });
    expect(cache.has({ file: a, offset: 100, size: 50 })).toBe(false);
    for (let i = 0; i < 10; i++) cache.set(loc(i), page(i));
    expect(cache.has({ file: a, offset: 100, size: 60 })).toBe(false);
    expect(cache.has({ file: plain, offset: 100, size: 50 })).toBe(false);
    cache.set({ file: a, offset: 100, size: 60 }, page(4));
    expect(cache.get({ file: aAgain, offset: 100, size: 60 })?.[0]).toBe(4);
  });

  test("images are copies in reused slots of a few slabs: contents survive evictions, slabs stay within the bound", () => {
    const pageSize = 4096;
    const slots = 64;
    const cache = new PageCache(slots * pageSize);
    const image = (i: number, v: number) => {
      const p = new Uint8Array(pageSize).fill(0x0d);
      p[1] = i & 0xff;
      p[2] = v & 0xff;
      p[pageSize - 1] = (i + v) & 0xff;
      return p;
    };
    const at = (i: number): PageLocation => ({ file, offset: i * 10_000, size: 100 });
    // A stored image is the cache's own copy.
    const original = image(1, 1);
    cache.set(at(1), original);
    original[2] = 99;
    expect(cache.peek(at(1))?.[2]).toBe(1);
    const version = new Map<number, number>([[1, 1]]);
    let x = 777;
    const rnd = () => {
      // The high bits: an LCG's low bits cycle quickly.
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x >>> 12;
    };
    for (let n = 0; n < 5_000; n++) {
      const i = rnd() % 300;
      const v = n & 0xff;
      const op = rnd() % 4;
      if (op === 0) cache.get(at(i));
      else if (op === 1) {
        // Decoded straight into a slot; a decode that fails stores nothing.
        const fails = rnd() % 5 === 0;
        const had = cache.has(at(i));
        try {
          cache.fillIfRoom(at(i), pageSize, 0, (slot) => {
            slot.set(image(i, v));
            if (fails) throw new Error("corrupt");
            return slot;
          });
          if (!had && cache.has(at(i))) version.set(i, v);
        } catch (err) {
          expect(fails).toBe(true);
          expect((err as Error).message).toBe("corrupt");
          expect(cache.has(at(i))).toBe(had);
        }
      } else {
        cache.set(at(i), image(i, v));
        version.set(i, v);
      }
      const buffers = new Set<ArrayBufferLike>();
      let bytes = 0;
      for (let k = 0; k < 300; k++) {
        const p = cache.peek(at(k));
        if (!p) continue;
        const want = version.get(k)!;
        if (p[1] !== (k & 0xff) || p[2] !== want || p[pageSize - 1] !== ((k + want) & 0xff)) {
          expect.fail(`page ${k} holds ${p[1]}/${p[2]}, expected version ${want} (op ${n})`);
        }
        buffers.add(p.buffer);
        bytes += p.byteLength;
      }
      expect(cache.stats().bytes).toBe(bytes);
      let slabBytes = 0;
      for (const b of buffers) slabBytes += b.byteLength;
      expect(slabBytes).toBeLessThanOrEqual(slots * pageSize);
    }
    expect(cache.stats().entries).toBe(slots);
    // A frame decoded into a slot replaces another frame at that offset.
    const cache2 = new PageCache(8 * pageSize);
    cache2.set({ file, offset: 0, size: 100 }, image(1, 1));
    cache2.fillIfRoom({ file, offset: 0, size: 120 }, pageSize, 0, (slot) => {
      slot.set(image(1, 2));
      return slot;
    });
    expect(cache2.stats()).toMatchObject({ entries: 1, bytes: pageSize });
    expect(cache2.has({ file, offset: 0, size: 100 })).toBe(false);
    expect(cache2.peek({ file, offset: 0, size: 120 })?.[2]).toBe(2);
    // Pages of another size keep buffers of their own, counted the same way.
    cache.set(at(500), new Uint8Array(1000).fill(7));
    expect(cache.peek(at(500))?.byteLength).toBe(1000);
    expect(cache.stats().bytes).toBeLessThanOrEqual(slots * pageSize);
  });
});
