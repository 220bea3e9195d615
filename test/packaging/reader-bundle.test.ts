/**
 * `pagecast/reader` as consumers resolve it: the package's "./reader"
 * export. Bundled for Workers (esbuild, platform=browser, the workerd /
 * worker / browser conditions, as wrangler bundles), a reader-only Worker
 * carries neither the plain build's glue, the URL opener (FetchS3Store and
 * its SigV4 signer, the AWS SDK) nor anything from `node:`, while the same Worker
 * against `pagecast` does (the control: the checks can fail). In Node the
 * entry shares its modules with `pagecast`. Sizes are figure 12's business;
 * this checks contents (metafile inputs).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, describe, expect, test } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const built = existsSync(join(ROOT, "dist", "reader.js"));
mkdirSync(join(ROOT, ".tmp"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".tmp", "reader-bundle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Exports = Record<string, Record<string, string>>;
const exportsMap = (): Exports =>
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).exports as Exports;

/** Inputs contributing code to a Workers bundle of `source`, and the `node:` modules it asked for. */
async function bundle(source: string): Promise<{ inputs: string[]; nodeImports: string[] }> {
  const entry = join(dir, `worker-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(entry, source);
  const nodeImports: string[] = [];
  const exports = exportsMap();
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    minify: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    logLevel: "silent",
    metafile: true,
    plugins: [
      {
        name: "package-exports-and-wasm",
        setup(b) {
          // What a Workers bundler picks from package.json: the "default" condition.
          b.onResolve({ filter: /^pagecast(\/reader)?$/ }, (args) => {
            const key = args.path === "pagecast" ? "." : "./reader";
            return { path: join(ROOT, exports[key]!.default!) };
          });
          b.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: args.path, external: true }));
          b.onResolve({ filter: /^node:/ }, (args) => {
            nodeImports.push(args.path);
            return { path: args.path, external: true };
          });
        },
      },
    ],
  });
  const output = Object.values(result.metafile.outputs)[0]!;
  const inputs = Object.entries(output.inputs)
    .filter(([, info]) => info.bytesInOutput > 0)
    .map(([file]) => file.replace(/^.*node_modules\//, "node_modules/"));
  return { inputs, nodeImports };
}

const worker = (
  from: string,
) => `import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm";
import { openReplica, r2Store } from "${from}";
let replica;
export default {
  async fetch(request, env) {
    replica ??= openReplica({ store: r2Store(env.BUCKET, "app"), wasm });
    return Response.json(await (await replica).query("SELECT * FROM t WHERE id = ?", [1]));
  },
};
`;

const SYNC_GLUE = "node_modules/@journeyapps/wa-sqlite/dist/wa-sqlite.mjs";
const ASYNC_GLUE = "node_modules/@journeyapps/wa-sqlite/dist/wa-sqlite-async.mjs";
const urlOpening = (inputs: string[]) =>
  inputs.filter((f) =>
    /dist\/storage\/(fetch-s3-store|open-store|s3-store|store-url|sigv4|sigv4-node)\.js$|node_modules\/(aws4fetch|@aws-sdk|@smithy)\//.test(
      f,
    ),
  );

describe.skipIf(!built)("pagecast/reader", () => {
  test('package.json exports "./reader" with types, node and default, all built', () => {
    const reader = exportsMap()["./reader"];
    expect(Object.keys(reader ?? {})).toEqual(["types", "node", "default"]);
    for (const file of Object.values(reader!))
      expect(existsSync(join(ROOT, file)), file).toBe(true);
  });

  test("a reader-only Worker bundles no plain-build glue, URL opener, router or node: import", async () => {
    const { inputs, nodeImports } = await bundle(worker("pagecast/reader"));
    expect(inputs).toContain(ASYNC_GLUE);
    expect(inputs.some((f) => f.endsWith("dist/storage/r2-store.js"))).toBe(true);
    expect(inputs).not.toContain(SYNC_GLUE);
    expect(inputs.filter((f) => f.endsWith("dist/vfs/sync-build.js"))).toEqual([]);
    expect(urlOpening(inputs)).toEqual([]);
    expect(inputs.filter((f) => /node_modules\/drizzle-orm\/|dist\/router\//.test(f))).toEqual([]);
    expect(nodeImports).toEqual([]);
  }, 60_000);

  test("control: the same Worker against pagecast carries the plain build's glue and the URL opener", async () => {
    const { inputs } = await bundle(worker("pagecast"));
    expect(inputs).toContain(SYNC_GLUE);
    expect(urlOpening(inputs)).toContain("dist/storage/fetch-s3-store.js");
  }, 60_000);

  test("in Node, pagecast/reader shares its modules with pagecast (one ReplicaError, pagecast's wasm)", async () => {
    const script = `
      const pagecast = await import("pagecast");
      const reader = await import("pagecast/reader");
      const results = {};
      try {
        await reader.openReplica("memory://reader-node/app");
      } catch (e) {
        results.url = { code: e.code, sameClass: e instanceof pagecast.ReplicaError };
      }
      // No wasm passed: the one pagecast registers in Node serves this entry too.
      try {
        await reader.openReplica({ store: new pagecast.MemoryStore() });
      } catch (e) {
        results.empty = e.code;
      }
      console.log(JSON.stringify(results));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script],
      { cwd: ROOT, timeout: 60_000 },
    );
    expect(JSON.parse(stdout.trim())).toEqual({
      url: { code: "REPLICA_INVALID_ARGUMENT", sameClass: true },
      empty: "REPLICA_EMPTY",
    });
  }, 90_000);
});
