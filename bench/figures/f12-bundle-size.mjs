/**
 * Figure 12: size of a Worker bundle built from the package (dist, the
 * "default" export as Workers resolve it), esbuild, minified, gzip level 9,
 * the wasm excluded: the Worker example (R2 binding + Drizzle, on
 * `pagecast`), a reader-only Worker (R2 binding, raw SQL) on `pagecast`, and
 * the same reader-only Worker on `pagecast/reader`, the entry for
 * size-sensitive runtimes (no URL opener: FetchS3Store and its signer; no
 * plain-build glue). The goal is judged on that last row; the other two are
 * there for comparison. The web entry reaches S3 through FetchS3Store
 * (fetch + its own SigV4), so the "without the AWS SDK" build (SDK marked
 * external) must come out the same size: it checks that no SDK code is left.
 * platform=browser (as wrangler bundles) and platform=neutral. The note
 * lists the largest parts of the bundle (minified bytes by package or
 * pagecast directory), i.e. what the rest of the size is.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { errorInfo, fmtBytes, row, unavailableRow } from "../lib/figure-kit.mjs";

export const figure = {
  id: "12",
  title: "Workers bundle size (minified + gzip, without the wasm)",
  goal: "<= 80 KB gzip",
};

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

const readerOnly = (from) => `import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm";
import { openReplica, r2Store } from "${from}";
let replica;
export default {
  async fetch(request, env) {
    replica ??= openReplica({ store: r2Store(env.BUCKET, "app"), wasm });
    const rows = await (await replica).query("SELECT * FROM t WHERE id = ?", [1]);
    return Response.json(rows);
  },
};
`;

async function bundle(entry, platform, withoutSdk) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    minify: true,
    format: "esm",
    platform,
    ...(platform === "neutral" ? { mainFields: ["module", "main"] } : {}),
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    logLevel: "silent",
    metafile: true,
    external: withoutSdk ? ["@aws-sdk/*", "@smithy/*"] : [],
    plugins: [
      {
        name: "package-and-wasm",
        setup(b) {
          b.onResolve({ filter: /^pagecast$/ }, () => ({
            path: join(ROOT, "dist", "index.web.js"),
          }));
          b.onResolve({ filter: /^pagecast\/reader$/ }, () => ({
            path: join(ROOT, "dist", "reader.js"),
          }));
          b.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: args.path, external: true }));
        },
      },
    ],
  });
  const code = result.outputFiles[0].contents;
  // Minified bytes per npm package or pagecast directory (dist/vfs, dist/storage...).
  const parts = {};
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [file, info] of Object.entries(output.inputs)) {
      const npm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
      const dist = /(?:^|\/)dist\/([^/]+)\//.exec(file);
      const part = npm ? npm[1] : dist ? `pagecast ${dist[1]}` : "other";
      parts[part] = (parts[part] ?? 0) + info.bytesInOutput;
    }
  }
  const largest = Object.entries(parts)
    .sort((a, b) => b[1] - a[1])
    .map(([part, bytes]) => ({ part, bytes }));
  return { minified: code.length, gzip: gzipSync(code, { level: 9 }).length, largest };
}

export async function run(ctx) {
  const rows = [];
  const details = { bundles: [] };
  const dir = join(ctx.scratch, "bundle-size");
  mkdirSync(dir, { recursive: true });
  const readerEntry = join(dir, "reader-only-worker.mjs");
  writeFileSync(readerEntry, readerOnly("pagecast"));
  const liteEntry = join(dir, "reader-entry-worker.mjs");
  writeFileSync(liteEntry, readerOnly("pagecast/reader"));
  const entries = [
    {
      label: "Worker example (R2 binding, Drizzle)",
      path: join(ROOT, "examples/cloudflare-worker/worker.ts"),
      entry: "pagecast",
      use: "imports pagecast (Drizzle, URL or R2, both wa-sqlite builds)",
    },
    {
      label: "reader-only Worker (R2 binding, raw SQL)",
      path: readerEntry,
      entry: "pagecast",
      use: "imports pagecast: carries the URL opener and the plain build's glue it never runs",
    },
    {
      label: "reader-only Worker on pagecast/reader (R2 binding, raw SQL)",
      path: liteEntry,
      entry: "pagecast/reader",
      use: "imports pagecast/reader (store only, async build only): the goal's row",
    },
  ];
  /** gzip bytes of the reader-only Worker on `pagecast`, to compare the reader entry with. */
  let fullReaderGzip;
  for (const e of entries) {
    try {
      const out = {
        browser: {
          full: await bundle(e.path, "browser", false),
          withoutSdk: await bundle(e.path, "browser", true),
        },
        neutral: { withoutSdk: await bundle(e.path, "neutral", true) },
      };
      details.bundles.push({ label: e.label, entry: e.entry, ...out });
      const b = out.browser;
      const judged = e.entry === "pagecast/reader";
      if (e.path === readerEntry) fullReaderGzip = b.full.gzip;
      rows.push(
        row({
          fig: "12",
          label: e.label,
          pagecast: `${fmtBytes(b.full.gzip)} gzip (${fmtBytes(b.full.minified)} minified), platform=browser`,
          peer: `without the AWS SDK: ${fmtBytes(b.withoutSdk.gzip)} gzip (${fmtBytes(b.withoutSdk.minified)} minified); platform=neutral without the SDK: ${fmtBytes(out.neutral.withoutSdk.gzip)} gzip`,
          ratio:
            judged && fullReaderGzip
              ? `${(b.full.gzip / fullReaderGzip).toFixed(2)}x the same Worker on pagecast`
              : `SDK share ${(((b.full.gzip - b.withoutSdk.gzip) / b.full.gzip) * 100).toFixed(0)}%`,
          goal: judged ? figure.goal : `${figure.goal} (judged on pagecast/reader)`,
          verdict: judged ? (b.full.gzip <= 80 * 1024 ? "met" : "missed") : "info",
          note: `${e.use}; largest parts (minified): ${b.full.largest
            .slice(0, 6)
            .map((p) => `${p.part} ${fmtBytes(p.bytes)}`)
            .join(", ")}`,
        }),
      );
    } catch (err) {
      details.bundles.push({ label: e.label, entry: e.entry, error: errorInfo(err) });
      rows.push(unavailableRow("12", e.label, figure.goal, err));
    }
  }
  return { rows, details };
}
