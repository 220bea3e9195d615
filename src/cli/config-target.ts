/**
 * What a command's replica argument names: a store URL, or with `-config`
 * a database path of the file (Litestream's way: `restore -config FILE
 * /data/app.db`), resolved to its replica's URL and credentials.
 */

import type { ConfigFile } from "../config/config-file.js";
import { readConfigFile } from "../config/config-file.js";
import { type ConfiguredDatabase, configuredDatabase } from "../config/configured-databases.js";
import { formatLocation } from "../config/replica-target.js";
import type { CliIo } from "./cli-io.js";
import { UsageError } from "./cli-io.js";

/** A replica to open: its URL and, from a config file, credentials. */
export interface CliTarget {
  url: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** The configured database, when named by path. */
  database?: ConfiguredDatabase;
}

/** Reads `-config` (when given), printing the file's warnings on stderr. */
export async function loadConfigFlag(
  flags: Record<string, string | boolean | undefined>,
  io: CliIo,
): Promise<ConfigFile | undefined> {
  const path = flags.config;
  if (typeof path !== "string") {
    if (flags["no-expand-env"] === true) throw new UsageError("-no-expand-env goes with -config");
    return undefined;
  }
  const config = await readConfigFile(path, {
    expandEnv: flags["no-expand-env"] !== true,
    env: io.env,
  });
  for (const w of config.warnings) io.stderr(`pagecast: warning: ${w}\n`);
  return config;
}

/** The target of a configured database. */
export function databaseTarget(database: ConfiguredDatabase): CliTarget {
  return {
    url: formatLocation(database.replica.location),
    ...(database.replica.credentials ? { credentials: database.replica.credentials } : {}),
    database,
  };
}

/**
 * `arg` as a replica: with a config file, a database path of it (an error
 * naming the file when it is not there); without one, a store URL.
 */
export function resolveTarget(arg: string, config: ConfigFile | undefined): CliTarget {
  if (config) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) {
      throw new UsageError(
        `with -config, name a database by its path, not a URL (${JSON.stringify(arg)})`,
      );
    }
    const database = configuredDatabase(config, arg);
    if (!database) {
      throw new UsageError(
        `database ${arg} is not in ${config.file} (no path or dir entry names it)`,
      );
    }
    return databaseTarget(database);
  }
  if (!/^[a-z][a-z0-9+.-]*:/i.test(arg)) {
    throw new UsageError(
      `${JSON.stringify(arg)} is not a replica URL (s3://bucket/prefix, file:///dir); to name a database by its path, give -config FILE`,
    );
  }
  return { url: arg };
}
