/**
 * Every command's description, usage and flags: the one source of both the
 * argument parser's flag list and `--help`. Kept free of the commands' code
 * so `pagecast <command> --help` loads nothing else.
 */

/** One flag of a command. */
export interface FlagDef {
  /** Long name without dashes (`sync-interval`); `--name` and `-name` both work. */
  name: string;
  /** `string` flags take a value, `boolean` flags do not. */
  kind: "string" | "boolean";
  /** Other names (`o` for output, Litestream's `force`, `parallelism`). */
  aliases?: readonly string[];
  /** Placeholder of the value in help (`DURATION`, `N`, `PATH`). */
  value?: string;
  /** The default, with its unit (`1s`, `1000 WAL pages`); absent: off / none. */
  default?: string;
  help: string;
}

/** One command (or `ltx` subcommand). */
export interface CommandSpec {
  /** `replicate`, `ltx list`. */
  name: string;
  /** One line for the overview. */
  summary: string;
  /** Usage lines, without the leading `pagecast `. */
  usage: readonly string[];
  /** What it does, a paragraph per entry. */
  description: readonly string[];
  flags: readonly FlagDef[];
  /** Extra help sections this command needs. */
  sections?: readonly ("urls" | "credentials" | "times" | "config")[];
  examples?: readonly string[];
}

const TIMEOUT: FlagDef = {
  name: "timeout",
  kind: "string",
  value: "DURATION",
  default: "30s",
  help: "deadline of the command's waits on storage (each request with its retries); 0 = none of its own",
};
const JSON_FLAG: FlagDef = { name: "json", kind: "boolean", help: "print JSON instead of text" };
const CONFIG: FlagDef = {
  name: "config",
  kind: "string",
  value: "FILE",
  help: "a Litestream-style YAML config file; databases are then named by their path",
};
const NO_EXPAND_ENV: FlagDef = {
  name: "no-expand-env",
  kind: "boolean",
  help: "do not expand $VAR and $" + "{VAR} in the config file",
};

export const COMMAND_SPECS: readonly CommandSpec[] = [
  {
    name: "replicate",
    summary: "replicate databases to S3 or a directory, continuously (a daemon)",
    usage: ["replicate [options] <db> <url>", "replicate -config <file> [options]"],
    description: [
      "Runs beside the application that writes <db> (WAL mode; a database in rollback-journal mode is switched to WAL, and a line says so) and publishes every committed transaction to <url> as LTX files in Litestream 0.5's layout. It runs until SIGINT or SIGTERM, then makes a final sync, releases its lease and exits 0; a second signal exits at once (130 / 143), skipping the final sync (nothing is lost: the next start resumes from the WAL).",
      "With one database, a lost lease (another writer took the replica over) exits 1. With -config, every database of the file is replicated by this one process, each with its own lease, position and metrics; a database that fails (missing, lease held elsewhere, storage down) is logged and retried without stopping the others, and databases appearing later in a `dir` entry with `watch: true` are picked up.",
      "Flags given here override the config file for every database.",
    ],
    flags: [
      CONFIG,
      NO_EXPAND_ENV,
      {
        name: "metrics-addr",
        kind: "string",
        value: "ADDR",
        help: "serve Prometheus metrics on http://ADDR/metrics and health on /healthz (`:9090` = every interface, `127.0.0.1:9090`); the config's `addr:` otherwise",
      },
      {
        name: "sync-interval",
        kind: "string",
        value: "DURATION",
        default: "1s",
        help: "how often new commits are read from the WAL and uploaded",
      },
      {
        name: "checkpoint-pages",
        kind: "string",
        value: "N",
        default: "1000 WAL pages",
        help: "PASSIVE checkpoint once the WAL holds this many pages (Litestream: min-checkpoint-page-count)",
      },
      {
        name: "truncate-pages",
        kind: "string",
        value: "N",
        default: "121359 WAL pages",
        help: "TRUNCATE checkpoint once the WAL holds this many pages (Litestream: truncate-page-n)",
      },
      {
        name: "snapshot-interval",
        kind: "string",
        value: "DURATION",
        default: "24h",
        help: "time between full snapshots (level 9)",
      },
      {
        name: "retention",
        kind: "string",
        value: "DURATION",
        default: "24h",
        help: "how long replaced files are kept (point-in-time restore reaches this far back)",
      },
      {
        name: "l1-interval",
        kind: "string",
        value: "DURATION",
        default: "30s",
        help: "compaction interval of level 1",
      },
      {
        name: "l2-interval",
        kind: "string",
        value: "DURATION",
        default: "5m",
        help: "compaction interval of level 2",
      },
      {
        name: "l3-interval",
        kind: "string",
        value: "DURATION",
        default: "1h",
        help: "compaction interval of level 3",
      },
      { name: "no-compaction", kind: "boolean", help: "never compact (level-0 files only)" },
      {
        name: "lease-ttl",
        kind: "string",
        value: "DURATION",
        default: "5m",
        help: "lifetime of the writer's lease (renewed while it runs)",
      },
      {
        name: "busy-timeout",
        kind: "string",
        value: "DURATION",
        default: "100ms",
        help: "busy timeout of the replicator's own SQLite connections",
      },
      {
        name: "verify-pages",
        kind: "string",
        value: "N",
        default: "256 pages per sync",
        help: "pages compared with the replica at each sync (divergence check); 0 = off",
      },
      {
        name: "auto-restore",
        kind: "boolean",
        help: "restore the database from the replica first when the file does not exist (Litestream: restore-if-db-not-exists)",
      },
      {
        name: "ltx-compat",
        kind: "string",
        value: "VERSION",
        default: "0.5.2",
        help: "page encoding of every file written: 0.5.2 (LZ4 blocks, Litestream 0.5.16+) or 0.5.1 (LZ4 frames, Litestream 0.5.0-0.5.15)",
      },
      { name: "verbose", kind: "boolean", help: "log debug lines too" },
    ],
    sections: ["urls", "credentials", "config"],
    examples: [
      "pagecast replicate app.db s3://my-bucket/app?region=eu-west-1",
      "pagecast replicate app.db file:///var/backups/app --sync-interval 500ms",
      "pagecast replicate -config /etc/litestream.yml --metrics-addr :9090",
    ],
  },
  {
    name: "restore",
    summary: "rebuild a database from a replica, at its latest state or a point in time",
    usage: [
      "restore [options] -o <out.db> <url>",
      "restore [options] <url> <out.db>",
      "restore -config <file> [options] <db>",
    ],
    description: [
      "Plans the fewest files (newest snapshot at or before the target, then the files covering the rest), downloads them in parallel with bounded memory, verifies checksums and runs PRAGMA quick_check (-integrity-check), and writes the database atomically. Works on replicas written by Litestream 0.5.",
      "With -config, <db> is a database path of the file: its replica is restored, to <db> itself unless -o says otherwise. An existing output is never replaced without --overwrite.",
    ],
    flags: [
      {
        name: "output",
        kind: "string",
        aliases: ["o"],
        value: "PATH",
        default: "<db> with -config",
        help: "where to write the database",
      },
      {
        name: "overwrite",
        kind: "boolean",
        aliases: ["force"],
        help: "replace an existing output file (and its -wal, -shm, -journal files)",
      },
      {
        name: "if-db-not-exists",
        kind: "boolean",
        help: "exit 0 without restoring when the output already exists",
      },
      {
        name: "if-replica-exists",
        kind: "boolean",
        help: "exit 0 without restoring when the replica holds nothing",
      },
      {
        name: "timestamp",
        kind: "string",
        value: "TIME",
        help: "restore the newest state committed at or before TIME",
      },
      { name: "txid", kind: "string", value: "N", help: "restore exactly transaction N (decimal)" },
      {
        name: "concurrency",
        kind: "string",
        aliases: ["parallelism"],
        value: "N",
        default: "8 range GETs of 4 MiB",
        help: "downloads in flight (memory is about N x 4 MiB)",
      },
      {
        name: "integrity-check",
        kind: "string",
        value: "MODE",
        default: "quick",
        help: "SQLite's check of the result: quick (PRAGMA quick_check: every page and cell), full (PRAGMA integrity_check: also every index entry against its table, often far longer) or none",
      },
      {
        name: "no-integrity-check",
        kind: "boolean",
        help: "skip SQLite's check (same as -integrity-check none)",
      },
      TIMEOUT,
      CONFIG,
      NO_EXPAND_ENV,
    ],
    sections: ["urls", "credentials", "times"],
    examples: [
      "pagecast restore -o restored.db s3://my-bucket/app",
      'pagecast restore -o then.db --timestamp "2 hours ago" s3://my-bucket/app',
      "pagecast restore -config /etc/litestream.yml --if-db-not-exists /data/app.db",
    ],
  },
  {
    name: "status",
    summary: "position, lag and health of replicas",
    usage: ["status [options] <url>...", "status -config <file> [options] [<db>...]"],
    description: [
      "Opens each replica lazily (no page is read) and prints its TXID, last commit, lag, health (healthy, lagging, stale, unknown, or diverged when its writer reports a divergence not yet repaired), cache and requests. Exit 1 when a replica could not be read.",
      "With -config, the replicas of the given databases, or of every database of the file.",
    ],
    flags: [JSON_FLAG, TIMEOUT, CONFIG, NO_EXPAND_ENV],
    sections: ["urls", "credentials"],
    examples: ["pagecast status s3://my-bucket/app", "pagecast status -config /etc/litestream.yml"],
  },
  {
    name: "verify",
    summary: "prove replication works end to end: a marker row must reach the replica",
    usage: ["verify [options] <db> <url>", "verify -config <file> [options] <db>"],
    description: [
      "Writes a marker row into <db> (table _pagecast_verify, last 10 kept), then polls the replica until the marker appears and prints the lag. Exit 1 when it does not arrive within --timeout (no replicator running, a wrong URL, storage trouble).",
    ],
    flags: [TIMEOUT, JSON_FLAG, CONFIG, NO_EXPAND_ENV],
    sections: ["urls", "credentials"],
  },
  {
    name: "query",
    summary: "run SQL on a replica straight from storage (only the pages it touches)",
    usage: ['query [options] <url> "<sql>"', 'query -config <file> [options] <db> "<sql>"'],
    description: [
      "Prints rows as `a|b|c` lines (like sqlite3) or JSON. The replica is read-only: writes fail.",
    ],
    flags: [
      {
        name: "at",
        kind: "string",
        value: "TIME|txid:N",
        help: "read the state at TIME, or exactly transaction N",
      },
      JSON_FLAG,
      TIMEOUT,
      CONFIG,
      NO_EXPAND_ENV,
    ],
    sections: ["urls", "credentials", "times"],
    examples: ['pagecast query s3://my-bucket/app "SELECT count(*) FROM users" --at "1 hour ago"'],
  },
  {
    name: "ltx list",
    summary: "the LTX files of a replica per level: TXIDs, sizes, times",
    usage: ["ltx list [options] <url>", "ltx list -config <file> [options] <db>"],
    description: [
      "TXIDs print as 16 hex digits, as in the file names. For a directory (file://), --json also gives each file's path.",
    ],
    flags: [JSON_FLAG, TIMEOUT, CONFIG, NO_EXPAND_ENV],
    sections: ["urls", "credentials"],
  },
  {
    name: "ltx encode",
    summary: "write a snapshot LTX file of a database file",
    usage: ["ltx encode [options] <db> <out.ltx>"],
    description: [
      "Reads only the main database file: checkpoint first, frames still in the WAL are not included (a warning says so).",
    ],
    flags: [
      {
        name: "txid",
        kind: "string",
        value: "N",
        default: "1",
        help: "the snapshot's max TXID",
      },
      {
        name: "ltx-compat",
        kind: "string",
        value: "VERSION",
        default: "0.5.2",
        help: "page encoding: 0.5.2 (LZ4 blocks, Litestream 0.5.16+) or 0.5.1 (LZ4 frames, Litestream 0.5.0-0.5.15)",
      },
    ],
  },
  {
    name: "ltx apply",
    summary: "apply a snapshot and contiguous LTX files to build a database",
    usage: ["ltx apply <out.db> <file.ltx>..."],
    description: [
      "Checks every checksum; the database appears atomically only once every file applied cleanly.",
    ],
    flags: [],
  },
  {
    name: "ltx dump",
    summary: "header, trailer and page index of an LTX file as JSON",
    usage: ["ltx dump <file.ltx>"],
    description: ["Reads only the header and the tail; `ltx verify` checks the page data."],
    flags: [],
  },
  {
    name: "ltx verify",
    summary: "check LTX files completely (structure, pages, checksums)",
    usage: ["ltx verify <file.ltx>..."],
    description: ["Prints `ok` or `FAIL` per file; exit 1 when any file fails."],
    flags: [],
  },
];

/** The spec of `name` (`replicate`, `ltx list`). */
export function commandSpec(name: string): CommandSpec | undefined {
  return COMMAND_SPECS.find((c) => c.name === name);
}
