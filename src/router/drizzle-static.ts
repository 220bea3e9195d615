/**
 * The drizzle-orm users of the runtime-agnostic API (`createRouter`,
 * `drizzleReplica`, `timeTravel`) as the entry point for runtimes without
 * Node's `require` (Workers, browsers) exports them: drizzle-orm is imported
 * statically (bundlers include it at build time) and registered when one of
 * them is first called, not at import. A bundle that never calls them (a
 * reader-only Worker) drops drizzle-orm (~64 KB minified) by tree shaking,
 * which a top-level registration would prevent.
 */
import { Cache } from "drizzle-orm/cache/core";
import { DefaultLogger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { timeTravel as timeTravelWithRuntime } from "../time-travel/time-travel.js";
import { setDrizzleRuntime } from "./drizzle-runtime.js";
import { drizzleReplica as drizzleReplicaWithRuntime } from "./read-only-database.js";
import { createRouter as createRouterWithRuntime } from "./router.js";

/** `fn`, registering the bundled drizzle-orm before each call (cheap: one assignment). */
function withBundledDrizzle<F extends (...args: never[]) => unknown>(fn: F): F {
  return ((...args: Parameters<F>) => {
    setDrizzleRuntime({ drizzle, DefaultLogger, Cache });
    return fn(...args);
  }) as F;
}

export const createRouter = /* @__PURE__ */ withBundledDrizzle(createRouterWithRuntime);
export const drizzleReplica = /* @__PURE__ */ withBundledDrizzle(drizzleReplicaWithRuntime);
export const timeTravel = /* @__PURE__ */ withBundledDrizzle(timeTravelWithRuntime);
