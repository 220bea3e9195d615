/**
 * `pagecast` as runtimes other than Node resolve it (Workers, browsers,
 * bundlers): the runtime-agnostic API, with the functions that build Drizzle
 * databases bringing drizzle-orm in statically (Node loads it on first use
 * instead; see router/drizzle-runtime.ts). These explicit exports take
 * precedence over the same names from `export *`.
 */
export * from "./index.js";
export { createRouter, drizzleReplica, timeTravel } from "./router/drizzle-static.js";
