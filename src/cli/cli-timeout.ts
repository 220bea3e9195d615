/**
 * Bounded waits of the one-shot commands (`query`, `status`, `restore`,
 * `verify`, `ltx list`): `--timeout` (default 30 s) is the command's deadline
 * on storage, and every failed storage attempt prints a progress line on
 * stderr as it happens, so a hung endpoint is neither silent nor endless.
 */
import { PagecastError } from "../errors.js";
import type { AttemptFailure, ObjectStore } from "../storage/object-store.js";
import { type OpenNodeStoreOptions, openNodeStore } from "../storage/open-node-store.js";
import { formatDuration } from "../storage/request-runner.js";
import { StoreAbortedError } from "../storage/store-errors.js";
import { parseDuration } from "./args.js";
import type { CliIo } from "./cli-io.js";

/** Default of `--timeout`. */
export const DEFAULT_CLI_TIMEOUT_MS = 30_000;

/** How much longer than `--timeout` a command gets before it is abandoned. */
export const DEADLINE_GRACE_MS = 1_000;

/** The flag spec of `--timeout`, for `parseArgs`. */
export const TIMEOUT_FLAG = { timeout: "string" } as const;

/** A one-shot command that ran out of time (`--timeout`). */
export class CliTimeoutError extends PagecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CLI_TIMEOUT", message, options);
  }
}

/**
 * `--timeout` in ms: a duration (`30s`, `2m`), or `0` for no deadline of the
 * command's own (each storage request keeps its default bounds).
 */
export function readTimeout(flags: Record<string, string | boolean | undefined>): number {
  const raw = flags.timeout;
  if (raw === undefined) return DEFAULT_CLI_TIMEOUT_MS;
  if (raw === "0") return 0;
  return parseDuration(String(raw), "timeout");
}

/** The progress line of a failed storage attempt that will be retried. */
export function progressLine(f: AttemptFailure): string {
  const next = f.attempt + 1;
  const of = next <= f.maxAttempts ? `${next}/${f.maxAttempts}` : `(attempt ${next})`;
  const wait = f.delayMs >= 100 ? ` in ${formatDuration(f.delayMs)}` : "";
  return `pagecast: ${f.operation} failed (${f.reason}), retrying ${of}${wait}...\n`;
}

/** Store options for a command: each storage operation bounded by the command's timeout, retries reported. */
export function cliStoreOptions(
  io: CliIo,
  timeoutMs: number,
  credentials?: { accessKeyId: string; secretAccessKey: string },
  s3Transport?: OpenNodeStoreOptions["s3Transport"],
): OpenNodeStoreOptions {
  return {
    ...(credentials ? { credentials } : {}),
    ...(s3Transport ? { s3Transport } : {}),
    retry: {
      ...(timeoutMs > 0 ? { operationTimeoutMs: timeoutMs } : {}),
      onAttemptFailure: (f) => {
        if (f.willRetry) io.stderr(progressLine(f));
      },
    },
  };
}

/** Opens `url` with {@link cliStoreOptions} (credentials: from a config file, else the environment's). */
export function openCliStore(
  url: string,
  io: CliIo,
  timeoutMs: number,
  credentials?: { accessKeyId: string; secretAccessKey: string },
  s3Transport?: OpenNodeStoreOptions["s3Transport"],
): Promise<ObjectStore> {
  return openNodeStore(url, cliStoreOptions(io, timeoutMs, credentials, s3Transport));
}

/** What the store's health says about why nothing came back. */
function lastStorageProblem(store: ObjectStore | undefined): string {
  const last = store?.health?.()?.lastError;
  return last ? `; last storage error: ${last.reason}` : "";
}

/**
 * Runs `body` under the command's deadline. When it passes, `abandon` runs
 * (it closes the store and what uses it, which ends the requests in flight)
 * and the command fails with {@link CliTimeoutError} naming the store and its
 * last storage error. `timeoutMs` 0: no deadline.
 */
export async function withDeadline<T>(
  timeoutMs: number,
  what: string,
  store: () => ObjectStore | undefined,
  body: () => Promise<T>,
  abandon: () => Promise<void>,
  /** The command's stop signal (SIGINT, SIGTERM): abandons the work as the deadline does. */
  signal?: AbortSignal,
): Promise<T> {
  if (signal?.aborted) throw new StoreAbortedError(`${what}: interrupted`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  // A moment of grace: a single storage operation hits its own deadline (the
  // same timeout) first, and its error says more.
  const expired = new Promise<"expired">((resolve) => {
    if (timeoutMs > 0) timer = setTimeout(() => resolve("expired"), timeoutMs + DEADLINE_GRACE_MS);
  });
  // A stop while storage keeps the command waiting (a hung endpoint): it ends now.
  const stopped = new Promise<"stopped">((resolve) => {
    onAbort = () => resolve("stopped");
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const running = body();
  let outcome: "expired" | "stopped";
  try {
    const first = await Promise.race([running.then((value) => ({ value })), expired, stopped]);
    if (first !== "expired" && first !== "stopped") return first.value;
    outcome = first;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
  const problem = lastStorageProblem(store());
  running.catch(() => {});
  await abandon().catch(() => {});
  if (outcome === "stopped") throw new StoreAbortedError(`${what}: interrupted`);
  throw new CliTimeoutError(
    `${what}: no answer within ${formatDuration(timeoutMs)} (--timeout)${problem}`,
  );
}
