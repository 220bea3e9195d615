/**
 * The plain (synchronous) wa-sqlite build's glue, kept apart from
 * sqlite-runtime.ts so that only the entries running the hybrid connection
 * (`pagecast`, `pagecast/node`) reach it: bundlers inline dynamic imports,
 * so a static path to this loader puts ~21 KB gzip into a Worker even when
 * it never runs the plain build. `pagecast/reader` leaves it out.
 */
import type { SqliteGlueLoader } from "./sqlite-runtime.js";

/** The plain build's glue (`@journeyapps/wa-sqlite/dist/wa-sqlite.mjs`). */
export const loadSyncGlue: SqliteGlueLoader = async () =>
  (await import("@journeyapps/wa-sqlite/dist/wa-sqlite.mjs")).default;
