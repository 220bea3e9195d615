/**
 * Node-only: reads wa-sqlite's builds from the installed package so
 * `openReplica` works in Node without passing `wasm` (Workers import the
 * `.wasm` files as modules instead; src/vfs itself never touches the file
 * system).
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import {
  pairSyncSqliteWasm,
  setDefaultSqliteWasm,
  setDefaultSyncSqliteWasm,
} from "../vfs/sqlite-runtime.js";

const loaded = new Map<string, Promise<Uint8Array>>();

function readPackageFile(file: string): Promise<Uint8Array> {
  let bytes = loaded.get(file);
  if (!bytes) {
    const require = createRequire(import.meta.url);
    const path = require.resolve(`@journeyapps/wa-sqlite/dist/${file}`);
    bytes = readFile(path).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    loaded.set(file, bytes);
    // A failed read may be tried again.
    bytes.catch(() => loaded.delete(file));
  }
  return bytes;
}

/** The bytes of `@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm` (read once). */
export function readSqliteWasm(): Promise<Uint8Array> {
  return readPackageFile("wa-sqlite-async.wasm");
}

/** The bytes of `@journeyapps/wa-sqlite/dist/wa-sqlite.wasm`, the plain build (read once). */
export function readSyncSqliteWasm(): Promise<Uint8Array> {
  return readPackageFile("wa-sqlite.wasm");
}

// A replica given `wasm: readSqliteWasm` also uses the plain build of the same package.
pairSyncSqliteWasm(readSqliteWasm, readSyncSqliteWasm);

/** Makes {@link readSqliteWasm} (and the plain build) the default wasm of every `openReplica` in this process. */
export function registerNodeSqliteWasm(): void {
  setDefaultSqliteWasm(readSqliteWasm);
  setDefaultSyncSqliteWasm(readSyncSqliteWasm);
}
