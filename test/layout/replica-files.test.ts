import { describe, expect, test } from "vitest";
import { levelPrefix, listAllLevels, listLevel, parseReplicaKey } from "../../src/layout/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";

describe("replica files", () => {
  test("parses only canonical LTX keys of levels 0..9", () => {
    expect(parseReplicaKey("0009/0000000000000001-00000000000000ff.ltx")).toEqual({
      level: 9,
      minTXID: 1,
      maxTXID: 255,
    });
    expect(parseReplicaKey("000a/0000000000000001-0000000000000001.ltx")).toBeUndefined();
    expect(parseReplicaKey("0000/0000000000000002-0000000000000001.ltx")).toBeUndefined();
    expect(parseReplicaKey("0000/0000000000000001-000000000000000A.ltx")).toBeUndefined();
    expect(parseReplicaKey("0000/x/0000000000000001-0000000000000001.ltx")).toBeUndefined();
    expect(parseReplicaKey("pagecast-head.json")).toBeUndefined();
    expect(levelPrefix(3)).toBe("0003/");
  });

  test("lists levels across pages, skipping foreign objects", async () => {
    const store = new MemoryStore();
    const body = new Uint8Array(10);
    for (let t = 1; t <= 25; t++) {
      await store.put(
        `0000/${t.toString(16).padStart(16, "0")}-${t.toString(16).padStart(16, "0")}.ltx`,
        body,
      );
    }
    await store.put("0009/0000000000000001-0000000000000005.ltx", body);
    await store.put("0001/junk.txt", body);
    await store.put("pagecast-head.json", body);
    // Force pagination by wrapping list with a small page size.
    const paged = new Proxy(store, {
      get(target, prop, recv) {
        if (prop === "list") {
          return (opts: Parameters<MemoryStore["list"]>[0]) => target.list({ ...opts, maxKeys: 4 });
        }
        return Reflect.get(target, prop, recv);
      },
    });
    const l0 = await listLevel(paged, 0);
    expect(l0.map((x) => x.minTXID)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(l0[0]!.size).toBe(10);
    expect((await listLevel(paged, 0, { afterTXID: 20 })).map((x) => x.minTXID)).toEqual([
      21, 22, 23, 24, 25,
    ]);
    const all = await listAllLevels(paged);
    expect(all.length).toBe(26);
    expect(all[all.length - 1]!.level).toBe(9);
  });
});
