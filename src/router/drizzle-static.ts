/**
 * Registers drizzle-orm statically for runtimes without Node's `require`
 * (Workers, browsers): bundlers include it at build time.
 */
import { Cache } from "drizzle-orm/cache/core";
import { DefaultLogger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { setDrizzleRuntime } from "./drizzle-runtime.js";

setDrizzleRuntime({ drizzle, DefaultLogger, Cache });
