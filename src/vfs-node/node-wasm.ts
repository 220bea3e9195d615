/**
 * Node-only: reads wa-sqlite's async build from the installed package so
 * `openReplica` works in Node without passing `wasm` (Workers import the
 * `.wasm` as a module instead; src/vfs itself never touches the file system).
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { setDefaultSqliteWasm } from "../vfs/sqlite-runtime.js";

let bytes: Promise<Uint8Array> | undefined;

/** The bytes of `@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm` (read once). */
export function readSqliteWasm(): Promise<Uint8Array> {
  if (!bytes) {
    const require = createRequire(import.meta.url);
    const path = require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm");
    bytes = readFile(path).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    bytes.catch(() => {
      bytes = undefined;
    });
  }
  return bytes;
}

/** Makes {@link readSqliteWasm} the default wasm of every `openReplica` in this process. */
export function registerNodeSqliteWasm(): void {
  setDefaultSqliteWasm(readSqliteWasm);
}
