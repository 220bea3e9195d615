/**
 * The one storage contract suite: every backend (memory, file, S3 on fauxqs,
 * S3 on RGW) runs exactly these tests through `defineStoreContract`.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { putStream } from "../../src/storage/put-stream.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
} from "../../src/storage/store-errors.js";

/** What a backend under test can do; tests needing more are skipped, visibly. */
export interface StoreCapabilities {
  /** Honours ifNoneMatch / ifMatch on single-request puts (fauxqs does not). */
  conditionalPut: boolean;
  /** Lists in UTF-8 byte order (fauxqs sorts with localeCompare). */
  byteOrderListing: boolean;
  /** Runs the > 8 MiB bodies (default true; off where a local emulator makes them slow). */
  largeBodies?: boolean;
}

const MIB = 1024 * 1024;
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

/** Deterministic pseudo-random bytes (so failures reproduce). */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function listAll(store: ObjectStore, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await store.list({
      ...(prefix !== undefined ? { prefix } : {}),
      ...(token ? { continuationToken: token } : {}),
    });
    keys.push(...page.objects.map((o) => o.key));
    token = page.continuationToken;
  } while (token);
  return keys;
}

/**
 * Defines the contract tests for stores made by `open` (a fresh, empty store
 * per test; it is closed after the test).
 */
export function defineStoreContract(
  name: string,
  open: () => Promise<ObjectStore>,
  caps: StoreCapabilities,
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });
    const conditional = caps.conditionalPut ? test : test.skip;
    const big = caps.largeBodies === false ? test.skip : test;

    test("get returns the whole object with its metadata", async () => {
      const put = await store.put("obj", text("hello world"));
      const got = await store.get("obj");
      expect(got.notModified).toBe(false);
      expect(str(got.body)).toBe("hello world");
      expect(got.offset).toBe(0);
      expect(got.meta?.key).toBe("obj");
      expect(got.meta?.size).toBe(11);
      expect(got.meta?.etag).toBe(put.etag);
      expect(put.etag).not.toMatch(/"/);
      expect(got.meta?.lastModified).toBeInstanceOf(Date);
      expect(Math.abs((got.meta?.lastModified.getTime() ?? 0) - Date.now())).toBeLessThan(
        10 * 60_000,
      );
    });

    test("get with an offset range returns those bytes, clamped at the end", async () => {
      await store.put("obj", text("hello world"));
      const mid = await store.get("obj", { range: { offset: 2, length: 3 } });
      expect(str(mid.body)).toBe("llo");
      expect(mid.offset).toBe(2);
      expect(mid.meta?.size).toBe(11);
      const tail = await store.get("obj", { range: { offset: 6, length: 100 } });
      expect(str(tail.body)).toBe("world");
      expect(tail.offset).toBe(6);
    });

    test("get with a suffix range returns the last bytes, or all when shorter", async () => {
      await store.put("obj", text("hello world"));
      const last = await store.get("obj", { range: { suffix: 5 } });
      expect(str(last.body)).toBe("world");
      expect(last.offset).toBe(6);
      expect(last.meta?.size).toBe(11);
      const all = await store.get("obj", { range: { suffix: 500 } });
      expect(str(all.body)).toBe("hello world");
      expect(all.offset).toBe(0);
    });

    test("a range past the end yields an empty body at the object's end", async () => {
      await store.put("obj", text("hello world"));
      const past = await store.get("obj", { range: { offset: 50, length: 10 } });
      expect(past.notModified).toBe(false);
      expect(past.body?.length).toBe(0);
      expect(past.offset).toBe(11);
      expect(past.meta?.size).toBe(11);
      const empty = await store.get("obj", { range: { offset: 3, length: 0 } });
      expect(empty.body?.length).toBe(0);
      expect(empty.offset).toBe(3);
    });

    test("get with pieces: the pieces (when given) join to the same bytes as body", async () => {
      const big = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
      await store.put("obj", big);
      for (const range of [
        { offset: 1000, length: 200_000 },
        { offset: 299_990, length: 100 },
        { suffix: 7 },
        undefined,
      ]) {
        const plain = await store.get("obj", range ? { range } : {});
        const got = await store.get("obj", range ? { range, pieces: true } : { pieces: true });
        expect(got.offset).toBe(plain.offset);
        expect(got.meta?.size).toBe(300_000);
        if (got.pieces) {
          const joined = new Uint8Array(got.pieces.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of got.pieces) {
            expect(p.constructor).toBe(Uint8Array);
            joined.set(p, at);
            at += p.length;
          }
          expect(Buffer.compare(joined, plain.body as Uint8Array)).toBe(0);
        }
        expect(Buffer.compare(got.body as Uint8Array, plain.body as Uint8Array)).toBe(0);
      }
    });

    test("an empty object reads back empty, with or without a range", async () => {
      await store.put("empty", new Uint8Array(0));
      expect((await store.get("empty")).body?.length).toBe(0);
      const ranged = await store.get("empty", { range: { suffix: 4 } });
      expect(ranged.body?.length).toBe(0);
      expect(ranged.meta?.size).toBe(0);
      expect((await store.head("empty"))?.size).toBe(0);
    });

    test("ifNoneMatch with the current ETag answers notModified, a stale one reads", async () => {
      const first = await store.put("obj", text("v1"));
      expect(await store.get("obj", { ifNoneMatch: first.etag })).toEqual({ notModified: true });
      expect((await store.get("obj", { ifNoneMatch: `"${first.etag}"` })).notModified).toBe(true);
      const ranged = await store.get("obj", { ifNoneMatch: first.etag, range: { suffix: 1 } });
      expect(ranged.notModified).toBe(true);
      const second = await store.put("obj", text("v2 changed"));
      expect(second.etag).not.toBe(first.etag);
      const fresh = await store.get("obj", { ifNoneMatch: first.etag });
      expect(fresh.notModified).toBe(false);
      expect(str(fresh.body)).toBe("v2 changed");
      expect(fresh.meta?.etag).toBe(second.etag);
    });

    test("head returns metadata for a present key and undefined for an absent one", async () => {
      const put = await store.put("dir/obj", text("12345"));
      const meta = await store.head("dir/obj");
      expect(meta).toMatchObject({ key: "dir/obj", size: 5, etag: put.etag });
      expect(await store.head("dir/absent")).toBeUndefined();
      expect(await store.head("dir")).toBeUndefined();
    });

    test("get of an absent key throws NotFoundError", async () => {
      const error = await store.get("nope/missing").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).toMatchObject({ code: "STORE_NOT_FOUND", key: "nope/missing" });
      await expect(store.get("nope/missing", { range: { suffix: 3 } })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      await expect(store.get("nope/missing", { ifNoneMatch: "x" })).rejects.toBeInstanceOf(
        NotFoundError,
      );
    });

    test("an unconditional put replaces the object", async () => {
      const first = await store.put("obj", text("first"));
      const second = await store.put("obj", text("second!"));
      expect(second.etag).not.toBe(first.etag);
      expect(str((await store.get("obj")).body)).toBe("second!");
      expect((await store.head("obj"))?.etag).toBe(second.etag);
    });

    conditional(
      "create-only put succeeds once, then fails with PreconditionFailedError",
      async () => {
        const created = await store.put("lease", text("mine"), { ifNoneMatch: "*" });
        const error = await store
          .put("lease", text("theirs"), { ifNoneMatch: "*" })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PreconditionFailedError);
        expect(error).toMatchObject({ code: "STORE_PRECONDITION_FAILED", ambiguous: false });
        const got = await store.get("lease");
        expect(str(got.body)).toBe("mine");
        expect(got.meta?.etag).toBe(created.etag);
      },
    );

    conditional("two concurrent create-only puts: exactly one wins", async () => {
      for (let round = 0; round < 3; round++) {
        const key = `race-${round}`;
        const bodies = [text(`writer A ${round}`), text(`writer B ${round}`)];
        const results = await Promise.allSettled(
          bodies.map((body) => store.put(key, body, { ifNoneMatch: "*" })),
        );
        const winners = results.filter((r) => r.status === "fulfilled");
        const losers = results.filter((r) => r.status === "rejected");
        expect(winners).toHaveLength(1);
        expect(losers).toHaveLength(1);
        expect((losers[0] as PromiseRejectedResult).reason).toBeInstanceOf(PreconditionFailedError);
        const winner = results.findIndex((r) => r.status === "fulfilled");
        const stored = await store.get(key);
        expect(str(stored.body)).toBe(str(bodies[winner]));
        expect(stored.meta?.etag).toBe(
          (winners[0] as PromiseFulfilledResult<{ etag: string }>).value.etag,
        );
      }
    });

    conditional("ifMatch swaps on the current ETag and refuses a stale one", async () => {
      const v1 = await store.put("head.json", text("v1"));
      const v2 = await store.put("head.json", text("v2"), { ifMatch: v1.etag });
      expect(v2.etag).not.toBe(v1.etag);
      const stale = await store
        .put("head.json", text("v3"), { ifMatch: v1.etag })
        .catch((e: unknown) => e);
      expect(stale).toBeInstanceOf(PreconditionFailedError);
      expect(str((await store.get("head.json")).body)).toBe("v2");
      const v3 = await store.put("head.json", text("v3"), { ifMatch: `"${v2.etag}"` });
      expect((await store.head("head.json"))?.etag).toBe(v3.etag);
      await expect(
        store.put("absent.json", text("x"), { ifMatch: v3.etag }),
      ).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(await store.head("absent.json")).toBeUndefined();
    });

    conditional("two concurrent compare-and-swaps on one ETag: exactly one wins", async () => {
      const base = await store.put("cas", text("base"));
      const results = await Promise.allSettled(
        ["left", "right"].map((s) => store.put("cas", text(s), { ifMatch: base.etag })),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const loser = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(loser.reason).toBeInstanceOf(PreconditionFailedError);
      expect(["left", "right"]).toContain(str((await store.get("cas")).body));
    });

    conditional("compare-and-swap increments by racing writers lose no update", async () => {
      await store.put("counter", text("0"));
      const writers = 3;
      const perWriter = 4;
      await Promise.all(
        Array.from({ length: writers }, async () => {
          for (let done = 0; done < perWriter; ) {
            const current = await store.get("counter");
            const next = String(Number(str(current.body)) + 1);
            try {
              await store.put("counter", text(next), { ifMatch: current.meta!.etag });
              done += 1;
            } catch (error) {
              if (!(error instanceof PreconditionFailedError)) throw error;
            }
          }
        }),
      );
      expect(str((await store.get("counter")).body)).toBe(String(writers * perWriter));
    });

    test("list filters by prefix and returns metadata", async () => {
      const a1 = await store.put("0001/a.ltx", text("1"));
      await store.put("0001/b.ltx", text("22"));
      await store.put("0002/a.ltx", text("333"));
      await store.put("0001x", text("4444"));
      const page = await store.list({ prefix: "0001/" });
      expect(page.objects.map((o) => o.key)).toEqual(["0001/a.ltx", "0001/b.ltx"]);
      expect(page.objects[0]).toMatchObject({ key: "0001/a.ltx", size: 1, etag: a1.etag });
      expect(page.objects[0]?.lastModified).toBeInstanceOf(Date);
      expect(page.continuationToken).toBeUndefined();
      expect((await store.list({ prefix: "0001" })).objects.map((o) => o.key)).toEqual([
        "0001/a.ltx",
        "0001/b.ltx",
        "0001x",
      ]);
      expect((await store.list({ prefix: "0003/" })).objects).toEqual([]);
      expect((await store.list()).objects).toHaveLength(4);
    });

    test("list honours startAfter", async () => {
      for (const k of ["k1", "k2", "k3", "k4"]) await store.put(`p/${k}`, text(k));
      const page = await store.list({ prefix: "p/", startAfter: "p/k2" });
      expect(page.objects.map((o) => o.key)).toEqual(["p/k3", "p/k4"]);
      const between = await store.list({ prefix: "p/", startAfter: "p/k2a" });
      expect(between.objects.map((o) => o.key)).toEqual(["p/k3", "p/k4"]);
      expect((await store.list({ startAfter: "p/k4" })).objects).toEqual([]);
    });

    test("list paginates across several pages with maxKeys and continuation tokens", async () => {
      const keys = Array.from({ length: 8 }, (_, i) => `pages/${String(i).padStart(3, "0")}`);
      await Promise.all(keys.map((k) => store.put(k, text(k))));
      await store.put("other/zzz", text("x"));
      const seen: string[] = [];
      const sizes: number[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await store.list({
          prefix: "pages/",
          maxKeys: 3,
          ...(token ? { continuationToken: token } : {}),
        });
        pages += 1;
        sizes.push(page.objects.length);
        seen.push(...page.objects.map((o) => o.key));
        token = page.continuationToken;
        expect(pages).toBeLessThan(10);
      } while (token);
      expect(seen).toEqual(keys);
      expect(pages).toBeGreaterThanOrEqual(3);
      expect(sizes.every((n) => n <= 3)).toBe(true);
      // startAfter and pagination combine.
      const first = await store.list({ prefix: "pages/", startAfter: "pages/004", maxKeys: 2 });
      expect(first.objects.map((o) => o.key)).toEqual(["pages/005", "pages/006"]);
      expect(first.continuationToken).toBeDefined();
      const rest = await store.list({
        prefix: "pages/",
        startAfter: "pages/004",
        maxKeys: 2,
        continuationToken: first.continuationToken!,
      });
      expect(rest.objects.map((o) => o.key)).toEqual(["pages/007"]);
      expect(rest.continuationToken).toBeUndefined();
    });

    (caps.byteOrderListing ? test : test.skip)("list sorts keys by UTF-8 bytes", async () => {
      // "a-c" < "a/b" < "a0": a walk that visits directory "a" as a whole would misplace "a/b".
      const keys = ["a-c", "a/b", "B", "a0", "é", "z", "\u{1F600}", "\uFFFD", "_x", "A.1"];
      for (const k of keys) await store.put(`u/${k}`, text(k));
      const listed = await listAll(store, "u/");
      const bytes = (s: string) => Array.from(new TextEncoder().encode(s));
      const expected = [...keys]
        .map((k) => `u/${k}`)
        .sort((x, y) => {
          const a = bytes(x);
          const b = bytes(y);
          for (let i = 0; i < Math.min(a.length, b.length); i++) {
            if (a[i] !== b[i]) return a[i]! - b[i]!;
          }
          return a.length - b.length;
        });
      expect(listed).toEqual(expected);
      const page = await store.list({ prefix: "u/", startAfter: "u/a/b" });
      expect(page.objects.map((o) => o.key)).toEqual(expected.slice(expected.indexOf("u/a/b") + 1));
    });

    test("deleteMany removes keys and ignores absent ones", async () => {
      await store.put("d/1", text("1"));
      await store.put("d/2", text("2"));
      await store.put("d/deep/3", text("3"));
      await store.put("keep", text("k"));
      await store.deleteMany(["d/1", "d/deep/3", "d/absent", "never/there"]);
      expect(await store.head("d/1")).toBeUndefined();
      expect(await store.head("d/deep/3")).toBeUndefined();
      expect(await listAll(store)).toEqual(["d/2", "keep"]);
      await store.deleteMany([]);
      await store.deleteMany(["d/2", "keep"]);
      expect(await listAll(store)).toEqual([]);
      // A deleted key can be created again, create-only included.
      await store.put("d/1", text("again"), caps.conditionalPut ? { ifNoneMatch: "*" } : {});
      expect(str((await store.get("d/1")).body)).toBe("again");
    });

    big("a multipart-sized body (> 8 MiB) round-trips, ranges across part boundaries", async () => {
      const body = patternBytes(9 * MIB + 12345, 7);
      const put = await store.put("big/snapshot.ltx", body);
      const meta = await store.head("big/snapshot.ltx");
      expect(meta?.size).toBe(body.length);
      expect(meta?.etag).toBe(put.etag);
      const whole = await store.get("big/snapshot.ltx");
      expect(whole.body?.length).toBe(body.length);
      expect(Buffer.compare(Buffer.from(whole.body!), Buffer.from(body))).toBe(0);
      const boundary = 8 * MIB;
      const span = await store.get("big/snapshot.ltx", {
        range: { offset: boundary - 10, length: 20 },
      });
      expect(Array.from(span.body!)).toEqual(
        Array.from(body.subarray(boundary - 10, boundary + 10)),
      );
      const tail = await store.get("big/snapshot.ltx", { range: { suffix: 100 } });
      expect(Array.from(tail.body!)).toEqual(Array.from(body.subarray(body.length - 100)));
      // A condition on a multipart put is honoured too.
      await expect(
        store.put("big/snapshot.ltx", body, { ifNoneMatch: "*" }),
      ).rejects.toBeInstanceOf(PreconditionFailedError);
      await expect(
        store.put("big/snapshot.ltx", body, { ifMatch: "0123456789abcdef0123456789abcdef-2" }),
      ).rejects.toBeInstanceOf(PreconditionFailedError);
      const replaced = await store.put("big/snapshot.ltx", body.subarray(1), { ifMatch: put.etag });
      expect((await store.head("big/snapshot.ltx"))?.etag).toBe(replaced.etag);
      expect((await store.list({ prefix: "big/" })).objects.map((o) => o.key)).toEqual([
        "big/snapshot.ltx",
      ]);
    });

    describe("putStream", () => {
      /** `body` in chunks of the given sizes (cycled), each yielded in one reused buffer. */
      async function* chunked(body: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
        const scratch = new Uint8Array(Math.max(...sizes));
        let at = 0;
        for (let i = 0; at < body.length; i++) {
          const n = Math.min(sizes[i % sizes.length]!, body.length - at);
          // The same memory every time: a store must not keep the chunk past the next one.
          scratch.set(body.subarray(at, at + n));
          yield scratch.subarray(0, n);
          scratch.fill(0xee);
          at += n;
        }
      }
      async function* failing(body: Uint8Array, error: Error): AsyncGenerator<Uint8Array> {
        yield body;
        throw error;
      }
      const same = (a: Uint8Array | undefined, b: Uint8Array) =>
        a !== undefined && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

      test("has the method, and a small stream round-trips like put", async () => {
        expect(typeof store.putStream).toBe("function");
        const body = patternBytes(100_000, 3);
        const before = store.counters();
        const put = await putStream(store, "s/small", chunked(body, [1, 0, 4096, 65_536]));
        const got = await store.get("s/small");
        expect(same(got.body, body)).toBe(true);
        expect(got.meta?.etag).toBe(put.etag);
        expect(store.counters().bytesOut - before.bytesOut).toBe(body.length);
        // Empty sources make empty objects.
        await putStream(store, "s/empty", chunked(new Uint8Array(0), [1]));
        expect((await store.head("s/empty"))?.size).toBe(0);
      });

      big("a multipart-sized stream round-trips, and conditions hold", async () => {
        const body = patternBytes(17 * MIB + 777, 11);
        const put = await putStream(
          store,
          "s/big.ltx",
          chunked(body, [MIB + 3, 100_000, 3 * MIB]),
          caps.conditionalPut ? { ifNoneMatch: "*" } : {},
        );
        const meta = await store.head("s/big.ltx");
        expect(meta?.size).toBe(body.length);
        expect(meta?.etag).toBe(put.etag);
        const whole = await store.get("s/big.ltx");
        expect(same(whole.body, body)).toBe(true);
        // Like a multipart put, create-only and compare-and-swap are honoured.
        await expect(
          putStream(store, "s/big.ltx", chunked(body, [4 * MIB]), { ifNoneMatch: "*" }),
        ).rejects.toBeInstanceOf(PreconditionFailedError);
        await expect(
          putStream(store, "s/big.ltx", chunked(body, [4 * MIB]), {
            ifMatch: "0123456789abcdef0123456789abcdef-2",
          }),
        ).rejects.toBeInstanceOf(PreconditionFailedError);
        const other = body.subarray(5);
        const replaced = await putStream(store, "s/big.ltx", chunked(other, [5 * MIB]), {
          ifMatch: put.etag,
        });
        expect((await store.head("s/big.ltx"))?.etag).toBe(replaced.etag);
        expect(same((await store.get("s/big.ltx")).body, other)).toBe(true);
        expect((await listAll(store, "s/")).sort()).toEqual(["s/big.ltx"]);
      });

      conditional("create-only and compare-and-swap on a small stream", async () => {
        await putStream(store, "s/c", chunked(text("one"), [2]), { ifNoneMatch: "*" });
        await expect(
          putStream(store, "s/c", chunked(text("two"), [2]), { ifNoneMatch: "*" }),
        ).rejects.toBeInstanceOf(PreconditionFailedError);
        const etag = (await store.head("s/c"))!.etag;
        await putStream(store, "s/c", chunked(text("three"), [2]), { ifMatch: etag });
        expect(str((await store.get("s/c")).body)).toBe("three");
        await expect(
          putStream(store, "s/missing", chunked(text("x"), [1]), { ifMatch: etag }),
        ).rejects.toBeInstanceOf(PreconditionFailedError);
      });

      test("a failing source writes nothing and its error comes through unchanged", async () => {
        const small = new Error("source broke early");
        await expect(putStream(store, "s/f1", failing(text("partial"), small))).rejects.toBe(small);
        const large = new Error("source broke after a few parts");
        await expect(
          putStream(store, "s/f2", failing(patternBytes(12 * MIB, 5), large)),
        ).rejects.toBe(large);
        // An existing object stays as it was.
        await store.put("s/f3", text("kept"));
        await expect(
          putStream(store, "s/f3", failing(patternBytes(9 * MIB, 6), large)),
        ).rejects.toBe(large);
        expect(await store.head("s/f1")).toBeUndefined();
        expect(await store.head("s/f2")).toBeUndefined();
        expect(str((await store.get("s/f3")).body)).toBe("kept");
      });

      test("an aborted signal stops a stream with StoreAbortedError", async () => {
        const controller = new AbortController();
        controller.abort(new Error("stop"));
        await expect(
          putStream(store, "s/ab", chunked(text("abc"), [1]), { signal: controller.signal }),
        ).rejects.toBeInstanceOf(StoreAbortedError);
        const later = new AbortController();
        async function* abortMidway(): AsyncGenerator<Uint8Array> {
          yield patternBytes(9 * MIB, 8);
          later.abort(new Error("stop now"));
          yield patternBytes(MIB, 9);
        }
        await expect(
          putStream(store, "s/ab2", abortMidway(), { signal: later.signal }),
        ).rejects.toBeInstanceOf(StoreAbortedError);
        expect(await store.head("s/ab")).toBeUndefined();
        expect(await store.head("s/ab2")).toBeUndefined();
      });

      test("chunks that are not bytes are refused with a typed error", async () => {
        async function* bad(): AsyncGenerator<Uint8Array> {
          yield "text" as unknown as Uint8Array;
        }
        await expect(putStream(store, "s/bad", bad())).rejects.toBeInstanceOf(
          InvalidStoreArgumentError,
        );
        await expect(
          store.putStream!("s/bad", [text("sync")] as unknown as AsyncIterable<Uint8Array>),
        ).rejects.toBeInstanceOf(InvalidStoreArgumentError);
        expect(await store.head("s/bad")).toBeUndefined();
      });

      test("the helper buffers and puts for a store without putStream", async () => {
        const plain: ObjectStore = {
          url: store.url,
          get: (k, o) => store.get(k, o),
          head: (k, o) => store.head(k, o),
          put: (k, b, o) => store.put(k, b, o),
          list: (o) => store.list(o),
          deleteMany: (k, o) => store.deleteMany(k, o),
          counters: () => store.counters(),
          close: async () => {},
        };
        expect(plain.putStream).toBeUndefined();
        const body = patternBytes(70_000, 4);
        const put = await putStream(plain, "s/plain", chunked(body, [1000]));
        expect(same((await store.get("s/plain")).body, body)).toBe(true);
        expect((await store.head("s/plain"))?.etag).toBe(put.etag);
      });
    });

    test("bodies are binary-safe and keys may hold spaces and Unicode", async () => {
      const all = new Uint8Array(512).map((_, i) => i & 0xff);
      const keys = ["bin/all bytes", "bin/ü-ñ/日本.ltx", "bin/plus+percent%hash#q?", "bin/.dot"];
      for (const k of keys) await store.put(k, all);
      for (const k of keys) {
        const got = await store.get(k);
        expect(Array.from(got.body!)).toEqual(Array.from(all));
        expect(got.meta?.key).toBe(k);
      }
      expect((await listAll(store, "bin/")).sort()).toEqual([...keys].sort());
      const zero = new Uint8Array(1000);
      await store.put("bin/zeros", zero);
      expect((await store.get("bin/zeros", { range: { offset: 990, length: 10 } })).body).toEqual(
        new Uint8Array(10),
      );
      // The store keeps its own copy of the body.
      const mutable = text("abc");
      await store.put("bin/copy", mutable);
      mutable[0] = 0x7a;
      expect(str((await store.get("bin/copy")).body)).toBe("abc");
    });

    test("counters count requests by kind and bytes in and out", async () => {
      const before = store.counters();
      await store.put("c/x", text("12345678"));
      await store.get("c/x");
      await store.get("c/x", { range: { offset: 0, length: 3 } });
      await store.head("c/x");
      await store.head("c/absent");
      await store.list({ prefix: "c/" });
      await store.deleteMany(["c/x"]);
      await store.get("c/x").catch(() => {});
      const after = store.counters();
      expect(after.requests.put - before.requests.put).toBe(1);
      expect(after.requests.get - before.requests.get).toBe(3);
      expect(after.requests.head - before.requests.head).toBe(2);
      expect(after.requests.list - before.requests.list).toBe(1);
      expect(after.requests.delete - before.requests.delete).toBe(1);
      expect(after.bytesOut - before.bytesOut).toBe(8);
      expect(after.bytesIn - before.bytesIn).toBe(11);
      expect(after.errors - before.errors).toBe(0);
      expect(after.retries - before.retries).toBe(0);
      // A snapshot does not move afterwards.
      const frozen = store.counters();
      await store.head("c/x");
      expect(frozen.requests.head).toBe(after.requests.head);
      expect(store.counters().requests.head).toBe(after.requests.head + 1);
    });

    test("malformed keys, ranges and options are refused with typed errors", async () => {
      const bad = [
        "",
        "/abs",
        "a/../b",
        "..",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "a\u0000b",
        "x\u0001",
      ];
      for (const key of bad) {
        await expect(store.get(key), JSON.stringify(key)).rejects.toBeInstanceOf(
          InvalidStoreArgumentError,
        );
        await expect(store.put(key, text("x"))).rejects.toBeInstanceOf(InvalidStoreArgumentError);
        await expect(store.head(key)).rejects.toBeInstanceOf(InvalidStoreArgumentError);
        await expect(store.deleteMany([key])).rejects.toBeInstanceOf(InvalidStoreArgumentError);
      }
      await store.put("ok", text("x"));
      for (const range of [{ offset: -1, length: 2 }, { offset: 0, length: 1.5 }, { suffix: -3 }]) {
        await expect(store.get("ok", { range })).rejects.toBeInstanceOf(InvalidStoreArgumentError);
      }
      await expect(store.list({ maxKeys: 0 })).rejects.toBeInstanceOf(InvalidStoreArgumentError);
      await expect(store.list({ prefix: "../" })).rejects.toBeInstanceOf(InvalidStoreArgumentError);
      await expect(
        store.put("ok", text("x"), { ifNoneMatch: "abc" as "*" }),
      ).rejects.toBeInstanceOf(InvalidStoreArgumentError);
      expect(store.counters().requests.get).toBe(0);
    });

    test("maxBytes refuses a body over the limit before reading it, typed, with the object's metadata", async () => {
      const big = patternBytes(256 * 1024, 7);
      const put = await store.put("limits/big", big);
      await store.put("limits/small", text("tiny"));
      await store.put("limits/empty", new Uint8Array(0));
      const before = store.counters();
      const error = await store.get("limits/big", { maxBytes: 1024 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ObjectTooLargeError);
      expect(error).toMatchObject({
        code: "STORE_OBJECT_TOO_LARGE",
        key: "limits/big",
        size: big.length,
        maxBytes: 1024,
      });
      // The metadata lets a caller replace the object by compare-and-swap without reading it.
      expect((error as ObjectTooLargeError).meta).toMatchObject({
        key: "limits/big",
        size: big.length,
        etag: put.etag,
      });
      const after = store.counters();
      // A definite answer: not an error, not retried, and the body was not taken in.
      expect(after.errors - before.errors).toBe(0);
      expect(after.retries - before.retries).toBe(0);
      expect(after.bytesIn - before.bytesIn).toBeLessThan(1024);
      // At or under the limit it reads as usual, for whole objects and ranges.
      expect(str((await store.get("limits/small", { maxBytes: 4 })).body)).toBe("tiny");
      expect((await store.get("limits/empty", { maxBytes: 0 })).body).toHaveLength(0);
      const range = await store.get("limits/big", {
        range: { offset: 1000, length: 500 },
        maxBytes: 500,
      });
      expect(range.body).toEqual(big.subarray(1000, 1500));
      expect(
        (await store.get("limits/big", { range: { suffix: 100 }, maxBytes: 100 })).body,
      ).toEqual(big.subarray(big.length - 100));
      // The limit bounds the body asked for, ranges included.
      await expect(
        store.get("limits/big", { range: { offset: 0, length: 2000 }, maxBytes: 1999 }),
      ).rejects.toBeInstanceOf(ObjectTooLargeError);
      // A conditional read that is not modified has no body to refuse.
      const current = await store.head("limits/big");
      expect(
        (await store.get("limits/big", { ifNoneMatch: current!.etag, maxBytes: 1 })).notModified,
      ).toBe(true);
      await expect(store.get("limits/absent", { maxBytes: 1 })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      for (const maxBytes of [-1, 1.5, Number.NaN, "10" as unknown as number]) {
        await expect(store.get("limits/small", { maxBytes })).rejects.toBeInstanceOf(
          InvalidStoreArgumentError,
        );
      }
    });

    test("health and attempt-failure listeners are offered and start healthy", async () => {
      expect(typeof store.health).toBe("function");
      expect(typeof store.onAttemptFailure).toBe("function");
      const failures: unknown[] = [];
      const remove = store.onAttemptFailure!((f) => failures.push(f));
      await store.put("health/x", text("x"));
      await store.get("health/absent").catch(() => {});
      const h = store.health!();
      expect(h.failingSince).toBeNull();
      expect(h.consecutiveFailures).toBe(0);
      expect(h.lastSuccessAt).toBeInstanceOf(Date);
      expect(h.inFlight).toBe(0);
      expect(failures).toEqual([]);
      remove();
      if (store.serverTime) {
        const t = store.serverTime();
        // Every answer so far came from a server within a plausible distance of this clock.
        expect(t).toBeTypeOf("number");
        expect(Math.abs(t! - Date.now())).toBeLessThan(15 * 60_000);
      }
    });

    test("an aborted signal stops the operation with StoreAbortedError", async () => {
      await store.put("ab", text("x"));
      const controller = new AbortController();
      controller.abort(new Error("stop"));
      const signal = controller.signal;
      await expect(store.get("ab", { signal })).rejects.toBeInstanceOf(StoreAbortedError);
      await expect(store.put("ab", text("y"), { signal })).rejects.toBeInstanceOf(
        StoreAbortedError,
      );
      await expect(store.list({ signal })).rejects.toBeInstanceOf(StoreAbortedError);
      expect(str((await store.get("ab")).body)).toBe("x");
    });

    test("a closed store refuses further work", async () => {
      const other = await open();
      await other.close();
      await expect(other.get("x")).rejects.toBeInstanceOf(StoreClosedError);
      await expect(other.put("x", text("x"))).rejects.toBeInstanceOf(StoreClosedError);
      await expect(other.list()).rejects.toBeInstanceOf(StoreClosedError);
      expect(other.url).not.toMatch(/secret|S3RVER|@/i);
    });
  });
}
