/**
 * Runs the examples as users would: each is bundled with esbuild ("pagecast"
 * and "pagecast/node" resolved to this checkout's sources, everything else
 * left to node_modules) and run in its own Node process, or in workerd.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../../..");
const outDir = join(repoRoot, ".tmp", "examples");

/**
 * Resolves "pagecast" and "pagecast/node" to this checkout's sources the way the
 * package's export conditions do: Node gets the entry that loads the wasm from
 * disk and registers AsyncLocalStorage sessions, Workers the runtime-agnostic one.
 */
function pagecastSources(runtime: "node" | "worker"): Plugin {
  const entries: Record<string, string> = {
    pagecast: runtime === "node" ? "index.node.ts" : "index.web.ts",
    "pagecast/node": "node.ts",
  };
  return {
    name: "pagecast-sources",
    setup(b) {
      b.onResolve({ filter: /^pagecast(\/node)?$/ }, (args) => ({
        path: join(repoRoot, "src", entries[args.path]!),
      }));
    },
  };
}

/** Bundles `examples/<entry>` for Node; returns the bundle's path. */
export async function bundleForNode(entry: string): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, `${entry.replace(/[/.]/g, "_")}.mjs`);
  await build({
    entryPoints: [join(repoRoot, "examples", entry)],
    bundle: true,
    outfile,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    plugins: [pagecastSources("node")],
    logLevel: "silent",
  });
  return outfile;
}

/** Bundles `examples/<entry>` as a Worker module; the wa-sqlite wasm import stays external. */
export async function bundleForWorker(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [join(repoRoot, "examples", entry)],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    plugins: [
      pagecastSources("worker"),
      {
        name: "wasm-module",
        setup(b) {
          b.onResolve({ filter: /\.wasm$/ }, (args) => ({
            path: `./${args.path.slice(args.path.lastIndexOf("/") + 1)}`,
            external: true,
          }));
        },
      },
    ],
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/** Environment for example processes: this process's, plus `extra`. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}

/** Runs a bundled example to completion. */
export function runNode(
  bundle: string,
  env: Record<string, string>,
  args: string[] = [],
  timeoutMs = 45_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bundle, ...args], {
      cwd: repoRoot,
      env: childEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`example timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** A long-running example process (a server) and its output so far. */
export interface RunningExample {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts a bundled example that keeps running. */
export function startNode(bundle: string, env: Record<string, string>): RunningExample {
  const child = spawn(process.execPath, [bundle], {
    cwd: repoRoot,
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: (() => void)[] = [];
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(out);
        if (m) return m;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no ${pattern} in output\nstdout: ${out}\nstderr: ${err}`);
        }
        await Promise.race([
          new Promise<void>((r) => waiters.push(r)),
          new Promise((r) => setTimeout(r, 100)),
        ]);
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** The S3 URL of a prefix on the test S3 server. */
export function s3Url(s3: { bucket: string; endpoint: string; region: string }, prefix: string) {
  return `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}&region=${s3.region}&forcePathStyle=true`;
}

/** The standard AWS variables the SDK's default credential chain reads. */
export function awsEnv(s3: { accessKeyId: string; secretAccessKey: string; region: string }) {
  return {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  };
}

/** A prefix no other test uses. */
export function uniquePrefix(name: string): string {
  return `examples-${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Reads until `ok` holds (or `ms` passed) and returns the last value read:
 * for "a later request sees it", where a replica's first due poll may outlast
 * its `pollWaitMs` on a loaded machine and that one request answers from the
 * version it had.
 */
export async function readUntil<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}
