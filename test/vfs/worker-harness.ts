/**
 * Runs a Worker from test/vfs/worker/ in workerd (miniflare): the entry is
 * bundled as Workers bundlers do it (browser platform, workerd conditions),
 * and wa-sqlite's async build is given to workerd as a CompiledWasm module,
 * imported by the entry as `./wa-sqlite-async.wasm`.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

/** What a test's Worker gets besides its code. */
export interface WorkerSetup {
  r2Buckets?: string[];
  bindings?: Record<string, string>;
}

/** A Miniflare running `worker/<name>` with `setup` (R2 buckets, string bindings). */
export async function workerMiniflare(name: string, setup: WorkerSetup = {}): Promise<Miniflare> {
  const entry = fileURLToPath(new URL(`./worker/${name}`, import.meta.url));
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    external: ["./wa-sqlite-async.wasm"],
    logLevel: "silent",
  });
  const require = createRequire(import.meta.url);
  return new Miniflare({
    compatibilityDate: "2025-09-01",
    ...setup,
    modules: [
      { type: "ESModule", path: "index.mjs", contents: bundle.outputFiles[0]!.text },
      {
        type: "CompiledWasm",
        path: "wa-sqlite-async.wasm",
        contents: readFileSync(require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm")),
      },
    ],
  });
}
