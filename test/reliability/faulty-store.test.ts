/**
 * The fault-injecting store wrapper itself: each kind does what it says, the
 * rate and the seed are honoured, and it never damages the wrapped store.
 */
import { describe, expect, test } from "vitest";
import { encodeLtx } from "../../src/format/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import {
  PreconditionFailedError,
  StoreAbortedError,
  StoreRequestError,
} from "../../src/storage/store-errors.js";
import {
  FAULT_KINDS,
  type FaultKind,
  faultyStore,
  READ_FAULT_KINDS,
} from "../../src/testing/faulty-store.js";
import { checkedLtxBits, ltxLayout } from "../../src/testing/ltx-corruption.js";
import { prng } from "../../src/testing/prng.js";

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

async function seeded() {
  const mem = new MemoryStore();
  await mem.put(
    "k",
    Uint8Array.from({ length: 256 }, (_, i) => i),
  );
  return mem;
}

function only(kind: FaultKind) {
  return { rate: 1, kinds: [kind] as const };
}

describe("faultyStore", () => {
  test("rate 0 passes everything through unchanged", async () => {
    const store = faultyStore(await seeded(), { rate: 0 });
    for (let i = 0; i < 50; i++) expect((await store.get("k")).body).toHaveLength(256);
    expect(store.faults).toBe(0);
    expect(store.requests).toBe(50);
  });

  test("5xx, resets and timeouts are retryable StoreRequestErrors; nothing reaches storage", async () => {
    const cases: [FaultKind, number | undefined, string][] = [
      ["error500", 500, "InternalError"],
      ["slowDown", 503, "SlowDown"],
      ["reset", undefined, "ECONNRESET"],
      ["timeout", undefined, "TimeoutError"],
    ];
    for (const [kind, status, serverCode] of cases) {
      const mem = await seeded();
      const store = faultyStore(mem, { ...only(kind), timeoutMs: 5 });
      for (const op of [
        () => store.get("k"),
        () => store.head("k"),
        () => store.list(),
        () => store.put("x", bytes(3)),
        () => store.deleteMany(["k"]),
      ]) {
        const err = await op().catch((e: unknown) => e);
        expect(err, kind).toBeInstanceOf(StoreRequestError);
        expect(err).toMatchObject({ retryable: true, serverCode, status });
      }
      expect(store.injected[kind]).toBe(5);
      // Neither the put nor the delete happened.
      expect(await mem.head("x")).toBeUndefined();
      expect(await mem.head("k")).toBeDefined();
    }
  });

  test("health shows injected failures as they happen and clears on the next success", async () => {
    const store = faultyStore(await seeded(), only("slowDown"));
    const seen: string[] = [];
    store.onAttemptFailure((f) => seen.push(`${f.operation}: ${f.reason}`));
    expect(store.health().failingSince).toBeNull();
    await store.get("k").catch(() => {});
    await store.list().catch(() => {});
    expect(seen).toEqual(["get k: HTTP 503 SlowDown", "list: HTTP 503 SlowDown"]);
    expect(store.health()).toMatchObject({ consecutiveFailures: 2, inFlight: 0 });
    expect(store.health().failingSince).toBeInstanceOf(Date);
    store.rate = 0;
    await store.get("k");
    expect(store.health()).toMatchObject({ failingSince: null, consecutiveFailures: 0 });
    expect(store.health().lastError?.reason).toBe("HTTP 503 SlowDown");
    expect(store.serverTime()).toBeTypeOf("number");
  });

  test("a timeout honours the caller's AbortSignal", async () => {
    const store = faultyStore(await seeded(), { ...only("timeout"), timeoutMs: 60_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await expect(store.get("k", { signal: controller.signal })).rejects.toBeInstanceOf(
      StoreAbortedError,
    );
  });

  test("slow requests succeed late", async () => {
    const store = faultyStore(await seeded(), { ...only("slow"), slowMs: 30 });
    const t0 = performance.now();
    expect((await store.get("k")).body).toHaveLength(256);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(store.injected.slow).toBe(1);
  });

  test("truncated bodies are shorter than the range they claim; the stored object is intact", async () => {
    const mem = await seeded();
    const store = faultyStore(mem, { ...only("truncate"), seed: 3 });
    for (let i = 0; i < 20; i++) {
      const res = await store.get("k", { range: { offset: 16, length: 64 } });
      expect(res.notModified).toBe(false);
      expect(res.body!.length).toBeLessThan(64);
      expect(res.offset).toBe(16);
      expect(res.meta!.size).toBe(256);
    }
    expect(store.injected.truncate).toBe(20);
    expect((await mem.get("k")).body).toEqual(Uint8Array.from({ length: 256 }, (_, i) => i));
  });

  test("bit flips change exactly one bit of a copy", async () => {
    const mem = await seeded();
    const store = faultyStore(mem, { ...only("bitflip"), seed: 9 });
    const original = (await mem.get("k")).body!;
    for (let i = 0; i < 20; i++) {
      const got = (await store.get("k")).body!;
      let differing = 0;
      for (let j = 0; j < got.length; j++) {
        const x = got[j]! ^ original[j]!;
        if (x !== 0) {
          differing++;
          expect(x & (x - 1)).toBe(0);
        }
      }
      expect(differing).toBe(1);
    }
    expect((await mem.get("k")).body).toEqual(original);
  });

  test("412 only for conditional puts; a lost response still applies the write", async () => {
    const mem = await seeded();
    const store = faultyStore(mem, { rate: 1, kinds: ["precondition", "lostResponse"], seed: 1 });
    // An unconditional put can only lose its response.
    await expect(store.put("a", bytes(1))).rejects.toMatchObject({ serverCode: "ECONNRESET" });
    expect((await mem.get("a")).body).toEqual(bytes(1));
    let preconditions = 0;
    for (let i = 0; i < 20; i++) {
      const err = await store.put(`c${i}`, bytes(2), { ifNoneMatch: "*" }).catch((e: unknown) => e);
      if (err instanceof PreconditionFailedError) {
        preconditions++;
        expect(await mem.head(`c${i}`)).toBeUndefined();
      } else {
        expect(err).toBeInstanceOf(StoreRequestError);
        expect(await mem.head(`c${i}`)).toBeDefined();
      }
    }
    expect(preconditions).toBeGreaterThan(0);
    expect(store.injected.precondition).toBe(preconditions);
    await expect(store.deleteMany(["a"])).rejects.toBeInstanceOf(StoreRequestError);
    expect(await mem.head("a")).toBeUndefined();
    // Reads never get write-only kinds.
    expect((await store.get("k")).body).toHaveLength(256);
  });

  test("the rate is honoured, the seed replays, and `rate = 0` ends the outage", async () => {
    const run = async (seed: number) => {
      const store = faultyStore(await seeded(), {
        rate: 0.1,
        kinds: READ_FAULT_KINDS,
        seed,
        timeoutMs: 0,
        slowMs: 0,
      });
      const outcome: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const r = await store.get("k").then(
          (res) => `ok${res.body!.length}`,
          (e: unknown) => String((e as StoreRequestError).serverCode),
        );
        outcome.push(r);
      }
      return { store, outcome };
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(a.outcome).toEqual(b.outcome);
    expect(a.outcome).not.toEqual(c.outcome);
    expect(a.store.faults).toBeGreaterThan(130);
    expect(a.store.faults).toBeLessThan(270);
    for (const kind of READ_FAULT_KINDS) expect(a.store.injected[kind], kind).toBeGreaterThan(0);
    a.store.rate = 0;
    const before = a.store.faults;
    for (let i = 0; i < 100; i++) await a.store.get("k");
    expect(a.store.faults).toBe(before);
    expect(FAULT_KINDS.length).toBe(9);
  });

  test("a rate outside [0, 1] is a typed error", async () => {
    for (const rate of [-0.1, 1.5, Number.NaN]) {
      expect(() => faultyStore(new MemoryStore(), { rate })).toThrow(
        expect.objectContaining({ code: "TESTING_INVALID_ARGUMENT" }),
      );
    }
  });

  test("match limits which requests get faults", async () => {
    const mem = await seeded();
    await mem.put("safe", bytes(4));
    const store = faultyStore(mem, {
      rate: 1,
      kinds: ["error500"],
      match: (_op, key) => key !== "safe",
    });
    expect((await store.get("safe")).body).toEqual(bytes(4));
    await expect(store.get("k")).rejects.toBeInstanceOf(StoreRequestError);
  });

  test("checkedLtxBits only flips frame headers, size prefixes and index fields", async () => {
    const pages = [2, 3, 5, 8].map((pgno) => ({
      pgno,
      data: Uint8Array.from({ length: 512 }, (_, i) => (i * pgno) & 255),
    }));
    const file = encodeLtx({
      header: { pageSize: 512, commit: 8, minTXID: 4, maxTXID: 4, preApplyChecksum: 1n << 63n },
      pages,
      postApplyChecksum: 1n << 63n,
    });
    const layout = ltxLayout(file);
    expect(layout.entries.map((e) => e.pgno)).toEqual([2, 3, 5, 8]);
    const mem = new MemoryStore();
    await mem.put("0000/f.ltx", file);
    await mem.put("other", bytes(64));
    const store = faultyStore(mem, {
      ...only("bitflip"),
      flipBit: checkedLtxBits(new Map([["0000/f.ltx", layout]])),
    });
    const allowed = new Set<number>();
    for (const e of layout.entries) for (let i = 0; i < 10; i++) allowed.add(e.offset + i);
    for (const p of layout.indexFieldBytes) allowed.add(p);
    for (let i = 0; i < 8; i++) allowed.add(file.length - 24 + i);
    const r = prng(1);
    for (let i = 0; i < 300; i++) {
      const offset = r.int(0, file.length - 1);
      const length = r.int(1, file.length - offset);
      const got = (await store.get("0000/f.ltx", { range: { offset, length } })).body!;
      for (let j = 0; j < got.length; j++) {
        if (got[j] !== file[offset + j]) expect(allowed.has(offset + j)).toBe(true);
      }
    }
    expect(store.injected.bitflip).toBeGreaterThan(0);
    // Objects without a layout are never flipped.
    expect((await store.get("other")).body).toEqual(bytes(64));
  });
});
