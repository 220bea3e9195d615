/**
 * The file store's layout: LTX keys live where Litestream's file replica
 * client keeps them (`ltx/<level in decimal>/<min>-<max>.ltx`), every other
 * key at its path; directories written by earlier pagecast versions
 * (`%04x/...`) are read, and a writer moves them to the Litestream layout
 * without any moment where a reader misses a file.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { encodeLtx, ltxKey } from "../../src/format/index.js";
import {
  keyOfLitestreamPath,
  legacyPath,
  litestreamPath,
  parseLtxStoreKey,
} from "../../src/storage/file-layout.js";
import { FileStore } from "../../src/storage/file-store.js";
import { prefixedStore } from "../../src/storage/prefixed-store.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  PreconditionFailedError,
} from "../../src/storage/store-errors.js";

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "pagecast-file-layout-"));
  roots.push(root);
  return root;
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const name = (min: number, max: number) => ltxKey(0, min, max).slice(5);

async function allKeys(store: FileStore, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await store.list({
      prefix,
      maxKeys: 7,
      ...(token ? { continuationToken: token } : {}),
    });
    keys.push(...page.objects.map((o) => o.key));
    token = page.continuationToken;
  } while (token);
  return keys;
}

/** Writes files the way pagecast <= 0.1 laid out file replicas: at their key path. */
async function writeLegacy(root: string, key: string, body: string): Promise<void> {
  const path = join(root, ...key.split("/"));
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, body);
}

describe("file layout key mapping", () => {
  test("LTX keys map to ltx/<decimal level>/ and back; other keys are themselves", () => {
    const parts = parseLtxStoreKey("db/000a/0000000000000001-0000000000000002.ltx")!;
    expect(parts).toEqual({
      base: "db/",
      level: 10,
      name: "0000000000000001-0000000000000002.ltx",
    });
    expect(litestreamPath(parts)).toBe("db/ltx/10/0000000000000001-0000000000000002.ltx");
    expect(legacyPath(parts)).toBe("db/000a/0000000000000001-0000000000000002.ltx");
    expect(keyOfLitestreamPath("db/ltx/10/0000000000000001-0000000000000002.ltx")).toBe(
      "db/000a/0000000000000001-0000000000000002.ltx",
    );
    expect(keyOfLitestreamPath("ltx/9/0000000000000001-0000000000000003.ltx")).toBe(
      "0009/0000000000000001-0000000000000003.ltx",
    );
    for (const other of [
      "pagecast-head.json",
      "pagecast-skeleton/0000000000000001-0000000000000003.ltx",
      "000g/0000000000000001-0000000000000001.ltx",
      "0000/0000000000000002-0000000000000001.ltx",
      "0000/0000000000000000-0000000000000001.ltx",
      "0000/0000000000000001-0000000000000001.ltx.tmp",
    ]) {
      expect(parseLtxStoreKey(other), other).toBeUndefined();
    }
    for (const other of [
      "ltx/09/0000000000000001-0000000000000001.ltx",
      "ltx/65536/0000000000000001-0000000000000001.ltx",
      "xltx/0/0000000000000001-0000000000000001.ltx",
      "ltx/0/0000000000000001-0000000000000001.ltx.tmp",
    ]) {
      expect(keyOfLitestreamPath(other), other).toBeUndefined();
    }
  });
});

describe("FileStore: Litestream's file layout", () => {
  test("LTX puts land in ltx/<n>/ with the header's commit time as mtime; reads and listings use keys", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root });
    const committed = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const ltx = encodeLtx({
      header: { pageSize: 512, commit: 1, minTXID: 1, maxTXID: 5, timestamp: committed, flags: 2 },
      pages: [{ pgno: 1, data: new Uint8Array(512).fill(7) }],
      postApplyChecksum: 0n,
    });
    await store.put("0009/0000000000000001-0000000000000005.ltx", ltx, { ifNoneMatch: "*" });
    await store.put("0000/0000000000000006-0000000000000006.ltx", text("six"));
    await store.put("pagecast-head.json", text("{}"));
    const path = join(root, "ltx", "9", "0000000000000001-0000000000000005.ltx");
    // Within the microsecond: file times are set through floating-point seconds.
    expect(Math.abs((await stat(path)).mtimeMs - committed)).toBeLessThan(0.001);
    expect(existsSync(join(root, "ltx", "0", name(6, 6)))).toBe(true);
    expect(existsSync(join(root, "pagecast-head.json"))).toBe(true);
    expect(existsSync(join(root, "0009"))).toBe(false);

    expect(await allKeys(store)).toEqual([
      "0000/0000000000000006-0000000000000006.ltx",
      "0009/0000000000000001-0000000000000005.ltx",
      "pagecast-head.json",
    ]);
    expect(await allKeys(store, "0009/")).toEqual(["0009/0000000000000001-0000000000000005.ltx"]);
    expect(await allKeys(store, "000")).toHaveLength(2);
    expect(await allKeys(store, "0000/0000000000000006")).toHaveLength(1);
    expect(await allKeys(store, "ltx/")).toEqual([]);
    const listed = (await store.list({ prefix: "0009/" })).objects[0]!;
    expect(listed.lastModified.getTime()).toBe(committed);
    expect((await store.head("0009/0000000000000001-0000000000000005.ltx"))?.size).toBe(ltx.length);
    const got = await store.get("0000/0000000000000006-0000000000000006.ltx", {
      range: { offset: 1, length: 2 },
    });
    expect(str(got.body)).toBe("ix");
    expect(await store.filePath("0000/0000000000000006-0000000000000006.ltx")).toBe(
      join(root, "ltx", "0", name(6, 6)),
    );
    expect(await store.filePath("0000/0000000000000007-0000000000000007.ltx")).toBeUndefined();

    // A Litestream-layout path is not a second key for the same file.
    await expect(store.get(`ltx/0/${name(6, 6)}`)).rejects.toBeInstanceOf(
      InvalidStoreArgumentError,
    );
    await expect(store.put(`ltx/9/${name(1, 5)}`, text("x"))).rejects.toBeInstanceOf(
      InvalidStoreArgumentError,
    );
    // Other files there are plain keys (Litestream's own temp files, say).
    await store.put(`ltx/0/${name(7, 7)}.tmp`, text("tmp"));
    expect(await allKeys(store, "ltx/")).toEqual([`ltx/0/${name(7, 7)}.tmp`]);

    await store.deleteMany(["0000/0000000000000006-0000000000000006.ltx"]);
    await expect(store.get("0000/0000000000000006-0000000000000006.ltx")).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await store.close();
  });

  test("a prefixed view maps its LTX keys under its own directory", async () => {
    const root = await freshRoot();
    const store = new FileStore({ root });
    const db1 = prefixedStore(store, "apps/db1");
    await db1.put("0001/0000000000000001-0000000000000004.ltx", text("l1"));
    expect(existsSync(join(root, "apps", "db1", "ltx", "1", name(1, 4)))).toBe(true);
    expect((await db1.list()).objects.map((o) => o.key)).toEqual([
      "0001/0000000000000001-0000000000000004.ltx",
    ]);
    expect(str((await db1.get("0001/0000000000000001-0000000000000004.ltx")).body)).toBe("l1");
    await store.close();
  });

  test("reads a directory in the legacy layout (earlier pagecast) and in both at once", async () => {
    const root = await freshRoot();
    await writeLegacy(root, `0000/${name(2, 2)}`, "two");
    await writeLegacy(root, `0009/${name(1, 1)}`, "snap");
    await writeLegacy(root, "pagecast-head.json", "{}");
    const reader = new FileStore({ root });
    expect(await allKeys(reader)).toEqual([
      `0000/${name(2, 2)}`,
      `0009/${name(1, 1)}`,
      "pagecast-head.json",
    ]);
    expect(str((await reader.get(`0009/${name(1, 1)}`)).body)).toBe("snap");
    expect(await reader.head(`0000/${name(2, 2)}`)).toMatchObject({ size: 3 });
    // The same key in both layouts is listed once; the Litestream-layout file is the key's.
    await writeLegacy(root, `ltx/0/${name(2, 2)}`, "TWO");
    await writeLegacy(root, `ltx/0/${name(3, 3)}`, "three");
    expect(await allKeys(reader, "0000/")).toEqual([`0000/${name(2, 2)}`, `0000/${name(3, 3)}`]);
    expect(str((await reader.get(`0000/${name(2, 2)}`)).body)).toBe("TWO");
    // Reading never writes anything (fixtures may be read-only).
    expect((await readdir(root)).sort()).toEqual(["0000", "0009", "ltx", "pagecast-head.json"]);
    // Deleting a key removes it from both layouts.
    await reader.deleteMany([`0000/${name(2, 2)}`]);
    await expect(reader.get(`0000/${name(2, 2)}`)).rejects.toBeInstanceOf(NotFoundError);
    expect(existsSync(join(root, "0000"))).toBe(false);
    await reader.close();
  });

  test("the first LTX put moves the directory's legacy files into the Litestream layout", async () => {
    const root = await freshRoot();
    for (let txid = 2; txid <= 5; txid++)
      await writeLegacy(root, `0000/${name(txid, txid)}`, `t${txid}`);
    await writeLegacy(root, `0001/${name(2, 5)}`, "l1");
    await writeLegacy(root, `0009/${name(1, 1)}`, "snap");
    await writeLegacy(root, "0000/notes.txt", "not an LTX file");
    await writeLegacy(root, "pagecast-head.json", "{}");
    await writeLegacy(root, `pagecast-skeleton/${name(1, 1)}`, "skeleton");
    const writer = new FileStore({ root });
    const before = await allKeys(writer);
    // Non-LTX puts move nothing.
    await writer.put("pagecast-head.json", text("{ }"));
    expect(existsSync(join(root, "0000", name(2, 2)))).toBe(true);
    // An existing key stays create-only across layouts.
    await expect(
      writer.put(`0000/${name(3, 3)}`, text("again"), { ifNoneMatch: "*" }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(existsSync(join(root, "0000", name(2, 2)))).toBe(false);
    await writer.put(`0000/${name(6, 6)}`, text("t6"), { ifNoneMatch: "*" });
    // Every LTX file is in ltx/<n>/ now; the rest is where it was.
    expect((await readdir(join(root, "ltx", "0"))).sort()).toEqual(
      [2, 3, 4, 5, 6].map((t) => name(t, t)),
    );
    expect(await readdir(join(root, "ltx", "1"))).toEqual([name(2, 5)]);
    expect(await readdir(join(root, "ltx", "9"))).toEqual([name(1, 1)]);
    expect(existsSync(join(root, "0001"))).toBe(false);
    expect(existsSync(join(root, "0009"))).toBe(false);
    expect(await readdir(join(root, "0000"))).toEqual(["notes.txt"]);
    expect(await readdir(join(root, "pagecast-skeleton"))).toEqual([name(1, 1)]);
    expect(await allKeys(writer)).toEqual([...before, `0000/${name(6, 6)}`].sort());
    expect(str((await writer.get(`0000/${name(3, 3)}`)).body)).toBe("t3");
    await writer.close();
  });

  test("readers find every file while a writer moves a legacy directory", async () => {
    const root = await freshRoot();
    const count = 300;
    const keys: string[] = [];
    for (let txid = 1; txid <= count; txid++) {
      const key = `0000/${name(txid, txid)}`;
      keys.push(key);
      await writeLegacy(root, key, `t${txid}`);
    }
    const writer = new FileStore({ root, fsync: false });
    const reader = new FileStore({ root });
    let moving = true;
    const move = writer
      .put(`0000/${name(count + 1, count + 1)}`, text("new"), { ifNoneMatch: "*" })
      .finally(() => {
        moving = false;
      });
    let rounds = 0;
    const lister = async () => {
      while (moving || rounds < 2) {
        rounds++;
        const listed = new Set(await allKeys(reader, "0000/"));
        for (const key of keys)
          expect(listed.has(key), `${key} listed in round ${rounds}`).toBe(true);
      }
    };
    // Point reads, several at once, each sweeping the keys from another place.
    const getter = async (start: number) => {
      for (let i = start; moving; i = (i + 1) % count) {
        const key = keys[i]!;
        expect(str((await reader.get(key)).body)).toBe(`t${i + 1}`);
        expect(await reader.head(key), key).toBeDefined();
      }
    };
    await Promise.all([lister(), ...[0, 75, 150, 225].map(getter)]);
    await move;
    expect(rounds).toBeGreaterThan(1);
    expect(existsSync(join(root, "0000"))).toBe(false);
    expect(await readdir(join(root, "ltx", "0"))).toHaveLength(count + 1);
    await writer.close();
    await reader.close();
  });
});
