import { mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import { FileStore } from "../../src/storage/file-store.js";
import { openNodeStore } from "../../src/storage/open-node-store.js";
import {
  InvalidStoreArgumentError,
  PreconditionFailedError,
} from "../../src/storage/store-errors.js";
import { defineStoreContract } from "./contract.js";

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "pagecast-file-store-"));
  roots.push(root);
  return root;
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

defineStoreContract("file", async () => new FileStore({ root: join(await freshRoot(), "store") }), {
  conditionalPut: true,
  byteOrderListing: true,
});

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe("FileStore specifics", () => {
  test("keys map to files under the root; keys that would escape it are refused", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root });
    await store.put("0000/0000000000000001-0000000000000001.ltx", text("ltx"));
    await store.put("a/b", text("plain"));
    const fs = await import("node:fs/promises");
    // LTX keys in Litestream's file layout, other keys at their path.
    expect(
      str(await fs.readFile(join(root, "ltx", "0", "0000000000000001-0000000000000001.ltx"))),
    ).toBe("ltx");
    expect(str(await fs.readFile(join(root, "a", "b")))).toBe("plain");
    for (const key of [
      "../outside",
      "a/../../outside",
      "/etc/passwd",
      "a\\..\\b",
      "a\u0000",
      ".pagecast/tmp/x",
    ]) {
      await expect(store.put(key, text("x")), key).rejects.toBeInstanceOf(
        InvalidStoreArgumentError,
      );
      await expect(store.get(key)).rejects.toBeInstanceOf(InvalidStoreArgumentError);
    }
    expect(await readdir(join(root, ".."))).not.toContain("outside");
  });

  test("temp and lock files never show in listings, and none are left behind", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k/${i}`, text(`v${i}`))));
    await store.put("k/0", text("x"), { ifMatch: "stale" }).catch(() => {});
    const keys = (await store.list()).objects.map((o) => o.key);
    expect(keys).toHaveLength(20);
    expect(keys.every((k) => k.startsWith("k/"))).toBe(true);
    expect(await readdir(join(root, ".pagecast", "tmp"))).toEqual([]);
    expect(await readdir(join(root, ".pagecast", "locks"))).toEqual([]);
  });

  test("deleting the last key of a directory removes the empty directories", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root });
    await store.put("a/b/c", text("1"));
    await store.put("a/keep", text("2"));
    await store.deleteMany(["a/b/c"]);
    expect(await readdir(join(root, "a"))).toEqual(["keep"]);
    await store.deleteMany(["a/keep"]);
    expect((await readdir(root)).filter((n) => n !== ".pagecast")).toEqual([]);
  });

  test("create-only is exclusive across independent store instances (as across processes)", async () => {
    const root = await freshRoot();
    // Separate instances share no in-process lock: only the lock file and link() decide.
    const stores = Array.from({ length: 6 }, () => new FileStore({ root, fsync: false }));
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled(
        stores.map((s, i) => s.put(`lease-${round}`, text(`writer ${i}`), { ifNoneMatch: "*" })),
      );
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected") expect(r.reason).toBeInstanceOf(PreconditionFailedError);
      }
      expect(str((await stores[0]!.get(`lease-${round}`)).body)).toBe(`writer ${won[0]}`);
    }
  });

  test("compare-and-swap loses no update across independent store instances", async () => {
    const root = await freshRoot();
    const stores = Array.from({ length: 4 }, () => new FileStore({ root, fsync: false }));
    await stores[0]!.put("counter", text("0"));
    const perWriter = 8;
    await Promise.all(
      stores.map(async (store) => {
        for (let done = 0; done < perWriter; ) {
          const current = await store.get("counter");
          const next = Number(str(current.body)) + 1;
          try {
            await store.put("counter", text(String(next)), { ifMatch: current.meta!.etag });
            done += 1;
          } catch (error) {
            if (!(error instanceof PreconditionFailedError)) throw error;
          }
        }
      }),
    );
    expect(str((await stores[0]!.get("counter")).body)).toBe(String(stores.length * perWriter));
  });

  test("a stale lock file left by a dead writer is taken over", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root, locks: { staleMs: 200 } });
    await store.put("k", text("1"));
    const lockDir = join(root, ".pagecast", "locks");
    const { createHash } = await import("node:crypto");
    const lock = join(lockDir, `${createHash("sha256").update("k").digest("hex")}.lock`);
    await writeFile(lock, "");
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    await store.put("k", text("2"));
    expect(str((await store.get("k")).body)).toBe("2");
  });

  test("a busy lock that never frees fails retryably instead of hanging", async () => {
    const root = await freshRoot();
    const store = new FileStore({
      root,
      locks: { staleMs: 60_000, waitMs: 100 },
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    await store.put("k", text("1"));
    const { createHash } = await import("node:crypto");
    await writeFile(
      join(root, ".pagecast", "locks", `${createHash("sha256").update("k").digest("hex")}.lock`),
      "",
    );
    const error = await store.put("k", text("2")).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "STORE_REQUEST_FAILED",
      retryable: true,
      serverCode: "LockBusy",
    });
    expect(store.counters().retries).toBe(1);
    expect(str((await store.get("k")).body)).toBe("1");
  });

  test("ETags change with every write, even for the same size and content", async () => {
    const store = new FileStore({ root: await freshRoot(), fsync: false });
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add((await store.put("k", text("same"))).etag);
    expect(seen.size).toBe(50);
    const last = [...seen].pop()!;
    expect((await store.head("k"))?.etag).toBe(last);
    expect((await store.list()).objects[0]?.etag).toBe(last);
  });

  test("readers never see a torn object while it is being replaced", async () => {
    const store = new FileStore({ root: await freshRoot(), fsync: false });
    const a = new Uint8Array(256 * 1024).fill(0x61);
    const b = new Uint8Array(256 * 1024).fill(0x62);
    await store.put("obj", a);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 30; i++) await store.put("obj", i % 2 ? a : b);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const got = (await store.get("obj")).body!;
      expect(got.length).toBe(a.length);
      expect(got.every((x) => x === got[0])).toBe(true);
      reads += 1;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
  });

  test("symbolic links and directories are not objects", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root });
    await store.put("real", text("x"));
    await symlink(join(root, "real"), join(root, "link"));
    await mkdir(join(root, "emptydir"));
    expect((await store.list()).objects.map((o) => o.key)).toEqual(["real"]);
    expect(await store.head("emptydir")).toBeUndefined();
    await expect(store.get("emptydir")).rejects.toMatchObject({ code: "STORE_NOT_FOUND" });
    await store.deleteMany(["emptydir"]);
    expect((await stat(join(root, "emptydir"))).isDirectory()).toBe(true);
  });

  test("openNodeStore opens file:// URLs and the store's url round-trips", async () => {
    const root = await freshRoot();
    const url = pathToFileURL(join(root, "with space")).href;
    const store = await openNodeStore(url);
    await store.put("k", text("v"));
    expect(store.url).toBe(url);
    const again = await openNodeStore(store.url);
    expect(str((await again.get("k")).body)).toBe("v");
    const memory = await openNodeStore("memory://node-open-test");
    expect(memory.url).toBe("memory://node-open-test");
  });

  test("a key cannot be both an object and a directory of keys (documented limit)", async () => {
    const store = new FileStore({ root: await freshRoot() });
    await store.put("a/b", text("1"));
    await expect(store.put("a", text("2"))).rejects.toMatchObject({
      code: "STORE_REQUEST_FAILED",
      retryable: false,
    });
    await expect(store.put("a/b/c", text("3"))).rejects.toMatchObject({ retryable: false });
    expect(store.counters().retries).toBe(0);
  });

  test("a relative root is refused", () => {
    expect(() => new FileStore({ root: "relative/dir" })).toThrow(InvalidStoreArgumentError);
  });
});
