import { describe, expect, test } from "vitest";
import { PagecastError } from "../../src/errors.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetOptions, ObjectStore } from "../../src/storage/object-store.js";
import {
  RangedDownloadError,
  RangedDownloader,
  rangedDownload,
} from "../../src/storage/ranged-download.js";

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Byte equality (vitest's deep equality is slow on large typed arrays). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/** Counts what a store is asked for: bytes requested, GETs in flight, largest range. */
function counting(inner: ObjectStore, override?: Partial<Pick<ObjectStore, "get">>) {
  const stats = { requested: 0, inFlight: 0, maxInFlight: 0, maxRange: 0, gets: 0 };
  const store: ObjectStore = {
    url: inner.url,
    async get(key: string, options?: GetOptions) {
      const r = options?.range;
      const len = r && "length" in r ? r.length : Number.POSITIVE_INFINITY;
      stats.gets++;
      stats.requested += len;
      stats.maxRange = Math.max(stats.maxRange, len);
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        // A tick of latency so that requests really overlap.
        await new Promise((resolve) => setTimeout(resolve, 1));
        return await (override?.get ?? inner.get.bind(inner))(key, options);
      } finally {
        stats.inFlight--;
      }
    },
    head: (k, o) => inner.head(k, o),
    put: (k, b, o) => inner.put(k, b, o),
    list: (o) => inner.list(o),
    deleteMany: (k, o) => inner.deleteMany(k, o),
    counters: () => inner.counters(),
    close: () => inner.close(),
  };
  return { store, stats };
}

const CHUNK = 64 << 10;

describe("rangedDownload", () => {
  for (const known of [true, false]) {
    test(`streams an object in order with a bounded window (size ${known ? "known" : "learned"})`, async () => {
      const mem = new MemoryStore();
      const body = bytes(CHUNK * 10 + 123, 7);
      await mem.put("big", body);
      const { store, stats } = counting(mem);
      let maxBuffered = 0;
      const chunks: Uint8Array[] = [];
      let consumed = 0;
      let maxAhead = 0;
      for await (const c of rangedDownload(store, "big", {
        chunkSize: CHUNK,
        chunksInFlight: 3,
        ...(known ? { size: body.length } : {}),
        onBuffered: (b) => {
          maxBuffered = Math.max(maxBuffered, b);
        },
      })) {
        // A slow consumer: the downloader must not run ahead of the window.
        await new Promise((resolve) => setTimeout(resolve, 3));
        maxAhead = Math.max(maxAhead, stats.requested - consumed);
        chunks.push(c);
        consumed += c.length;
      }
      expect(same(concat(chunks), body)).toBe(true);
      expect(stats.gets).toBe(11);
      expect(stats.maxRange).toBe(CHUNK);
      expect(stats.maxInFlight).toBeLessThanOrEqual(3);
      expect(stats.maxInFlight).toBeGreaterThan(1);
      expect(maxAhead).toBeLessThanOrEqual(3 * CHUNK);
      expect(maxBuffered).toBeLessThanOrEqual(3 * CHUNK);
    });
  }

  test("a sequence of objects (large, empty, small) shares one window, in order", async () => {
    const mem = new MemoryStore();
    const objs = [
      { key: "a", body: bytes(CHUNK * 4 + 1, 1) },
      { key: "b", body: new Uint8Array(0) },
      { key: "c", body: bytes(100, 3) },
      { key: "d", body: bytes(CHUNK, 4) },
    ];
    for (const o of objs) await mem.put(o.key, o.body);
    const { store, stats } = counting(mem);
    // Sizes known for some, learned for others.
    const d = new RangedDownloader(
      store,
      objs.map((o, i) => (i % 2 === 0 ? { key: o.key, size: o.body.length } : { key: o.key })),
      { chunkSize: CHUNK, chunksInFlight: 4 },
    );
    try {
      for (const [i, o] of objs.entries()) {
        const got: Uint8Array[] = [];
        for await (const c of d.chunks(i)) got.push(c);
        expect(same(concat(got), o.body), o.key).toBe(true);
      }
    } finally {
      d.close();
    }
    expect(stats.maxInFlight).toBeLessThanOrEqual(4);
    expect(d.peakBufferedBytes).toBeLessThanOrEqual(4 * CHUNK);
  });

  test("objects must be read in order", async () => {
    const mem = new MemoryStore();
    await mem.put("a", bytes(10, 1));
    await mem.put("b", bytes(10, 2));
    const d = new RangedDownloader(mem, [{ key: "a" }, { key: "b" }]);
    await expect(d.chunks(1).next()).rejects.toMatchObject({ code: "DOWNLOAD_INVALID_STATE" });
    d.close();
  });

  test("an object shorter or longer than expected fails with a typed error", async () => {
    const mem = new MemoryStore();
    await mem.put("x", bytes(CHUNK * 2 + 5, 9));
    for (const size of [CHUNK * 3, CHUNK * 2, CHUNK * 2 + 4, CHUNK * 2 + 6]) {
      const run = async () => {
        for await (const _ of rangedDownload(mem, "x", { chunkSize: CHUNK, size })) {
          // drain
        }
      };
      const err = await run().catch((e: unknown) => e);
      expect(err, String(size)).toBeInstanceOf(RangedDownloadError);
      expect((err as RangedDownloadError).code).toBe("DOWNLOAD_SIZE_MISMATCH");
    }
  });

  test("a short body (truncated response) fails with a typed error", async () => {
    const mem = new MemoryStore();
    await mem.put("x", bytes(CHUNK * 3, 5));
    const { store } = counting(mem, {
      async get(key, options) {
        const res = await mem.get(key, options);
        if (res.notModified || res.offset !== CHUNK) return res;
        return { ...res, body: res.body.subarray(0, 10) };
      },
    });
    const run = async () => {
      for await (const _ of rangedDownload(store, "x", { chunkSize: CHUNK })) {
        // drain
      }
    };
    await expect(run()).rejects.toMatchObject({ code: "DOWNLOAD_SIZE_MISMATCH" });
  });

  test("an object replaced mid-download fails with DOWNLOAD_OBJECT_CHANGED", async () => {
    const mem = new MemoryStore();
    await mem.put("x", bytes(CHUNK * 3, 5));
    const { store } = counting(mem, {
      async get(key, options) {
        const res = await mem.get(key, options);
        if (res.notModified || res.offset === 0) return res;
        return { ...res, meta: { ...res.meta, etag: "other" } };
      },
    });
    const run = async () => {
      for await (const _ of rangedDownload(store, "x", { chunkSize: CHUNK })) {
        // drain
      }
    };
    await expect(run()).rejects.toMatchObject({ code: "DOWNLOAD_OBJECT_CHANGED" });
  });

  test("a missing object, an abort and an early stop fail or stop cleanly", async () => {
    const mem = new MemoryStore();
    await mem.put("x", bytes(CHUNK * 8, 5));
    const drain = async (it: AsyncIterable<Uint8Array>) => {
      for await (const _ of it) {
        // drain
      }
    };
    await expect(drain(rangedDownload(mem, "missing"))).rejects.toBeInstanceOf(PagecastError);

    const ac = new AbortController();
    const { store } = counting(mem);
    const it = rangedDownload(store, "x", { chunkSize: CHUNK, signal: ac.signal });
    const first = await it.next();
    expect(first.done).toBe(false);
    ac.abort();
    await expect(drain(it)).rejects.toBeInstanceOf(PagecastError);

    // Stopping early closes the downloader: requests in flight are aborted, nothing leaks.
    const counted = counting(mem);
    for await (const _ of rangedDownload(counted.store, "x", { chunkSize: CHUNK })) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(counted.stats.inFlight).toBe(0);
  });

  test("invalid options are refused", () => {
    const mem = new MemoryStore();
    expect(() => new RangedDownloader(mem, [], { chunkSize: 0 })).toThrow(RangedDownloadError);
    expect(() => new RangedDownloader(mem, [{ key: "a", size: -1 }])).toThrow(RangedDownloadError);
  });
});
