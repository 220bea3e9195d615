/**
 * `pagecast replicate <db> <url> [options]` and `pagecast replicate -config
 * FILE`: a daemon (systemd, Docker, `nohup`, a Kubernetes sidecar: no
 * terminal, stdin closed). Runs until SIGINT/SIGTERM, then makes a final
 * sync per database, releases the leases and exits 0. Logs go to stderr,
 * including storage outages (the replicators keep retrying and say so).
 *
 * One database (positionals): a start failure or a lost lease ends it with
 * exit 1. A config file: every database it names is replicated by this
 * process (see ReplicatorSupervisor): one that fails is logged and retried
 * while the others go on, and `watch: true` dir entries pick up databases
 * created later.
 */

import { stat } from "node:fs/promises";
import type { Server } from "node:http";
import type { ConfigFile, DatabaseEntry, DatabaseSettings } from "../config/config-file.js";
import { type ConfiguredDatabase, dirDatabase } from "../config/configured-databases.js";
import { findDatabases } from "../config/database-discovery.js";
import { formatLocation } from "../config/replica-target.js";
import { PagecastError } from "../errors.js";
import { LTX_COMPAT_VALUES, type LtxCompat } from "../format/index.js";
import { lineLogger, type ReplicatorLogger } from "../replicator/logger.js";
import { Replicator, type ReplicatorOptions } from "../replicator/replicator.js";
import { ReplicatorSupervisor } from "../replicator/supervisor.js";
import { openNodeStore } from "../storage/open-node-store.js";
import { expectPositionals, integerFlag, parseArgs, parseDuration } from "./args.js";
import type { CliCommand, CliIo } from "./cli-io.js";
import { UsageError } from "./cli-io.js";
import { commandSpec } from "./commands.js";
import { loadConfigFlag } from "./config-target.js";
import { parseListenAddress, serveMetrics } from "./metrics-server.js";

type Flags = Record<string, string | boolean | undefined>;
type Settings = Omit<ReplicatorOptions, "db" | "url" | "store" | "logger">;

const fileExists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** How often `watch: true` directories are scanned for new databases, ms. */
const WATCH_INTERVAL_MS = 1000;

/** The replicator settings the command line gives (only flags that are set: they override the file). */
function flagSettings(f: Flags): Settings {
  const out: Settings = {};
  const duration = (name: string) =>
    typeof f[name] === "string" ? parseDuration(f[name] as string, name) : undefined;
  const int = (name: string, min: number) =>
    typeof f[name] === "string" ? integerFlag(f, name, 0, min) : undefined;
  const set = <K extends keyof Settings>(k: K, v: Settings[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("syncInterval", duration("sync-interval"));
  set("checkpointPages", int("checkpoint-pages", 1));
  set("truncatePages", int("truncate-pages", 1));
  set("snapshotInterval", duration("snapshot-interval"));
  set("retention", duration("retention"));
  set("leaseTtl", duration("lease-ttl"));
  set("busyTimeout", duration("busy-timeout"));
  set("verifyPages", int("verify-pages", 0));
  if (f["auto-restore"] === true) out.autoRestore = true;
  // `--ltx-compat 0.5.1`: pages Litestream 0.5.0-0.5.15 can read (see `ReplicatorOptions.ltxCompat`).
  const compat = f["ltx-compat"];
  if (typeof compat === "string") {
    if (!(LTX_COMPAT_VALUES as readonly string[]).includes(compat)) {
      throw new UsageError(`--ltx-compat must be one of ${LTX_COMPAT_VALUES.join(", ")}`);
    }
    out.ltxCompat = compat as LtxCompat;
  }
  if (f["no-compaction"] === true) out.compaction = false;
  else {
    const l1 = duration("l1-interval");
    const l2 = duration("l2-interval");
    const l3 = duration("l3-interval");
    if (l1 !== undefined || l2 !== undefined || l3 !== undefined) {
      out.compaction = {
        ...(l1 !== undefined ? { l1 } : {}),
        ...(l2 !== undefined ? { l2 } : {}),
        ...(l3 !== undefined ? { l3 } : {}),
      };
    }
  }
  return out;
}

/** A config file's settings of one database, under the command line's. */
function mergeSettings(file: DatabaseSettings, flags: Settings): Settings {
  const { compaction, ...rest } = file;
  const merged: Settings = { ...rest, ...flags };
  if (flags.compaction === false) merged.compaction = false;
  else if (compaction || flags.compaction) {
    merged.compaction = { ...compaction, ...(flags.compaction || {}) };
  }
  return merged;
}

/** A logger at the config's level (`logging: level`; --verbose means debug). */
function cliLogger(io: CliIo, level: ConfigFile["logLevel"], verbose: boolean): ReplicatorLogger {
  const base = lineLogger((line) => io.stderr(line), { debug: verbose || level === "debug" });
  if (level === "warn") return { ...base, info() {} };
  if (level === "error") return { ...base, info() {}, warn() {} };
  return base;
}

/** Holds the event loop until the command is told to stop (the replicators' timers do not). */
function untilStopped(io: CliIo, stop?: (resolve: () => void) => void): Promise<void> {
  const keepAlive = setInterval(() => {}, 1 << 30);
  return new Promise<void>((resolve) => {
    if (io.signal.aborted) return resolve();
    io.signal.addEventListener("abort", () => resolve(), { once: true });
    stop?.(resolve);
  }).finally(() => clearInterval(keepAlive));
}

async function startMetrics(
  addr: string | undefined,
  io: CliIo,
  source: Parameters<typeof serveMetrics>[1],
): Promise<Server | undefined> {
  if (addr === undefined) return undefined;
  try {
    const { server, url } = await serveMetrics(addr, source);
    io.stderr(`metrics on ${url}/metrics, health on ${url}/healthz\n`);
    return server;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new PagecastError(
      "METRICS_LISTEN",
      `cannot serve metrics on ${addr}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function stopMetrics(server: Server | undefined): void {
  if (!server) return;
  server.closeAllConnections();
  server.close();
}

/** `pagecast replicate`. Exit 0 after a clean shutdown, 1 on a replication failure. */
export const replicate: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("replicate")!.flags);
  const f = args.flags;
  const config = await loadConfigFlag(f, io);
  const settings = flagSettings(f);
  const metricsAddr = typeof f["metrics-addr"] === "string" ? f["metrics-addr"] : config?.addr;
  // A bad address is a usage error before anything starts.
  if (metricsAddr !== undefined) parseListenAddress(metricsAddr);
  if (config) {
    if (args.positionals.length > 0) {
      throw new UsageError(
        `with -config, the databases come from ${config.file}; unexpected argument ${JSON.stringify(args.positionals[0])}`,
      );
    }
    return replicateConfig(config, settings, metricsAddr, io, f.verbose === true);
  }
  const [db, url] = expectPositionals(args, ["<db>", "<url>"]) as [string, string];
  return replicateOne(db, url, settings, metricsAddr, io, f.verbose === true);
};

async function replicateOne(
  db: string,
  url: string,
  settings: Settings,
  metricsAddr: string | undefined,
  io: CliIo,
  verbose: boolean,
): Promise<number> {
  const replicator = await Replicator.start({
    ...settings,
    db,
    url,
    logger: cliLogger(io, undefined, verbose),
  });
  let server: Server | undefined;
  let failure: unknown;
  try {
    server = await startMetrics(metricsAddr, io, {
      metrics: () => replicator.metrics(),
      health: () => {
        const s = replicator.stats();
        return {
          ok: s.health === "healthy",
          body: {
            healthy: s.health === "healthy",
            databases: [{ db, health: s.health, txid: s.txid }],
          },
        };
      },
    });
    io.stderr(
      `replicating ${db} to ${replicator.store.url} (TXID ${replicator.position.txid}); ` +
        `${io.isTTY ? "Ctrl-C" : "SIGINT or SIGTERM"} to stop\n`,
    );
    await untilStopped(io, (resolve) => {
      // A fatal error (lost lease) ends the command too.
      replicator.on("error", (err: unknown) => {
        if ((err as { code?: string }).code === "LEASE_LOST") {
          failure = err;
          resolve();
        }
      });
    });
    if (!failure) io.stderr("stopping: final sync\n");
  } finally {
    try {
      await replicator.close();
    } catch (err) {
      failure ??= err;
    }
    stopMetrics(server);
  }
  if (failure) throw failure;
  const s = replicator.stats();
  io.stderr(`stopped at TXID ${s.txid} after ${s.publishedSyncs} published syncs\n`);
  return 0;
}

async function replicateConfig(
  config: ConfigFile,
  flags: Settings,
  metricsAddr: string | undefined,
  io: CliIo,
  verbose: boolean,
): Promise<number> {
  const logger = cliLogger(io, config.logLevel, verbose);
  const supervisor = new ReplicatorSupervisor({ logger });
  const add = (d: ConfiguredDatabase) => {
    const url = formatLocation(d.replica.location);
    const credentials = d.replica.credentials;
    const added = supervisor.add({
      db: d.path,
      url,
      // The AWS SDK even with static credentials, as the Replicator does.
      openStore: () =>
        openNodeStore(url, { ...(credentials ? { credentials } : {}), s3Transport: "aws-sdk" }),
      options: mergeSettings(d.settings, flags),
    });
    if (added) logger.info("database configured", { db: d.path, replica: url });
  };
  const fromWatchedDir = new Map<string, DatabaseEntry>();
  // A dir entry whose directory is missing is that entry's problem, not the others'.
  const scan = async (onlyWatched: boolean) => {
    for (const entry of config.databases) {
      if (entry.kind === "path") {
        if (!onlyWatched)
          add({ path: entry.path, replica: entry.replica, settings: entry.settings, entry });
        continue;
      }
      if (onlyWatched && !entry.watch) continue;
      let paths: string[];
      try {
        paths = await findDatabases(entry.dir, entry.pattern, entry.recursive, (p) =>
          supervisor.has(p),
        );
      } catch (err) {
        if (!onlyWatched) {
          logger.error("cannot scan directory", { dir: entry.dir, error: (err as Error).message });
        }
        continue;
      }
      for (const path of paths) {
        add(dirDatabase(entry, path));
        fromWatchedDir.set(path, entry);
      }
      if (!onlyWatched) continue;
      // A database deleted from a watched directory stops being replicated (its replica stays).
      for (const [path, from] of fromWatchedDir) {
        if (from !== entry || (await fileExists(path))) continue;
        fromWatchedDir.delete(path);
        if (await supervisor.remove(path)) logger.info("database removed", { db: path });
      }
    }
  };
  let server: Server | undefined;
  let watcher: ReturnType<typeof setInterval> | undefined;
  try {
    await scan(false);
    server = await startMetrics(metricsAddr, io, {
      metrics: () => supervisor.metrics(),
      health: () => ({
        ok: supervisor.healthy(),
        body: { healthy: supervisor.healthy(), databases: supervisor.status() },
      }),
    });
    const watched = config.databases.some((d) => d.kind === "dir" && d.watch);
    if (watched) {
      let scanning = false;
      watcher = setInterval(() => {
        if (scanning) return;
        scanning = true;
        void scan(true).finally(() => {
          scanning = false;
        });
      }, WATCH_INTERVAL_MS);
    }
    io.stderr(
      `replicating ${supervisor.status().length} database(s) of ${config.file}` +
        `${watched ? " (watching for new ones)" : ""}; ${io.isTTY ? "Ctrl-C" : "SIGINT or SIGTERM"} to stop\n`,
    );
    await untilStopped(io);
    io.stderr("stopping: final sync\n");
  } finally {
    if (watcher) clearInterval(watcher);
    await supervisor.close().catch((err: unknown) => {
      logger.error("final sync failed", { error: (err as Error).message });
    });
    stopMetrics(server);
  }
  for (const s of supervisor.status()) {
    io.stderr(`stopped ${s.db} at TXID ${s.txid ?? "-"}\n`);
  }
  return 0;
}
