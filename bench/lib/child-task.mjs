/**
 * Runs a task script in a separate Node process (so that its peak RSS is its
 * own) and returns the JSON it prints as its last stdout line. Bounded by a
 * timeout; the child is killed if it overruns.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function runTask(name, args, { timeoutMs = 600_000, nodeArgs = [], env = {} } = {}) {
  const script = fileURLToPath(new URL(`../tasks/${name}.mjs`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      err += c;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      const e = new Error(`task ${name} timed out after ${Math.round(timeoutMs / 1000)} s`);
      e.kind = "timeout";
      reject(e);
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split("\n").pop() ?? "";
      let parsed;
      try {
        parsed = JSON.parse(last);
      } catch {
        parsed = undefined;
      }
      if (code === 0 && parsed) {
        resolve(parsed);
        return;
      }
      const detail =
        parsed?.error ?? (err.trim().split("\n").slice(-5).join(" | ") || `exit ${code ?? signal}`);
      const e = new Error(`task ${name} failed: ${detail}`);
      e.kind = parsed?.kind ?? "error";
      reject(e);
    });
  });
}

/**
 * Peak resident set size of this process in bytes. On Linux, VmHWM of
 * /proc/self/status: `resourceUsage().maxRSS` (getrusage) carries over the
 * parent's RSS at fork across exec, so a child spawned by a big parent would
 * report the parent's size.
 */
export function peakRss() {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Prints the result line of a task (and exits). */
export function finishTask(result) {
  process.stdout.write(`\n${JSON.stringify(result)}\n`);
  process.exit(0);
}

/** Prints a failure line of a task (and exits non-zero). */
export function failTask(err) {
  process.stdout.write(
    `\n${JSON.stringify({ error: err instanceof Error ? err.message : String(err), kind: err?.kind })}\n`,
  );
  process.exit(1);
}
