/**
 * Finds pagecast's APIs in the built `dist/`: the public entry points first
 * (`pagecast`, `pagecast/node`), then the module that defines each one (while
 * the entry points do not export it yet). Whatever is missing is reported,
 * so that a figure depending on it says so instead of failing obscurely.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { CREDENTIALS } from "./servers.mjs";

const DIST = new URL("../../dist/", import.meta.url);

async function load(rel) {
  try {
    return { module: await import(new URL(rel, DIST).href) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Looks `name` up in the candidate modules, in order. */
async function find(name, candidates, where) {
  const tried = [];
  for (const rel of candidates) {
    const { module, error } = await load(rel);
    if (module && module[name] !== undefined) {
      where[name] = `dist/${rel}`;
      return module[name];
    }
    tried.push(
      `dist/${rel}: ${error ? `cannot load (${error.split("\n")[0]})` : "no such export"}`,
    );
  }
  where[name] = `missing (${tried.join("; ")})`;
  return undefined;
}

/**
 * Loads everything the benchmark uses. `api.where` says where each was
 * found; `api.missing` lists what was not.
 */
export async function loadPagecast() {
  const where = {};
  const api = { where };
  // What Node resolves `pagecast` to (its modules are shared with node.js, bundled).
  const root = "index.node.js";
  const node = "node.js";
  api.openReplica = await find("openReplica", [root, "vfs/index.js", "vfs/replica.js"], where);
  api.Replicator = await find(
    "Replicator",
    [node, "replicator/index.js", "replicator/replicator.js"],
    where,
  );
  api.restore = await find(
    "restore",
    [node, "replicator/index.js", "replicator/restore.js"],
    where,
  );
  api.S3Store = await find("S3Store", [root, "storage/s3-store.js"], where);
  api.LtxEncoder = await find("LtxEncoder", [root, "format/index.js"], where);
  api.HEADER_FLAG_NO_CHECKSUM = await find(
    "HEADER_FLAG_NO_CHECKSUM",
    [root, "format/index.js"],
    where,
  );
  api.LTX_PAGE_HEADER_SIZE = await find("LTX_PAGE_HEADER_SIZE", [root, "format/index.js"], where);
  api.LTX_TRAILER_SIZE = await find("LTX_TRAILER_SIZE", [root, "format/index.js"], where);
  api.ltxKey = await find("ltxKey", [root, "format/index.js"], where);
  api.serializeHeadObject = await find("serializeHeadObject", [root, "layout/index.js"], where);
  api.planRestore = await find("planRestore", [root, "layout/index.js"], where);
  api.listAllLevels = await find("listAllLevels", [root, "layout/index.js"], where);
  api.skeletonKey = await find("skeletonKey", [root, "layout/index.js"], where);
  api.skeletonHeaderTXID = await find("skeletonHeaderTXID", [root, "layout/index.js"], where);
  api.missing = Object.entries(where)
    .filter(([, w]) => w.startsWith("missing"))
    .map(([n]) => n);
  return api;
}

/** The wa-sqlite async build pagecast's reader runs on, compiled once per process. */
export async function compileReaderWasm() {
  const require = createRequire(import.meta.url);
  const path = require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm");
  return WebAssembly.compile(readFileSync(path));
}

/** Throws a clear error naming what a figure needs and cannot find. */
export function need(api, ...names) {
  const missing = names.filter((n) => api[n] === undefined);
  if (missing.length > 0) {
    const detail = missing.map((n) => `${n}: ${api.where[n]}`).join("; ");
    const err = new Error(`pagecast API missing: ${detail}`);
    err.kind = "missing";
    throw err;
  }
}

/** The AWS SDK's S3Store of `api` on the bench's emulator (`bucket`, `prefix` at `endpoint`). */
export function benchS3Store(api, { bucket, prefix, endpoint }) {
  return new api.S3Store({
    bucket,
    prefix,
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
  });
}

/** The s3:// URL of `prefix` in `bucket` at `endpoint`, as a user opens it. */
export function benchS3Url({ bucket, prefix, endpoint }) {
  return `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1`;
}
