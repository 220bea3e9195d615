/**
 * drizzle-orm, loaded when a router or a Drizzle database is first built
 * rather than when pagecast is imported: a reader-only program never loads
 * it (it costs ~0.1 s of a cold start in Node). The builders are synchronous,
 * so the load is too: in Node through `require()` of drizzle's ES modules
 * (the same instances as the app's `import`s), elsewhere the entry point
 * registers drizzle statically (bundlers resolve it at build time).
 */
import type { Cache } from "drizzle-orm/cache/core";
import type { DefaultLogger } from "drizzle-orm/logger";
import type { drizzle } from "drizzle-orm/sqlite-proxy";
import { RouterError } from "./router-error.js";

/** The parts of drizzle-orm the router and replica databases use. */
export interface DrizzleRuntime {
  drizzle: typeof drizzle;
  DefaultLogger: typeof DefaultLogger;
  Cache: typeof Cache;
}

type RequireLike = ((id: string) => unknown) & { resolve?: unknown };
type CreateRequire = (from: string) => RequireLike;

let runtime: DrizzleRuntime | undefined;
let loader: (() => DrizzleRuntime) | undefined;

/** Uses these drizzle-orm modules (the non-Node entry point registers them statically). */
export function setDrizzleRuntime(value: DrizzleRuntime): void {
  runtime = value;
}

/** Loads drizzle-orm with this `createRequire` on first use (Node entry point). */
export function setDrizzleRequire(createRequire: CreateRequire): void {
  loader = () => requireDrizzle(createRequire);
}

/** drizzle-orm's modules, loaded on the first call. */
export function drizzleRuntime(): DrizzleRuntime {
  if (runtime) return runtime;
  const load = loader ?? builtinLoader();
  if (!load) {
    throw new RouterError(
      "ROUTER_NO_DRIZZLE",
      "drizzle-orm could not be loaded: install it (a peer dependency of the router) and import pagecast through its package entry",
    );
  }
  try {
    runtime = load();
  } catch (error) {
    throw new RouterError(
      "ROUTER_NO_DRIZZLE",
      `drizzle-orm could not be loaded (install it: it is a peer dependency of the router): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return runtime;
}

/** Node's `createRequire` found at run time (no `node:` import: this file also runs in Workers). */
function builtinLoader(): (() => DrizzleRuntime) | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.("node:module") as
    | { createRequire?: CreateRequire }
    | undefined;
  const createRequire = mod?.createRequire;
  return createRequire ? () => requireDrizzle(createRequire) : undefined;
}

function requireDrizzle(createRequire: CreateRequire): DrizzleRuntime {
  const require = createRequire(import.meta.url);
  const load = (specifier: string): Record<string, unknown> => {
    // The ES module build (Node >= 20.19 requires ES modules), so that the
    // router shares drizzle's instances with the app's own imports; older
    // Nodes fall back to drizzle's CommonJS build (its checks do not rely
    // on instance identity).
    const resolve = (import.meta as { resolve?: (s: string) => string }).resolve;
    if (resolve) {
      try {
        return require(filePath(resolve(specifier))) as Record<string, unknown>;
      } catch (error) {
        if ((error as { code?: unknown }).code !== "ERR_REQUIRE_ESM") throw error;
      }
    }
    return require(specifier) as Record<string, unknown>;
  };
  const proxy = load("drizzle-orm/sqlite-proxy");
  const logger = load("drizzle-orm/logger");
  const cache = load("drizzle-orm/cache/core");
  return {
    drizzle: proxy.drizzle as DrizzleRuntime["drizzle"],
    DefaultLogger: logger.DefaultLogger as DrizzleRuntime["DefaultLogger"],
    Cache: cache.Cache as DrizzleRuntime["Cache"],
  };
}

/** A file: URL's path (Windows drive paths lose their leading slash). */
function filePath(url: string): string {
  const path = decodeURIComponent(new URL(url).pathname);
  return /^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path;
}
