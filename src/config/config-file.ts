/**
 * Litestream's YAML configuration file, the subset pagecast understands
 * (see the README's "Configuration file"): `dbs:` entries with `path`, or
 * `dir` + `pattern` (+ `recursive`, `watch`), each with one `replica:`;
 * top-level replica defaults (`sync-interval`, S3 settings, credentials),
 * `snapshot:`, `retention:`, `levels:`, `addr:` (metrics) and
 * `logging: level`. `$VAR` and `${VAR}` in values are expanded from the
 * environment unless `expandEnv` is false (`-no-expand-env`).
 *
 * Every key is accounted for: an unknown key fails with its line; a key
 * Litestream has and pagecast does not act on is a warning with its line
 * and the reason, and a key whose silent omission would weaken security
 * (server-side encryption, `exec`) fails.
 */
import { readFile } from "node:fs/promises";
import { LineCounter, parseDocument } from "yaml";
import { ConfigError } from "./config-error.js";
import { globMatcher } from "./glob.js";
import {
  expandPath,
  type ReplicaDefaults,
  type ReplicaTarget,
  readReplica,
  readReplicaDefaults,
} from "./replica-target.js";
import { type ConfigContext, Section } from "./yaml-section.js";

/** Replicator settings of one database, as far as the file gives them (the rest stays default). */
export interface DatabaseSettings {
  /** ms */
  syncInterval?: number;
  /** ms */
  snapshotInterval?: number;
  /** ms; 0 disables deletion */
  retention?: number;
  /** ms */
  busyTimeout?: number;
  /** WAL pages */
  checkpointPages?: number;
  /** WAL pages */
  truncatePages?: number;
  /** ms per level */
  compaction?: { l1?: number; l2?: number; l3?: number };
  autoRestore?: boolean;
  /** ms */
  leaseTtl?: number;
  /** pages per sync */
  verifyPages?: number;
}

/** One `dbs:` entry. */
export type DatabaseEntry = {
  /** Line of the entry in the file. */
  line: number;
  replica: ReplicaTarget;
  settings: DatabaseSettings;
} & (
  | { kind: "path"; path: string }
  | { kind: "dir"; dir: string; pattern: string; recursive: boolean; watch: boolean }
);

/** A configuration file, read and checked. */
export interface ConfigFile {
  /** The file as named by the user. */
  file: string;
  /** Metrics address (`addr:`), e.g. `:9090`. */
  addr: string | undefined;
  /** `logging: level` (debug, info, warn, error). */
  logLevel: "debug" | "info" | "warn" | "error" | undefined;
  databases: DatabaseEntry[];
  /** One line per ignored setting or unset variable: `file:line: text`. */
  warnings: string[];
}

/** Options of {@link readConfigFile} and {@link parseConfig}. */
export interface ConfigReadOptions {
  /** Expand `$VAR`/`${VAR}` in values (default true). */
  expandEnv?: boolean;
  /** Variables for the expansion (default `process.env`). */
  env?: Record<string, string | undefined>;
}

const LOG_LEVELS = new Set(["debug", "info", "warn", "error"]);

/** Reads and checks a config file. Throws `ConfigError` (`CONFIG_NOT_FOUND`, `CONFIG_INVALID`). */
export async function readConfigFile(
  path: string,
  options: ConfigReadOptions = {},
): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ConfigError(
      code === "ENOENT" ? "CONFIG_NOT_FOUND" : "CONFIG_INVALID",
      code === "ENOENT"
        ? `config file ${path} does not exist`
        : `cannot read config file ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseConfig(text, path, options);
}

/** Parses config text (`file` names it in messages). */
export function parseConfig(
  text: string,
  file: string,
  options: ConfigReadOptions = {},
): ConfigFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, merge: true });
  const problem = doc.errors[0];
  if (problem) {
    const line = problem.linePos?.[0]?.line ?? 0;
    const first = problem.message.split("\n", 1)[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError("CONFIG_INVALID", `${file}:${line}: not valid YAML: ${first}`);
  }
  const ctx: ConfigContext = {
    file,
    lines,
    doc,
    env: options.env ?? process.env,
    expandEnv: options.expandEnv ?? true,
    warnings: [],
  };
  try {
    return readTop(ctx, file);
  } catch (err) {
    if (err instanceof ConfigError) err.warnings = ctx.warnings;
    throw err;
  }
}

function readTop(ctx: ConfigContext, file: string): ConfigFile {
  const top = new Section(ctx, ctx.doc.contents as never, "", 1);

  const addr = top.string("addr");
  const defaults: ReplicaDefaults = readReplicaDefaults(top);
  const global = readSettings(top, undefined);
  const levels = readLevels(top);
  if (levels) global.compaction = levels;
  const retention = top.section("retention");
  if (retention) {
    if (retention.bool("enabled") === false) global.retention = 0;
    retention.finish();
  }
  const logLevel = readLogging(top);
  top.ignore({
    "l0-retention": "level-0 files are kept until compaction and retention remove them",
    "l0-retention-check-interval":
      "level-0 files are kept until compaction and retention remove them",
    validation:
      "pagecast compares the database with the replica at every sync instead (verify-pages)",
    "verify-compaction": "not supported by pagecast",
    "heartbeat-url": "not supported: scrape /healthz on the metrics address (addr) instead",
    "heartbeat-interval": "not supported: scrape /healthz on the metrics address (addr) instead",
    "mcp-addr": "pagecast has no MCP server",
    socket: "pagecast has no control socket",
    "shutdown-sync-timeout": "pagecast makes one final sync on shutdown",
    "shutdown-sync-interval": "pagecast makes one final sync on shutdown",
  });
  top.refuse({
    exec: "run the application beside `pagecast replicate` (a process supervisor, a container sidecar)",
  });
  const databases: DatabaseEntry[] = [];
  for (const entry of top.sections("dbs")) databases.push(readDatabase(entry, defaults, global));
  top.finish();
  if (!top.has("dbs") || databases.length === 0) {
    throw new ConfigError("CONFIG_INVALID", `${file}:1: the file lists no databases (dbs:)`);
  }
  const seen = new Map<string, number>();
  for (const d of databases) {
    const id = d.kind === "path" ? d.path : `${d.dir}/${d.pattern}`;
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw new ConfigError(
        "CONFIG_INVALID",
        `${file}:${d.line}: ${d.kind === "path" ? d.path : d.dir} is listed twice (also on line ${earlier})`,
      );
    }
    seen.set(id, d.line);
  }
  return {
    file,
    addr,
    logLevel,
    databases,
    warnings: ctx.warnings,
  };
}

function readLogging(top: Section): ConfigFile["logLevel"] {
  const logging = top.section("logging");
  if (!logging) return undefined;
  const level = logging.string("level")?.toLowerCase();
  if (level !== undefined && !LOG_LEVELS.has(level)) {
    logging.fail("level", `expected debug, info, warn or error, got ${JSON.stringify(level)}`);
  }
  const type = logging.string("type");
  if (type !== undefined && type !== "text") {
    logging.warn(logging.lineOf("type"), `logging.type: ignored: pagecast logs text lines`);
  }
  if (logging.bool("stderr") === false) {
    logging.warn(logging.lineOf("stderr"), "logging.stderr: ignored: pagecast logs to stderr");
  }
  logging.ignore({ source: "pagecast log lines carry no source location" });
  logging.finish();
  return level as ConfigFile["logLevel"];
}

/** `levels:` (Litestream's compaction levels): the intervals of pagecast's levels 1-3. */
function readLevels(top: Section): DatabaseSettings["compaction"] | undefined {
  const list = top.sections("levels");
  if (list.length === 0) return undefined;
  const intervals: number[] = [];
  for (const [i, level] of list.entries()) {
    const ms = level.duration("interval");
    if (ms === undefined) return level.fail("interval", "each level needs an interval");
    level.finish();
    if (i < 3) intervals.push(ms);
    else level.warn(level.line, `levels[${i}]: ignored: pagecast compacts into levels 1 to 3`);
  }
  const [l1, l2, l3] = intervals;
  return {
    ...(l1 !== undefined ? { l1 } : {}),
    ...(l2 !== undefined ? { l2 } : {}),
    ...(l3 !== undefined ? { l3 } : {}),
  };
}

/** Settings a database entry (or the top level, as defaults) gives. */
function readSettings(s: Section, parent: DatabaseSettings | undefined): DatabaseSettings {
  const out: DatabaseSettings = { ...parent };
  const snapshot = s.section("snapshot");
  if (snapshot) {
    const interval = snapshot.duration("interval");
    const retention = snapshot.duration("retention");
    if (interval !== undefined) out.snapshotInterval = interval;
    if (retention !== undefined) out.retention = retention;
    snapshot.finish();
  }
  // pagecast's own settings (not Litestream's), at the top level or per database.
  const leaseTtl = s.duration("lease-ttl");
  if (leaseTtl !== undefined) out.leaseTtl = leaseTtl;
  const verifyPages = s.int("verify-pages");
  if (verifyPages !== undefined) out.verifyPages = verifyPages;
  return out;
}

function readDatabase(
  s: Section,
  defaults: ReplicaDefaults,
  global: DatabaseSettings,
): DatabaseEntry {
  const path = s.string("path");
  const dir = s.string("dir");
  const pattern = s.string("pattern");
  const recursive = s.bool("recursive") ?? false;
  const watch = s.bool("watch") ?? false;
  const settings = readSettings(s, global);
  const busy = s.duration("busy-timeout", false);
  if (busy !== undefined) settings.busyTimeout = busy;
  const minPages = s.int("min-checkpoint-page-count", 1);
  if (minPages !== undefined) settings.checkpointPages = minPages;
  const truncatePages = s.int("truncate-page-n", 1);
  if (truncatePages !== undefined) settings.truncatePages = truncatePages;
  const restore = s.bool("restore-if-db-not-exists");
  if (restore !== undefined) settings.autoRestore = restore;
  s.ignore({
    "meta-path": "pagecast keeps no state beside the database (its position is in the replica)",
    "meta-dir": "pagecast keeps no state beside the database (its position is in the replica)",
    "monitor-interval": "pagecast reads the WAL at every sync-interval",
    "checkpoint-interval":
      "pagecast checkpoints by WAL size (min-checkpoint-page-count, truncate-page-n)",
    "max-sync-wal-bytes": "not supported by pagecast",
  });

  const single = s.section("replica");
  const list = s.sections("replicas");
  // Unknown keys first: a misspelt "replica" is reported as such, not as a missing one.
  s.finish();
  if (path !== undefined && dir !== undefined) s.fail("dir", "give either path or dir, not both");
  if (path === undefined && dir === undefined) {
    throw s.error(s.line, `${s.where()}a database needs a path (or a dir and a pattern)`);
  }
  if (dir === undefined) {
    for (const k of ["pattern", "recursive", "watch"]) {
      if (s.has(k)) s.fail(k, `${k} only goes with dir`);
    }
  } else if (pattern === undefined) {
    s.fail("dir", 'a dir entry needs a pattern (e.g. "*.db")');
  } else {
    try {
      globMatcher(pattern);
    } catch (err) {
      s.fail("pattern", (err as Error).message);
    }
  }

  if (single && list.length > 0) s.fail("replicas", "give either replica or replicas, not both");
  if (list.length > 1) {
    s.fail(
      "replicas",
      "one replica per database (as in Litestream 0.5): list one, or use replica:",
    );
  }
  const replicaSection = single ?? list[0];
  if (!replicaSection) {
    throw s.error(s.line, `${s.where()}a database needs a replica (replica: with a url)`);
  }
  const { syncInterval, retention, snapshotInterval, ...replica } = readReplica(
    replicaSection,
    defaults,
  );
  replicaSection.finish();
  if (syncInterval !== undefined) settings.syncInterval = syncInterval;
  else if (defaults.syncInterval !== undefined) settings.syncInterval = defaults.syncInterval;
  // Litestream 0.3's per-replica settings, unless the entry's snapshot: says otherwise.
  if (retention !== undefined && !s.section("snapshot")?.has("retention")) {
    settings.retention = retention;
  }
  if (snapshotInterval !== undefined && !s.section("snapshot")?.has("interval")) {
    settings.snapshotInterval = snapshotInterval;
  }
  const line = s.line;
  if (dir !== undefined) {
    return {
      kind: "dir",
      dir: expandPath(dir),
      pattern: pattern!,
      recursive,
      watch,
      replica,
      settings,
      line,
    };
  }
  return { kind: "path", path: expandPath(path!), replica, settings, line };
}
