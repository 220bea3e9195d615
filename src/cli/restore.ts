/**
 * `pagecast restore <url> <out.db> [--timestamp T | --txid N] [--timeout 30s]`:
 * rebuilds a database from a replica (pagecast or Litestream 0.5), showing
 * bytes, rate and ETA on stderr (in place on a terminal, sparse lines in
 * logs) and when integrity_check runs. `--timeout` bounds every wait on storage (a
 * request with its retries), not the whole restore, which takes as long as
 * the database's size needs: a dead endpoint fails it in about the timeout.
 */
import { restore as restoreReplica } from "../replicator/restore.js";
import { MAX_TIME_MS, readTimeString } from "../vfs/time-string.js";
import { expectPositionals, integerFlag, parseArgs } from "./args.js";
import { type CliCommand, UsageError } from "./cli-io.js";
import { openCliStore, readTimeout, TIMEOUT_FLAG } from "./cli-timeout.js";
import { RestoreProgressView } from "./restore-progress.js";

/** `pagecast restore`. */
export const restore: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, {
    timestamp: "string",
    txid: "string",
    concurrency: "string",
    "no-integrity-check": "boolean",
    ...TIMEOUT_FLAG,
  });
  const [url, out] = expectPositionals(args, ["<url>", "<out.db>"]) as [string, string];
  const f = args.flags;
  if (f.timestamp !== undefined && f.txid !== undefined) {
    throw new UsageError("give either --timestamp or --txid, not both");
  }
  let timestamp: number | undefined;
  if (typeof f.timestamp === "string") {
    // Strict and zone-independent (never Date.parse): the reader's time rules.
    const t = /^\d+$/.test(f.timestamp)
      ? Number(f.timestamp)
      : readTimeString(f.timestamp, Date.now());
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t > MAX_TIME_MS) {
      throw new UsageError(
        "--timestamp must be an ISO time with a zone (2025-01-31T12:00:00Z), " +
          `"N hours ago" or epoch milliseconds${typeof t === "number" ? "" : ` (${t.message})`}`,
      );
    }
    timestamp = t;
  }
  const txid = f.txid !== undefined ? integerFlag(f, "txid", 0, 1) : undefined;
  const concurrency = integerFlag(f, "concurrency", 8, 1);
  const timeoutMs = readTimeout(f);
  const started = Date.now();
  const store = await openCliStore(url, io, timeoutMs);
  // Progress goes to stderr: redrawn in place on a terminal, sparse lines otherwise.
  const view = new RestoreProgressView({
    write: (text) => io.stderr(text),
    tty: io.stderrIsTTY ?? io.isTTY,
  });
  const result = await restoreReplica(store, out, {
    ...(txid !== undefined ? { txid } : {}),
    ...(timestamp !== undefined ? { timestamp } : {}),
    concurrency,
    integrityCheck: f["no-integrity-check"] !== true,
    signal: io.signal,
    onProgress: (p) => view.update(p),
  }).finally(() => {
    view.end();
    return store.close();
  });
  io.stdout(
    `restored TXID ${result.txid} (${new Date(result.timestamp).toISOString()}) to ${out}: ` +
      `${result.commit} pages of ${result.pageSize} bytes from ${result.files} files, ` +
      `${result.bytes} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `checksum ${result.checksumVerified === "none" ? "not available" : `verified against ${result.checksumVerified}`}, integrity ${f["no-integrity-check"] === true ? "not checked" : "ok"}\n`,
  );
  return 0;
};
