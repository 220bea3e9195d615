/**
 * The databases a config file names, one by one: its `path` entries, and
 * what its `dir` entries find (each with the entry's replica under the
 * database's relative path). The same lookup drives `replicate`, and
 * `restore`, `status`, `verify` and `ltx list` by database path.
 */
import { basename, dirname, relative, sep } from "node:path";
import type { ConfigFile, DatabaseEntry, DatabaseSettings } from "./config-file.js";
import { findDatabases } from "./database-discovery.js";
import { globMatcher } from "./glob.js";
import { childTarget, expandPath, type ReplicaTarget } from "./replica-target.js";

/** One database of a config file. */
export interface ConfiguredDatabase {
  /** Absolute path of the database file. */
  path: string;
  replica: ReplicaTarget;
  settings: DatabaseSettings;
  /** The `dbs:` entry it comes from. */
  entry: DatabaseEntry;
}

/** The database of a `dir` entry at `path` (relative path appended to the replica). */
export function dirDatabase(
  entry: Extract<DatabaseEntry, { kind: "dir" }>,
  path: string,
): ConfiguredDatabase {
  return {
    path,
    replica: childTarget(entry.replica, relative(entry.dir, path)),
    settings: entry.settings,
    entry,
  };
}

/** Whether `path` (absolute) is a database a `dir` entry would pick up, by name. */
function underEntry(entry: Extract<DatabaseEntry, { kind: "dir" }>, path: string): boolean {
  const rel = relative(entry.dir, path);
  if (rel === "" || rel.startsWith("..") || rel.startsWith(sep)) return false;
  if (!entry.recursive && dirname(path) !== entry.dir) return false;
  return globMatcher(entry.pattern)(basename(path));
}

/**
 * The configured database at `dbPath` (relative paths resolve against the
 * working directory): a `path` entry, else a `dir` entry whose pattern
 * matches it. The file need not exist (restore creates it).
 */
export function configuredDatabase(
  config: ConfigFile,
  dbPath: string,
): ConfiguredDatabase | undefined {
  const path = expandPath(dbPath);
  for (const entry of config.databases) {
    if (entry.kind === "path" && entry.path === path) {
      return { path, replica: entry.replica, settings: entry.settings, entry };
    }
  }
  for (const entry of config.databases) {
    if (entry.kind === "dir" && underEntry(entry, path)) return dirDatabase(entry, path);
  }
  return undefined;
}

/** Every database the file names now: `path` entries, then what each `dir` entry finds. */
export async function configuredDatabases(config: ConfigFile): Promise<ConfiguredDatabase[]> {
  const out: ConfiguredDatabase[] = [];
  for (const entry of config.databases) {
    if (entry.kind === "path") {
      out.push({ path: entry.path, replica: entry.replica, settings: entry.settings, entry });
    } else {
      for (const path of await findDatabases(entry.dir, entry.pattern, entry.recursive)) {
        out.push(dirDatabase(entry, path));
      }
    }
  }
  return out;
}
