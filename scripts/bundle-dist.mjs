/**
 * Build step after `tsc`: rewrites the Node entry points of dist/ (the
 * `pagecast` and `pagecast/reader` "node" exports, `pagecast/node` and the
 * CLI) as esbuild bundles with code-split chunks in dist/chunks/. Node pays resolution, reading and
 * compiling for every ES module it loads; pagecast's ~110 small modules made
 * `import("pagecast")` cost ~0.1 s more than one file does. Dependencies stay
 * external (resolved from node_modules as before), lazily loaded parts (the
 * AWS SDK store, FetchS3Store...) stay lazily loaded chunks, and modules
 * shared by the entries live in shared chunks, so using `pagecast` and
 * `pagecast/node` together still gives one instance of each class.
 *
 * The runtime-agnostic files (dist/index.js, dist/index.web.js,
 * dist/reader.js and the modules under them) stay tsc's output: Workers and
 * browser bundlers bundle them themselves. The `.d.ts` files are tsc's, unchanged.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const DIST = resolve(fileURLToPath(new URL("../dist", import.meta.url)));
const ENTRIES = ["index.node.js", "node.js", "reader.node.js", "cli/main.js"];
const CHUNKS = "chunks";
// Replaced in each output by that output's path to dist/.
const ROOT_MARK = "__PAGECAST_DIST_ROOT__/";
const posix = (p) => p.split(sep).join("/");

/**
 * `new URL("./x.js", import.meta.url)` names a file beside its module; in a
 * bundle the module's code moves (into an entry or a chunk), so the URL is
 * made relative to dist/ here and to the output file after the build.
 */
const relativeUrls = {
  name: "dist-relative-urls",
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!text.includes("import.meta.url")) return undefined;
      const contents = text.replace(
        /new URL\("(\.{1,2}\/[^"]+)", import\.meta\.url\)/g,
        (_all, spec) => {
          const target = posix(relative(DIST, resolve(dirname(args.path), spec)));
          return `new URL(${JSON.stringify(ROOT_MARK + target)}, import.meta.url)`;
        },
      );
      return { contents, loader: "js", resolveDir: dirname(args.path) };
    });
  },
};

rmSync(join(DIST, CHUNKS), { recursive: true, force: true });
const result = await build({
  entryPoints: ENTRIES.map((e) => join(DIST, e)),
  outdir: DIST,
  outbase: DIST,
  entryNames: "[dir]/[name]",
  chunkNames: `${CHUNKS}/[name]-[hash]`,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  // Error classes and FacadeVFS rely on names; keep them as written.
  keepNames: true,
  sourcemap: true,
  write: false,
  logLevel: "warning",
  plugins: [relativeUrls],
});
for (const file of result.outputFiles) {
  let text = file.text;
  if (text.includes(ROOT_MARK)) {
    const up = posix(relative(dirname(file.path), DIST)) || ".";
    text = text.replaceAll(ROOT_MARK, `${up}/`);
  }
  mkdirSync(dirname(file.path), { recursive: true });
  writeFileSync(file.path, text);
}
const chunks = result.outputFiles.filter((f) => f.path.includes(`${sep}${CHUNKS}${sep}`));
console.log(
  `bundled ${ENTRIES.join(", ")} (${chunks.filter((f) => f.path.endsWith(".js")).length} chunks)`,
);
