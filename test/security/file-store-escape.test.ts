/**
 * The file backend never reads, writes, lists or deletes outside its root,
 * whatever key, prefix or URL it is given (issue 7, security).
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { PagecastError } from "../../src/errors.js";
import { FileStore } from "../../src/storage/file-store.js";
import { openNodeStore } from "../../src/storage/open-node-store.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A root inside a parent that also holds a "secret" file and an "outside" directory. */
function layout() {
  const parent = mkdtempSync(join(tmpdir(), "pagecast-escape-"));
  dirs.push(parent);
  const root = join(parent, "root");
  mkdirSync(root);
  mkdirSync(join(parent, "outside"));
  writeFileSync(join(parent, "secret"), "TOP SECRET");
  writeFileSync(join(parent, "outside", "victim"), "do not touch");
  return { parent, root };
}

const HOSTILE_KEYS = [
  "../secret",
  "../../secret",
  "a/../../secret",
  "a/../b",
  "./a",
  "a/./b",
  "a//b",
  "/etc/passwd",
  "//etc/passwd",
  "..",
  ".",
  "",
  "..\\secret",
  "a\\..\\..\\secret",
  "a/\u0000/b",
  "a\u0000",
  "\n",
  ".pagecast/tmp/x",
  ".pagecast/locks/x",
  "\ud800",
  "x".repeat(1025),
  "C:\\Windows\\win.ini",
];

/** Keys that look like escapes but are literal names inside the root: allowed, and must stay inside. */
const LITERAL_KEYS = [
  "%2e%2e/secret",
  "a/%2e%2e/%2e%2e/secret",
  "\u202e../secret",
  "...",
  "a/.../b",
];

describe("file store confinement", () => {
  test("hostile keys are refused by every operation, and nothing outside the root changes", async () => {
    const { parent, root } = layout();
    const store = new FileStore({ root, fsync: false });
    for (const key of HOSTILE_KEYS) {
      const ops: [string, () => Promise<unknown>][] = [
        ["get", () => store.get(key)],
        ["head", () => store.head(key)],
        ["put", () => store.put(key, new TextEncoder().encode("pwned"))],
        ["put create-only", () => store.put(key, new Uint8Array(1), { ifNoneMatch: "*" })],
        ["delete", () => store.deleteMany([key])],
        ["delete with a valid key first", () => store.deleteMany(["ok", key])],
      ];
      for (const [op, run] of ops) {
        const err = await Promise.resolve()
          .then(run)
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        const label = `${op} ${JSON.stringify(key)}`;
        expect(err, label).toBeInstanceOf(PagecastError);
        expect((err as PagecastError).code, label).toBe("STORE_INVALID_ARGUMENT");
      }
    }
    for (const key of LITERAL_KEYS) {
      await store.put(key, new TextEncoder().encode("inside"));
      expect(new TextDecoder().decode((await store.get(key)).body)).toBe("inside");
      expect(existsSync(join(root, ...key.split("/")))).toBe(true);
      await store.deleteMany([key]);
    }
    for (const prefix of ["../", "../outside/", "/", "a/../", "\\", "a/../../"]) {
      await expect(store.list({ prefix }), prefix).rejects.toMatchObject({
        code: "STORE_INVALID_ARGUMENT",
      });
    }
    // A partial last segment ".." is a legal prefix ("..x" is a legal key): it lists inside the root only.
    await store.put("..x", new Uint8Array([1]));
    expect((await store.list({ prefix: ".." })).objects.map((o) => o.key)).toEqual(["..x"]);
    expect((await store.list({ startAfter: "../x" })).objects.map((o) => o.key)).not.toContain(
      "secret",
    );
    await store.deleteMany(["..x"]);
    // Nothing outside the root was created, changed or removed.
    expect(readdirSync(parent).sort()).toEqual(["outside", "root", "secret"]);
    expect(readdirSync(join(parent, "outside"))).toEqual(["victim"]);
    expect(existsSync(join(root, "pwned"))).toBe(false);
  });

  test("file:// URLs with dot segments or credentials never open a store", async () => {
    const { root } = layout();
    for (const url of [
      `file://${root}/../outside`,
      `file://${root}/%2e%2e/outside`,
      `file://${root}/.%2E/outside`,
      `file://user:pw@localhost${root}`,
      `file://otherhost${root}`,
      "file://relative/path",
      "file:///",
      `file://${root}?x=1`,
    ]) {
      await expect(openNodeStore(url), url).rejects.toMatchObject({ code: "STORE_INVALID_URL" });
    }
  });

  /*
   * Symbolic links inside the root are never followed: a key that is a link,
   * or lies under a linked directory, cannot be read, and a put through a
   * linked directory creates nothing outside the root.
   */
  test("symbolic links inside the root do not lead outside it", async () => {
    const { parent, root } = layout();
    symlinkSync(join(parent, "outside"), join(root, "link"));
    symlinkSync(join(parent, "secret"), join(root, "secret-link"));
    const store = new FileStore({ root, fsync: false });
    await expect(store.get("secret-link")).rejects.toBeInstanceOf(PagecastError);
    await expect(store.get("link/victim")).rejects.toBeInstanceOf(PagecastError);
    await expect(store.head("link/victim")).rejects.toBeInstanceOf(PagecastError);
    await store.put("link/planted", new Uint8Array([1])).catch(() => {});
    await store.put("link/deeper/planted", new Uint8Array([1])).catch(() => {});
    await store.deleteMany(["link/victim"]).catch(() => {});
    expect(existsSync(join(parent, "outside", "planted"))).toBe(false);
    expect(existsSync(join(parent, "outside", "deeper"))).toBe(false);
    expect(existsSync(join(parent, "outside", "victim"))).toBe(true);
    expect((await store.list({ prefix: "link/" })).objects).toEqual([]);
  });
});
