/// <reference types="@journeyapps/wa-sqlite" />
/**
 * Loading wa-sqlite's async (Asyncify) build without touching the file
 * system, so the same code runs in Node and in Cloudflare Workers:
 *
 * - Workers: `import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm"`
 *   gives a `WebAssembly.Module`; pass it as `wasm` (instantiated through
 *   emscripten's `instantiateWasm` hook; Workers forbid compiling bytes).
 * - Node: pass the file's bytes, or let `pagecast/node` register a loader
 *   ({@link setDefaultSqliteWasm}) that reads them.
 *
 * Each connection gets its own module instance (a module must never be
 * entered twice at once); the compiled WebAssembly module is shared.
 */
import * as SQLite from "@journeyapps/wa-sqlite";
import SQLiteAsyncFactory from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.mjs";
import { ReplicaError } from "./replica-error.js";

/** A compiled wa-sqlite-async module, or its bytes. */
export type SqliteWasm = WebAssembly.Module | ArrayBuffer | Uint8Array;

/** A source of the wasm: the value, or a function producing it (called at most once per source). */
export type SqliteWasmSource = SqliteWasm | (() => SqliteWasm | Promise<SqliteWasm>);

/** One instantiated wa-sqlite module and its API. */
export interface SqliteInstance {
  /** The emscripten module (VFSs are constructed over it). */
  module: object;
  sqlite3: SQLiteAPI;
}

let defaultSource: SqliteWasmSource | undefined;
const compiled = new WeakMap<object, Promise<WebAssembly.Module>>();

/**
 * Sets the wasm used when `openReplica` gets none (Node: `pagecast/node`
 * registers a loader reading the package's `.wasm` file).
 */
export function setDefaultSqliteWasm(source: SqliteWasmSource | undefined): void {
  defaultSource = source;
}

/** Resolves a source to a compiled module, compiling bytes once per source object. */
export function compileSqliteWasm(
  source: SqliteWasmSource | undefined,
): Promise<WebAssembly.Module> {
  const src = source ?? defaultSource;
  if (src === undefined) {
    return Promise.reject(
      new ReplicaError(
        "REPLICA_WASM_MISSING",
        "no SQLite WebAssembly binary: pass `wasm` (in Workers, the imported " +
          "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm module) or import pagecast/node in Node",
      ),
    );
  }
  if (src instanceof WebAssembly.Module) return Promise.resolve(src);
  const key = src as object;
  let pending = compiled.get(key);
  if (!pending) {
    pending = (async () => {
      const value =
        typeof src === "function" ? await (src as () => SqliteWasm | Promise<SqliteWasm>)() : src;
      if (value instanceof WebAssembly.Module) return value;
      const bytes = value instanceof Uint8Array ? value : new Uint8Array(value);
      return WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    })();
    compiled.set(key, pending);
    // A failed compile may be retried with the same source.
    pending.catch(() => compiled.delete(key));
  }
  return pending;
}

/** Instantiates a fresh wa-sqlite module from a compiled WebAssembly module. */
export async function instantiateSqlite(wasm: WebAssembly.Module): Promise<SqliteInstance> {
  // emscripten's instantiateWasm hook has no failure path: surface failures ourselves.
  let fail: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const module = await Promise.race([
    SQLiteAsyncFactory({
      // Never let emscripten try to fetch or read the .wasm itself.
      locateFile: (file: string) => file,
      instantiateWasm: (
        imports: WebAssembly.Imports,
        done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
      ) => {
        WebAssembly.instantiate(wasm, imports).then((instance) => done(instance, wasm), fail);
        return {};
      },
    }),
    failed,
  ]);
  return { module, sqlite3: SQLite.Factory(module) };
}
