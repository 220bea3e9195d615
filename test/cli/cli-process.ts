/**
 * The CLI as users run it: `node bin/pagecast.js` as a child process, stdio
 * not a TTY, warnings NOT silenced (clean output is under test).
 * PAGECAST_TEST_BIN runs another build (to check a test fails on old code).
 */
import {
  type ChildProcessByStdio,
  type ChildProcessWithoutNullStreams,
  spawn,
} from "node:child_process";
import { existsSync } from "node:fs";
import type { Readable } from "node:stream";

export const bin =
  process.env.PAGECAST_TEST_BIN ?? new URL("../../bin/pagecast.js", import.meta.url).pathname;
/** Whether `npm run build` produced the CLI (the tests need it). */
export const built =
  process.env.PAGECAST_TEST_BIN !== undefined ||
  existsSync(new URL("../../dist/cli/main.js", import.meta.url));

/** An environment without the host's AWS settings and without NODE_NO_WARNINGS. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(AWS_|LITESTREAM_|NODE_NO_WARNINGS|NO_COLOR)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, AWS_EC2_METADATA_DISABLED: "true", ...extra };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `pagecast args...` to completion; kills it (and rejects) after `limitMs`. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  limitMs = 60_000,
  /** Called with the child once spawned (e.g. to close its pipes). */
  started?: (child: ChildProcessByStdio<null, Readable, Readable>) => void,
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    started?.(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    const killer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pagecast ${args.join(" ")} still running after ${limitMs} ms: ${stderr}`));
    }, limitMs);
    child.on("close", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `pagecast` (replicate): its stderr so far, and a clean stop. */
export interface Daemon {
  child: ChildProcessWithoutNullStreams;
  stderr(): string;
  /** Resolves once stderr matches `pattern` (rejects after `limitMs`). */
  waitFor(pattern: RegExp, limitMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then the exit code (SIGKILL and reject after `limitMs`). */
  stop(limitMs?: number): Promise<number | null>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv): Daemon {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: "pipe" });
  child.stdin.end();
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stderr.on("data", (d: Buffer) => {
    stderr += d;
    for (const w of waiters) w();
  });
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  return {
    child,
    stderr: () => stderr,
    waitFor(pattern, limitMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = stderr.match(pattern);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} on stderr within ${limitMs} ms:\n${stderr}`));
        }, limitMs);
        waiters.add(check);
        check();
      });
    },
    async stop(limitMs = 30_000) {
      if (child.exitCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), limitMs);
      try {
        return await exited;
      } finally {
        clearTimeout(killer);
      }
    },
  };
}
