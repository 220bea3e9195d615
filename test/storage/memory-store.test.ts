import { describe, expect, test } from "vitest";
import { dropMemoryStore, MemoryStore } from "../../src/storage/memory-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { InvalidStoreArgumentError } from "../../src/storage/store-errors.js";
import { defineStoreContract } from "./contract.js";

defineStoreContract("memory", async () => new MemoryStore(), {
  conditionalPut: true,
  byteOrderListing: true,
});

const text = (s: string) => new TextEncoder().encode(s);

describe("MemoryStore specifics", () => {
  test("memory://name opened twice shares the objects; other names do not", async () => {
    const a = await openStore("memory://shared-test");
    const b = await openStore("memory://shared-test");
    const c = await openStore("memory://other-test");
    await a.put("k", text("from a"));
    expect(new TextDecoder().decode((await b.get("k")).body)).toBe("from a");
    expect(await c.head("k")).toBeUndefined();
    expect(a.url).toBe("memory://shared-test");
    // Counters are per store instance, data is shared.
    expect(a.counters().requests.put).toBe(1);
    expect(b.counters().requests.put).toBe(0);
    await a.close();
    expect(await b.head("k")).toBeDefined();
    expect(dropMemoryStore("shared-test")).toBe(true);
    const fresh = await openStore("memory://shared-test");
    expect(await fresh.head("k")).toBeUndefined();
    for (const s of [b, c, fresh]) await s.close();
  });

  test("memory://name/prefix is a view under that prefix", async () => {
    const whole = await openStore("memory://prefix-test");
    const view = await openStore("memory://prefix-test/db1");
    await view.put("0000/a.ltx", text("x"));
    expect((await whole.list()).objects.map((o) => o.key)).toEqual(["db1/0000/a.ltx"]);
    expect((await view.list()).objects.map((o) => o.key)).toEqual(["0000/a.ltx"]);
    expect(view.url).toBe("memory://prefix-test/db1");
    dropMemoryStore("prefix-test");
  });

  test("private stores are isolated from each other", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    await a.put("k", text("x"));
    expect(await b.head("k")).toBeUndefined();
    expect(a.url).not.toBe(b.url);
  });

  test("every version gets a new ETag, even for identical content", async () => {
    const store = new MemoryStore();
    const first = await store.put("k", text("same"));
    const second = await store.put("k", text("same"));
    expect(second.etag).not.toBe(first.etag);
    await expect(store.put("k", text("x"), { ifMatch: first.etag })).rejects.toMatchObject({
      code: "STORE_PRECONDITION_FAILED",
    });
  });

  test("deleteMany counts one request per batch of 1000 keys", async () => {
    const store = new MemoryStore();
    const keys = Array.from({ length: 1001 }, (_, i) => `k${i}`);
    for (const k of keys) await store.put(k, new Uint8Array(1));
    await store.deleteMany(keys);
    expect(store.counters().requests.delete).toBe(2);
    expect((await store.list()).objects).toEqual([]);
  });

  test("list pages of at most 1000 keys", async () => {
    const store = new MemoryStore();
    for (let i = 0; i < 1005; i++)
      await store.put(`k${String(i).padStart(4, "0")}`, new Uint8Array(0));
    const page = await store.list({ maxKeys: 5000 });
    expect(page.objects).toHaveLength(1000);
    const rest = await store.list({ continuationToken: page.continuationToken! });
    expect(rest.objects).toHaveLength(5);
    expect(rest.continuationToken).toBeUndefined();
  });

  test("bad names are refused", () => {
    expect(() => new MemoryStore({ name: "a/b" })).toThrow(InvalidStoreArgumentError);
    expect(() => new MemoryStore({ name: "" })).toThrow(InvalidStoreArgumentError);
  });
});
