import { describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { prefixedStore } from "../../src/storage/prefixed-store.js";
import { InvalidStoreArgumentError, StoreClosedError } from "../../src/storage/store-errors.js";
import { defineStoreContract } from "./contract.js";

defineStoreContract(
  "prefixed view of memory",
  async () => prefixedStore(new MemoryStore(), "tenant/db-1", { ownsStore: true }),
  { conditionalPut: true, byteOrderListing: true },
);

const text = (s: string) => new TextEncoder().encode(s);

describe("prefixedStore", () => {
  test("a view sees only its own keys, under relative names", async () => {
    const base = new MemoryStore({ name: "prefixed-test" });
    const one = prefixedStore(base, "db1");
    const two = prefixedStore(base, "db1x/");
    await one.put("0000/a.ltx", text("1"));
    await two.put("0000/a.ltx", text("2"));
    await base.put("db1-sibling", text("3"));
    expect((await one.list()).objects.map((o) => o.key)).toEqual(["0000/a.ltx"]);
    expect((await one.list({ startAfter: "0000/a.ltx" })).objects).toEqual([]);
    expect((await one.get("0000/a.ltx")).meta?.key).toBe("0000/a.ltx");
    expect((await base.list()).objects.map((o) => o.key)).toEqual([
      "db1-sibling",
      "db1/0000/a.ltx",
      "db1x/0000/a.ltx",
    ]);
    expect(one.url).toBe("memory://prefixed-test/db1");
    expect(one.counters()).toEqual(base.counters());
  });

  test("closing a view leaves the underlying store open unless it owns it", async () => {
    const base = new MemoryStore();
    const view = prefixedStore(base, "v");
    await view.close();
    await expect(view.put("k", text("x"))).rejects.toBeInstanceOf(StoreClosedError);
    await base.put("k", text("x"));
    const owning = prefixedStore(base, "w", { ownsStore: true });
    await owning.close();
    await expect(base.put("k", text("x"))).rejects.toBeInstanceOf(StoreClosedError);
  });

  test("the prefix is inserted before a URL's query", () => {
    const fake = { ...new MemoryStore(), url: "s3://b/p?endpoint=http%3A%2F%2Fh" } as MemoryStore;
    expect(prefixedStore(fake, "x y").url).toBe("s3://b/p/x%20y?endpoint=http%3A%2F%2Fh");
  });

  test("bad prefixes are refused; an empty prefix is the store itself", () => {
    const base = new MemoryStore();
    expect(() => prefixedStore(base, "../x")).toThrow(InvalidStoreArgumentError);
    expect(() => prefixedStore(base, "/abs")).toThrow(InvalidStoreArgumentError);
    expect(prefixedStore(base, "")).toBe(base);
  });
});
