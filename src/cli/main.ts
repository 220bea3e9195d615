/**
 * The `pagecast` command line. Each subcommand lives in its own module and is
 * loaded lazily, so `pagecast ltx dump` does not pay for the S3 SDK or SQLite.
 */
import { PagecastError } from "../errors.js";
import type { CliCommand, CliIo } from "./cli-io.js";
import { UsageError } from "./cli-io.js";

interface CommandEntry {
  usage: string;
  load: () => Promise<CliCommand>;
}

const COMMANDS: Record<string, CommandEntry> = {
  "ltx encode": {
    usage: "pagecast ltx encode <db> <out.ltx> [--txid N] [--ltx-compat 0.5.1]",
    load: async () => (await import("./ltx-encode.js")).ltxEncode,
  },
  "ltx apply": {
    usage: "pagecast ltx apply <out.db> <file.ltx>...",
    load: async () => (await import("./ltx-apply.js")).ltxApply,
  },
  "ltx dump": {
    usage: "pagecast ltx dump <file.ltx>",
    load: async () => (await import("./ltx-dump.js")).ltxDump,
  },
  "ltx verify": {
    usage: "pagecast ltx verify <file.ltx>...",
    load: async () => (await import("./ltx-verify.js")).ltxVerify,
  },
  "ltx list": {
    usage: "pagecast ltx list <url> [--json] [--timeout 30s]",
    load: async () => (await import("./ltx-list.js")).ltxList,
  },
  replicate: {
    usage:
      "pagecast replicate <db> <url> [--sync-interval 1s] [--checkpoint-pages N] [--truncate-pages N] " +
      "[--snapshot-interval 24h] [--retention 24h] [--l1-interval 30s] [--l2-interval 5m] [--l3-interval 1h] " +
      "[--no-compaction] [--lease-ttl 5m] [--auto-restore] [--verbose]",
    load: async () => (await import("./replicate.js")).replicate,
  },
  restore: {
    usage:
      "pagecast restore <url> <out.db> [--timestamp T | --txid N] [--concurrency N (range GETs in flight)] [--no-integrity-check] [--timeout 30s]",
    load: async () => (await import("./restore.js")).restore,
  },
  status: {
    usage: "pagecast status <url>... [--json] [--timeout 30s]",
    load: async () => (await import("./status.js")).status,
  },
  verify: {
    usage: "pagecast verify <db> <url> [--timeout 30s] [--json]",
    load: async () => (await import("./verify.js")).verify,
  },
  query: {
    usage: 'pagecast query <url> "<sql>" [--at <time>|txid:N] [--json] [--timeout 30s]',
    load: async () => (await import("./query.js")).query,
  },
};

/** The usage lines of every command, for --help and usage errors. */
function usageText(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage}`);
  return `Usage:\n${lines.join("\n")}\n`;
}

/** Runs the CLI with `argv` (without node and script path); returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    io.stdout(usageText());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === "--version") {
    io.stdout(`${VERSION}\n`);
    return 0;
  }
  const two = `${argv[0]} ${argv[1] ?? ""}`;
  const entry = COMMANDS[two] ?? COMMANDS[argv[0]!];
  if (!entry) {
    io.stderr(`pagecast: unknown command ${JSON.stringify(argv.slice(0, 2).join(" "))}\n`);
    io.stderr(usageText());
    return 2;
  }
  const rest = COMMANDS[two] ? argv.slice(2) : argv.slice(1);
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout(`Usage: ${entry.usage}\n`);
    return 0;
  }
  try {
    const command = await entry.load();
    return await command(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`pagecast: ${err.message}\nUsage: ${entry.usage}\n`);
      return 2;
    }
    if (err instanceof PagecastError) {
      io.stderr(`pagecast: ${err.message} [${err.code}]\n`);
      return 1;
    }
    const fsError = fileSystemProblem(err);
    if (fsError) {
      io.stderr(`pagecast: ${fsError}\n`);
      return 1;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`pagecast: unexpected error: ${message}\n`);
    return 1;
  }
}

const VERSION = "0.1.0";

const FS_PROBLEMS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  EEXIST: "already exists",
  ENOSPC: "no space left on device",
};

/** A clear one-line message for the file-system errors users cause (a wrong path), else undefined. */
function fileSystemProblem(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { code, path } = err as { code?: unknown; path?: unknown };
  if (typeof code !== "string" || !(code in FS_PROBLEMS)) return undefined;
  return typeof path === "string" ? `${path}: ${FS_PROBLEMS[code]}` : FS_PROBLEMS[code];
}

/** Entry point for the `pagecast` bin: wires process streams and signals. */
export async function run(): Promise<void> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const io: CliIo = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTTY: Boolean(process.stdout.isTTY),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    env: process.env,
    signal: controller.signal,
  };
  const code = await main(process.argv.slice(2), io);
  process.exitCode = code;
  // The command is done: a stray handle (an idle keep-alive socket, say) must
  // not keep the process (a daemon told to stop) alive for long.
  setTimeout(() => process.exit(code), 5000).unref();
}
