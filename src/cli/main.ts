/**
 * The `pagecast` command line. Each subcommand lives in its own module and is
 * loaded lazily, so `pagecast ltx dump` does not pay for the S3 SDK or SQLite;
 * descriptions, flags and help come from src/cli/commands.ts.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../config/config-error.js";
import { PagecastError } from "../errors.js";
import type { CliCommand, CliIo } from "./cli-io.js";
import { UsageError } from "./cli-io.js";
import { type CommandSpec, commandSpec } from "./commands.js";
import { commandHelp, overviewHelp, usageLines } from "./help.js";

const LOADERS: Record<string, () => Promise<CliCommand>> = {
  "ltx encode": async () => (await import("./ltx-encode.js")).ltxEncode,
  "ltx apply": async () => (await import("./ltx-apply.js")).ltxApply,
  "ltx dump": async () => (await import("./ltx-dump.js")).ltxDump,
  "ltx verify": async () => (await import("./ltx-verify.js")).ltxVerify,
  "ltx list": async () => (await import("./ltx-list.js")).ltxList,
  replicate: async () => (await import("./replicate.js")).replicate,
  restore: async () => (await import("./restore.js")).restore,
  status: async () => (await import("./status.js")).status,
  verify: async () => (await import("./verify.js")).verify,
  query: async () => (await import("./query.js")).query,
};

/** The package's version (package.json sits two levels above this module, in src/ and dist/). */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
})();

const HELP = new Set(["-h", "--help", "-help"]);

/** The arguments before a `--` (after it, `-h` is an argument). */
function flagPart(argv: string[]): string[] {
  const end = argv.indexOf("--");
  return end === -1 ? argv : argv.slice(0, end);
}

/** Runs the CLI with `argv` (without node and script path); returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [first, second] = argv;
  if (first === undefined) {
    io.stderr(overviewHelp(VERSION));
    return 2;
  }
  if (HELP.has(first)) {
    io.stdout(overviewHelp(VERSION));
    return 0;
  }
  if (first === "--version" || first === "-version" || first === "version") {
    io.stdout(`pagecast ${VERSION}\n`);
    return 0;
  }
  if (first === "help") {
    const topic = argv.slice(1).join(" ");
    if (!topic) {
      io.stdout(overviewHelp(VERSION));
      return 0;
    }
    const spec = commandSpec(topic);
    if (spec) io.stdout(commandHelp(spec));
    else if (topic === "ltx") io.stdout(overviewHelp(VERSION, "ltx"));
    else {
      io.stderr(`pagecast: no help for ${JSON.stringify(topic)}\n${overviewHelp(VERSION)}`);
      return 2;
    }
    return 0;
  }
  if (
    first === "ltx" &&
    (second === undefined || HELP.has(second) || !commandSpec(`ltx ${second}`))
  ) {
    if (second !== undefined && HELP.has(second)) {
      io.stdout(overviewHelp(VERSION, "ltx"));
      return 0;
    }
    if (second !== undefined) io.stderr(`pagecast: unknown command "ltx ${second}"\n`);
    io.stderr(overviewHelp(VERSION, "ltx"));
    return 2;
  }
  const name = first === "ltx" ? `ltx ${second}` : first;
  const spec = commandSpec(name);
  const load = LOADERS[name];
  if (!spec || !load) {
    io.stderr(`pagecast: unknown command ${JSON.stringify(first)}\n${overviewHelp(VERSION)}`);
    return 2;
  }
  const rest = argv.slice(first === "ltx" ? 2 : 1);
  if (flagPart(rest).some((a) => HELP.has(a))) {
    io.stdout(commandHelp(spec));
    return 0;
  }
  try {
    const command = await load();
    return await command(rest, io);
  } catch (err) {
    return reportError(err, spec, io);
  }
}

/** Prints a command's failure on stderr; returns the exit code. */
function reportError(err: unknown, spec: CommandSpec, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr(`pagecast ${spec.name}: ${err.message}\n${usageLines(spec)}`);
    return 2;
  }
  if (err instanceof ConfigError) {
    for (const w of err.warnings) io.stderr(`pagecast: warning: ${w}\n`);
    io.stderr(`pagecast: ${err.message} [${err.code}]\n`);
    return 1;
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

/**
 * The process environment as the commands want it: the AWS SDK's notice
 * about future Node versions stays out of every command's output, and
 * Litestream's credential variables stand in for unset AWS ones.
 */
export function prepareEnvironment(env: NodeJS.ProcessEnv): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  if (env.AWS_ACCESS_KEY_ID === undefined && env.LITESTREAM_ACCESS_KEY_ID !== undefined) {
    env.AWS_ACCESS_KEY_ID = env.LITESTREAM_ACCESS_KEY_ID;
  }
  if (env.AWS_SECRET_ACCESS_KEY === undefined && env.LITESTREAM_SECRET_ACCESS_KEY !== undefined) {
    env.AWS_SECRET_ACCESS_KEY = env.LITESTREAM_SECRET_ACCESS_KEY;
  }
}

/** Entry point for the `pagecast` bin: wires process streams and signals. */
export async function run(): Promise<void> {
  prepareEnvironment(process.env);
  // A reader that went away. Of the output (`pagecast ltx list | head`): a
  // command that only prints stops quietly. Of the log (stderr), or of
  // anything `replicate` or `restore` print: they carry on without it,
  // since stopping there would skip the final sync and the lease release
  // (a supervisor that stops the pipe with the daemon) or leave no database.
  const mustFinish = process.argv[2] === "replicate" || process.argv[2] === "restore";
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") throw err;
      if (stream === process.stdout && !mustFinish) process.exit(0);
      // Later writes are dropped (each would fail the same way).
      stream.write = (() => true) as typeof stream.write;
    });
  }
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // The first signal stops the command cleanly (a final sync, a lease
    // released, temp files removed). Another one stops at once, through
    // process.exit so that 'exit' handlers (restore's temp file) still run.
    if (++signals === 1) {
      controller.abort();
      return;
    }
    process.stderr.write(`pagecast: ${signal} again, exiting now\n`);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
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
