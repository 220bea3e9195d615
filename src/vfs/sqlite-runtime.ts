/// <reference types="@journeyapps/wa-sqlite" />
/**
 * Loading wa-sqlite's builds without touching the file system, so the same
 * code runs in Node and in Cloudflare Workers:
 *
 * - the async (Asyncify) build, required: SQLite may suspend in a VFS read
 *   while a page is fetched;
 * - the plain (synchronous) build, optional: roughly half again as fast on
 *   warm queries (no Asyncify instrumentation), used for statements whose
 *   pages turn out to be cached (see `HybridConnection`).
 *
 * Workers: `import wasm from "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm"`
 * (and `.../wa-sqlite.wasm` for `syncWasm`) give `WebAssembly.Module`s;
 * they are instantiated through emscripten's `instantiateWasm` hook (Workers
 * forbid compiling bytes). Node: pass the files' bytes, or let
 * `pagecast/node` register loaders ({@link setDefaultSqliteWasm},
 * {@link setDefaultSyncSqliteWasm}) that read them.
 *
 * Each connection gets its own module instance (a module must never be
 * entered twice at once); the compiled WebAssembly module is shared.
 *
 * Only the async build's glue is imported here: the plain build's comes from
 * sync-build.ts, which the entries that use it (`pagecast`, `pagecast/node`)
 * hand to the replica (`pagecast/reader` does not, so Workers bundles of it
 * carry one build's glue).
 */
import * as SQLite from "@journeyapps/wa-sqlite";
import { ReplicaError } from "./replica-error.js";

/** Which wa-sqlite build a WebAssembly module is: each needs its own JavaScript glue. */
export type SqliteBuild = "async" | "sync";

/** A compiled wa-sqlite module (`wa-sqlite-async.wasm` or `wa-sqlite.wasm`), or its bytes. */
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
let defaultSyncSource: SqliteWasmSource | undefined;
const compiled = new WeakMap<object, Promise<WebAssembly.Module>>();
/** The plain build that goes with an async build's source (see {@link pairSyncSqliteWasm}). */
const syncCompanions = new WeakMap<object, SqliteWasmSource>();

/**
 * Sets the wasm used when `openReplica` gets none (Node: `pagecast/node`
 * registers a loader reading the package's `.wasm` file).
 */
export function setDefaultSqliteWasm(source: SqliteWasmSource | undefined): void {
  defaultSource = source;
}

/**
 * Sets the plain (synchronous) build used when `openReplica` gets no
 * `syncWasm` (Node: `pagecast/node` registers a loader). `undefined`: async
 * build only.
 */
export function setDefaultSyncSqliteWasm(source: SqliteWasmSource | undefined): void {
  defaultSyncSource = source;
}

/**
 * Declares `sync` the plain build that goes with the async build `source`
 * (the same release): a replica given `source` as `wasm` and no `syncWasm`
 * uses `sync` too.
 */
export function pairSyncSqliteWasm(source: object, sync: SqliteWasmSource): void {
  syncCompanions.set(source, sync);
}

/**
 * The plain build to use beside the async build `wasm`: `syncWasm` when
 * given (`false`: none), else the one paired with `wasm`, else the default.
 */
export function resolveSyncSqliteWasm(
  wasm: SqliteWasmSource | undefined,
  syncWasm: SqliteWasmSource | false | undefined,
): SqliteWasmSource | undefined {
  if (syncWasm === false) return undefined;
  if (syncWasm !== undefined) return syncWasm;
  const source = wasm ?? defaultSource;
  const paired =
    typeof source === "object" || typeof source === "function"
      ? syncCompanions.get(source)
      : undefined;
  return paired ?? defaultSyncSource;
}

/**
 * The async build's source: `source`, else the registered default, resolved
 * now (its compile may come later, on first need, and must compile what was
 * registered at the open). Throws `REPLICA_WASM_MISSING` when there is none.
 */
export function requireSqliteWasm(source: SqliteWasmSource | undefined): SqliteWasmSource {
  const resolved = source ?? defaultSource;
  if (resolved === undefined) throw wasmMissing();
  return resolved;
}

/**
 * A compile of `source` on first call, shared by later calls, its failure
 * kept and reported as `REPLICA_WASM_INVALID` (a build compiled lazily fails
 * the statement that needs it, typed, and is not fetched and compiled again
 * for every later one).
 */
export function lazySqliteWasm(source: SqliteWasmSource): () => Promise<WebAssembly.Module> {
  let compiled: Promise<WebAssembly.Module> | undefined;
  return () => {
    compiled ??= compileSqliteWasm(source).catch((err: unknown) => {
      throw err instanceof ReplicaError
        ? err
        : new ReplicaError(
            "REPLICA_WASM_INVALID",
            `the SQLite WebAssembly binary could not be loaded or compiled: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
    });
    return compiled;
  };
}

function wasmMissing(): ReplicaError {
  return new ReplicaError(
    "REPLICA_WASM_MISSING",
    "no SQLite WebAssembly binary: pass `wasm` (in Workers, the imported " +
      "@journeyapps/wa-sqlite/dist/wa-sqlite-async.wasm module) or import pagecast/node in Node",
  );
}

/** Resolves a source to a compiled module, compiling bytes once per source object. */
export function compileSqliteWasm(
  source: SqliteWasmSource | undefined,
): Promise<WebAssembly.Module> {
  const src = source ?? defaultSource;
  if (src === undefined) return Promise.reject(wasmMissing());
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

/**
 * emscripten's module factory of one wa-sqlite build: the default export of
 * its `.mjs` glue (`wa-sqlite-async.mjs`, `wa-sqlite.mjs`).
 */
export type SqliteModuleFactory = (config?: object) => Promise<object>;

/**
 * Loads one build's glue. A function rather than a static import: the glue
 * (~110 KB of source per build) loads with the first connection, not with
 * pagecast, and a build nobody asks for is never bundled (see sync-build.ts).
 */
export type SqliteGlueLoader = () => Promise<SqliteModuleFactory>;

/** A wa-sqlite build ready to instantiate: which build, its wasm and its glue. */
export interface SqliteBuildModule {
  build: SqliteBuild;
  /**
   * The compiled wasm (memoized): a build may be compiled only when first
   * needed, e.g. the async build beside a plain one, which many readers
   * never use (~20 ms of compile and its code's memory saved).
   */
  compiled: () => Promise<WebAssembly.Module>;
  glue: SqliteGlueLoader;
}

/** The async (Asyncify) build's glue: every replica needs it. */
export const loadAsyncGlue: SqliteGlueLoader = async () =>
  (await import("@journeyapps/wa-sqlite/dist/wa-sqlite-async.mjs")).default;

/** Instantiates a fresh wa-sqlite module of `source.build` from its compiled WebAssembly module. */
export async function instantiateSqlite(source: SqliteBuildModule): Promise<SqliteInstance> {
  const [factory, wasm] = await Promise.all([source.glue(), source.compiled()]);
  // emscripten's instantiateWasm hook has no failure path: surface failures ourselves.
  let fail: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const module = await Promise.race([
    factory({
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
