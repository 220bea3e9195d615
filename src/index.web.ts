/**
 * `pagecast` as runtimes other than Node resolve it (Workers, browsers,
 * bundlers): the runtime-agnostic API with drizzle-orm registered statically
 * (Node loads it on first use instead; see router/drizzle-runtime.ts).
 */
import "./router/drizzle-static.js";

export * from "./index.js";
