/**
 * The built Node entry points are esbuild bundles with shared chunks
 * (scripts/bundle-dist.mjs): `pagecast` and `pagecast/node` used together in
 * one process must still share one instance of each module, so an error
 * thrown by `pagecast/node` is an instance of `pagecast`'s error classes and
 * stores registered by one are seen by the other.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const built = existsSync(join(ROOT, "dist", "index.node.js"));

describe.skipIf(!built)("built Node entry points (bundled)", () => {
  test("pagecast and pagecast/node share their modules in one process", async () => {
    const script = `
      import { mkdtempSync, rmSync } from "node:fs";
      import { tmpdir } from "node:os";
      import { join } from "node:path";
      const pagecast = await import("pagecast");
      const node = await import("pagecast/node");
      const dir = mkdtempSync(join(tmpdir(), "pagecast-entries-"));
      let error;
      try {
        // An empty memory store: restore finds no replica there.
        await node.restore("memory://entries-test/none", join(dir, "out.db"));
      } catch (e) {
        error = e;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      console.log(JSON.stringify({
        name: error?.constructor?.name,
        pagecastError: error instanceof pagecast.PagecastError,
        layoutError: error instanceof pagecast.LayoutError,
      }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script],
      { cwd: ROOT, timeout: 60_000 },
    );
    expect(JSON.parse(stdout.trim())).toEqual({
      name: "LayoutError",
      pagecastError: true,
      layoutError: true,
    });
  }, 90_000);

  test("import('pagecast') loads no networking, TLS, crypto or fetch module of Node", async () => {
    // Each costs a cold start milliseconds; they load with the first request instead.
    const script = `
      const before = new Set(process.moduleLoadList);
      await import("pagecast");
      console.log(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script],
      { cwd: ROOT, timeout: 60_000 },
    );
    const loaded = (JSON.parse(stdout.trim()) as string[]).map((m) =>
      m.replace(/^NativeModule /, ""),
    );
    const heavy = loaded.filter((m) =>
      /^(https?|tls|net|crypto|internal\/deps\/undici\/undici)$/.test(m),
    );
    expect(heavy).toEqual([]);
    expect(loaded.length).toBeGreaterThan(0);
  }, 90_000);
});
