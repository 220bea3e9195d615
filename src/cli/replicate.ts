/**
 * `pagecast replicate <db> <url> [options]`: a daemon (systemd, Docker,
 * `nohup`, a Kubernetes sidecar: no terminal, stdin closed). Runs a
 * Replicator until SIGINT/SIGTERM, then makes a final sync, releases the
 * lease and exits 0; a lost lease ends it with exit 1. Logs go to stderr,
 * including storage outages (the replicator keeps retrying and says so).
 */
import { LTX_COMPAT_VALUES, type LtxCompat } from "../format/index.js";
import { lineLogger } from "../replicator/logger.js";
import { Replicator, type ReplicatorOptions } from "../replicator/replicator.js";
import { expectPositionals, integerFlag, parseArgs, parseDuration } from "./args.js";
import { type CliCommand, UsageError } from "./cli-io.js";

const FLAGS = {
  "sync-interval": "string",
  "checkpoint-pages": "string",
  "truncate-pages": "string",
  "snapshot-interval": "string",
  retention: "string",
  "l1-interval": "string",
  "l2-interval": "string",
  "l3-interval": "string",
  "no-compaction": "boolean",
  "lease-ttl": "string",
  "auto-restore": "boolean",
  "ltx-compat": "string",
  verbose: "boolean",
} as const;

/** `pagecast replicate`. Exit 0 after a clean shutdown, 1 on a replication failure. */
export const replicate: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, FLAGS);
  const [db, url] = expectPositionals(args, ["<db>", "<url>"]) as [string, string];
  const f = args.flags;
  const duration = (name: string, fallback: number) =>
    typeof f[name] === "string" ? parseDuration(f[name] as string, name) : fallback;
  const options: ReplicatorOptions = {
    db,
    url,
    syncInterval: duration("sync-interval", 1000),
    checkpointPages: integerFlag(f, "checkpoint-pages", 1000, 1),
    truncatePages: integerFlag(f, "truncate-pages", 10_000, 1),
    snapshotInterval: duration("snapshot-interval", 24 * 3_600_000),
    retention: duration("retention", 24 * 3_600_000),
    leaseTtl: duration("lease-ttl", 5 * 60_000),
    autoRestore: f["auto-restore"] === true,
    compaction:
      f["no-compaction"] === true
        ? false
        : {
            l1: duration("l1-interval", 30_000),
            l2: duration("l2-interval", 5 * 60_000),
            l3: duration("l3-interval", 3_600_000),
          },
    logger: lineLogger((line) => io.stderr(line), { debug: f.verbose === true }),
  };
  // `--ltx-compat 0.5.1`: pages Litestream 0.5.0-0.5.15 can read (see `ReplicatorOptions.ltxCompat`).
  const compat = f["ltx-compat"];
  if (typeof compat === "string") {
    if (!(LTX_COMPAT_VALUES as readonly string[]).includes(compat)) {
      throw new UsageError(`--ltx-compat must be one of ${LTX_COMPAT_VALUES.join(", ")}`);
    }
    options.ltxCompat = compat as LtxCompat;
  }
  const replicator = await Replicator.start(options);
  io.stderr(
    `replicating ${db} to ${replicator.store.url} (TXID ${replicator.position.txid}); ` +
      `${io.isTTY ? "Ctrl-C" : "SIGINT or SIGTERM"} to stop\n`,
  );
  let failure: unknown;
  // The replicator's timer does not keep a process alive (a library must not
  // hold its host's process open): the daemon holds the event loop itself,
  // until the final sync is done.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
      // A fatal error (lost lease) ends the command too.
      replicator.on("error", (err: unknown) => {
        if ((err as { code?: string }).code === "LEASE_LOST") {
          failure = err;
          resolve();
        }
      });
    });
    if (!failure) io.stderr("stopping: final sync\n");
    try {
      await replicator.close();
    } catch (err) {
      failure ??= err;
    }
  } finally {
    clearInterval(keepAlive);
  }
  if (failure) throw failure;
  const s = replicator.stats();
  io.stderr(`stopped at TXID ${s.txid} after ${s.publishedSyncs} published syncs\n`);
  return 0;
};
