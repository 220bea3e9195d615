/**
 * What a Workers/browser bundle of the built package holds (esbuild, as
 * wrangler bundles; the `default` export, dist/index.web.js): a reader-only
 * Worker carries neither drizzle-orm, the router nor the AWS SDK, while one
 * that builds a Drizzle database gets drizzle-orm (registered on first use).
 * Sizes are the benchmark's business (figure 12); this checks contents.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, describe, expect, test } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const built = existsSync(join(ROOT, "dist", "index.web.js"));
mkdirSync(join(ROOT, ".tmp"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".tmp", "web-bundle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The inputs (node_modules packages and dist/ files) of a browser bundle of `source`. */
async function bundleInputs(source: string): Promise<string[]> {
  const entry = join(dir, `entry-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(entry, source);
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
        name: "package-and-wasm",
        setup(b) {
          b.onResolve({ filter: /^pagecast$/ }, () => ({
            path: join(ROOT, "dist", "index.web.js"),
          }));
          b.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: args.path, external: true }));
        },
      },
    ],
  });
  const output = Object.values(result.metafile.outputs)[0]!;
  // Inputs that contribute code (a module tree-shaken to nothing stays listed with 0 bytes).
  return Object.entries(output.inputs)
    .filter(([, info]) => info.bytesInOutput > 0)
    .map(([file]) => file.replace(/^.*node_modules\//, "node_modules/"));
}

const READER_ONLY = `import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm";
import { openReplica, r2Store } from "pagecast";
export default {
  async fetch(request, env) {
    const replica = await openReplica({ store: r2Store(env.BUCKET, "app"), wasm });
    return Response.json(await replica.query("SELECT 1"));
  },
};
`;

const WITH_DRIZZLE = `import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm";
import { drizzleReplica, openReplica, r2Store } from "pagecast";
export default {
  async fetch(request, env) {
    const db = drizzleReplica(await openReplica({ store: r2Store(env.BUCKET, "app"), wasm }));
    return Response.json(await db.all("SELECT 1"));
  },
};
`;

describe.skipIf(!built)("Workers bundle contents (dist/index.web.js)", () => {
  test("a reader-only Worker bundles no drizzle-orm, router or AWS SDK", async () => {
    const inputs = await bundleInputs(READER_ONLY);
    expect(inputs.some((f) => f.includes("dist/vfs/replica.js"))).toBe(true);
    expect(inputs.filter((f) => f.startsWith("node_modules/drizzle-orm/"))).toEqual([]);
    expect(inputs.filter((f) => /node_modules\/@(aws-sdk|smithy)\//.test(f))).toEqual([]);
    expect(inputs.filter((f) => /dist\/router\/(router|router-cache)\.js$/.test(f))).toEqual([]);
  }, 60_000);

  test("a Worker that builds a Drizzle database bundles drizzle-orm", async () => {
    const inputs = await bundleInputs(WITH_DRIZZLE);
    expect(inputs).toContain("node_modules/drizzle-orm/sqlite-proxy/driver.js");
    expect(inputs.some((f) => f.includes("dist/router/drizzle-static.js"))).toBe(true);
  }, 60_000);
});
