/**
 * Real processes for the writer's deployment-shape tests: the `pagecast`
 * CLI as users run it (built code, stdio not a terminal, stdin closed) and
 * Debian's `sqlite3` as an application writing from another process.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const root = resolve(import.meta.dirname, "../..");
/** Built code the processes run: `PAGECAST_DIST` (e.g. another checkout's, to compare) or dist/. */
export const dist = resolve(process.env.PAGECAST_DIST ?? join(root, "dist"));
/** The CLI next to it. */
export const bin = join(dirname(dist), "bin", "pagecast.js");

/** Builds dist/ when absent (CI builds it before vitest). */
export function ensureBuilt(): void {
  if (!existsSync(join(dist, "cli", "main.js"))) {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running `pagecast replicate`. */
export interface Daemon {
  child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Whether it has exited. */
  readonly done: boolean;
  /** Resolves once it printed "replicating" (rejects if it exits first). */
  ready: Promise<void>;
  /** Sends `signal` and waits for the exit (at most `withinMs`); resolves with the exit code. */
  stop(signal?: NodeJS.Signals, withinMs?: number): Promise<number | string>;
}

/** Spawns `pagecast replicate <db> <url> ...args` with no terminal and stdin closed. */
export function startDaemon(
  db: string,
  url: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Daemon {
  const child = spawn(process.execPath, [bin, "replicate", db, url, ...args], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
  });
  child.stdin!.end();
  let err = "";
  let done = false;
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  child.stdout!.resume();
  const exited = new Promise<number | string>((res) =>
    child.on("exit", (code, signal) => {
      done = true;
      res(code ?? signal ?? "?");
    }),
  );
  const ready = new Promise<void>((res, rej) => {
    const timer = setInterval(() => {
      if (err.includes("replicating ")) {
        clearInterval(timer);
        res();
      } else if (done) {
        clearInterval(timer);
        rej(new Error(`pagecast replicate exited before it was ready: ${err}`));
      }
    }, 20);
  });
  return {
    child,
    stderr: () => err,
    exited,
    get done() {
      return done;
    },
    ready,
    async stop(signal = "SIGTERM", withinMs = 15_000) {
      if (!done) child.kill(signal);
      const code = await Promise.race([exited, sleep(withinMs).then(() => "timeout")]);
      if (code === "timeout") child.kill("SIGKILL");
      return code;
    },
  };
}

/** Runs Debian's `sqlite3` on `db` with each argument as a command; rejects on failure. */
export function sqlite3(db: string, ...commands: string[]): Promise<string> {
  return new Promise((res, rej) =>
    execFile("sqlite3", [db, ".timeout 10000", ...commands], (err, stdout, stderr) =>
      err
        ? rej(new Error(`sqlite3 ${commands.join("; ")}: ${stderr || err.message}`))
        : res(stdout),
    ),
  );
}

/** Runs a one-shot `pagecast` command. */
export function pagecast(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) =>
    execFile(
      process.execPath,
      [bin, ...args],
      {
        cwd: root,
        timeout: 60_000,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
      },
      (err, stdout, stderr) =>
        res({
          code: err ? Number((err as { code?: unknown }).code ?? 1) : 0,
          stdout,
          stderr,
        }),
    ),
  );
}

/** The Replicator (built code) in a child process of its own (fixtures/replicator-child.mjs). */
export interface ReplicatorChild {
  /** Sends a command and resolves with the answer line (without its first word). */
  ask(cmd: "sync" | "stats" | "close"): Promise<string>;
  stats(): Promise<Record<string, unknown> & { health?: string; divergences?: number }>;
  stderr(): string;
  exited: Promise<number | null>;
}

export async function startReplicatorChild(
  db: string,
  url: string,
  options: Record<string, unknown> = {},
): Promise<ReplicatorChild> {
  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, "fixtures", "replicator-child.mjs"),
      JSON.stringify({ dist, db, url, options }),
    ],
    { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
  );
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const waiting: ((line: string) => void)[] = [];
  let ready!: () => void;
  const started = new Promise<void>((res) => {
    ready = res;
  });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  const { createInterface } = await import("node:readline");
  createInterface({ input: child.stdout! }).on("line", (l) => {
    if (l.startsWith("READY")) ready();
    else waiting.shift()?.(l.slice(l.indexOf(" ") + 1));
  });
  await Promise.race([
    started,
    exited.then((code) => {
      throw new Error(`replicator child exited (${code}): ${err}`);
    }),
  ]);
  const ask = (cmd: string) =>
    new Promise<string>((res) => {
      waiting.push(res);
      child.stdin!.write(`${cmd}\n`);
    });
  return {
    ask,
    stats: async () => JSON.parse(await ask("stats")),
    stderr: () => err,
    exited,
  };
}
