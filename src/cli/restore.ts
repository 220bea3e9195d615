/**
 * `pagecast restore`: rebuilds a database from a replica (pagecast or
 * Litestream 0.5), showing bytes, rate and ETA on
 * stderr (in place on a terminal, sparse lines in logs) and when
 * SQLite's check of the result runs (`-integrity-check quick|full|none`, as
 * Litestream's flag; quick by default). The replica is a URL,
 * or with `-config` a database path of the file (restored to that path
 * unless `-o` says otherwise), as Litestream's restore does. An existing
 * output is replaced only with `--overwrite` (`--force`), and then only once
 * the new file is complete. `--timeout` bounds every wait on storage (a
 * request with its retries), not the whole restore, which takes as long as
 * the database's size needs: a dead endpoint fails it in about the timeout.
 */
import { randomBytes } from "node:crypto";
import { rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ReplicatorError } from "../replicator/replicator-error.js";
import {
  type IntegrityCheckMode,
  integrityCheckPragma,
  restore as restoreReplica,
} from "../replicator/restore.js";
import { MAX_TIME_MS, readTimeString } from "../vfs/time-string.js";
import { expectPositionals, integerFlag, parseArgs } from "./args.js";
import { type CliCommand, UsageError } from "./cli-io.js";
import { openCliStore, readTimeout } from "./cli-timeout.js";
import { commandSpec } from "./commands.js";
import { loadConfigFlag, resolveTarget } from "./config-target.js";
import { RestoreProgressView } from "./restore-progress.js";

const SIDECARS = ["-wal", "-shm", "-journal"];

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

function readTimestamp(text: string): number {
  // Strict and zone-independent (never Date.parse): the reader's time rules.
  const t = /^\d+$/.test(text) ? Number(text) : readTimeString(text, Date.now());
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t > MAX_TIME_MS) {
    throw new UsageError(
      `--timestamp ${typeof t === "number" ? "is out of range" : t.message}; ` +
        'e.g. --timestamp 2025-01-31T12:00:00Z or --timestamp "2 hours ago"',
    );
  }
  return t;
}

/** `-integrity-check MODE` (Litestream's flag) or `--no-integrity-check`. */
function readIntegrityCheck(f: Record<string, string | boolean | undefined>): IntegrityCheckMode {
  const mode = f["integrity-check"];
  if (f["no-integrity-check"] === true) {
    if (mode !== undefined && mode !== "none") {
      throw new UsageError("give either --no-integrity-check or -integrity-check, not both");
    }
    return "none";
  }
  if (mode === undefined) return "quick";
  if (mode === "quick" || mode === "full" || mode === "none") return mode;
  throw new UsageError(
    `-integrity-check must be quick, full or none, not ${JSON.stringify(String(mode))}`,
  );
}

/** `pagecast restore`. */
export const restore: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("restore")!.flags);
  const [source, positionalOut] = expectPositionals(args, ["<url>"], true) as [string, string?];
  if (args.positionals.length > 2) {
    throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[2])}`);
  }
  const f = args.flags;
  if (typeof f.output === "string" && positionalOut !== undefined) {
    throw new UsageError("give the output either with -o or as the second argument, not both");
  }
  if (f.timestamp !== undefined && f.txid !== undefined) {
    throw new UsageError("give either --timestamp or --txid, not both");
  }
  const timestamp = typeof f.timestamp === "string" ? readTimestamp(f.timestamp) : undefined;
  const txid = f.txid !== undefined ? integerFlag(f, "txid", 0, 1) : undefined;
  const concurrency = integerFlag(f, "concurrency", 8, 1);
  const integrityCheck = readIntegrityCheck(f);
  const timeoutMs = readTimeout(f);
  const config = await loadConfigFlag(f, io);
  const target = resolveTarget(source, config);
  const out =
    (typeof f.output === "string" ? f.output : undefined) ?? positionalOut ?? target.database?.path;
  if (out === undefined) {
    throw new UsageError(`missing the output: pagecast restore -o PATH ${source}`);
  }

  const taken = [];
  for (const p of [out, ...SIDECARS.map((s) => out + s)]) if (await exists(p)) taken.push(p);
  if (taken.includes(out) && f["if-db-not-exists"] === true) {
    io.stderr(`database ${out} already exists, skipping (--if-db-not-exists)\n`);
    return 0;
  }
  if (taken.length > 0 && f.overwrite !== true) {
    throw new ReplicatorError(
      "RESTORE_OUTPUT_EXISTS",
      `cannot restore to ${out}: ${taken.join(", ")} already exist${taken.length === 1 ? "s" : ""} (--overwrite replaces ${taken.length === 1 ? "it" : "them"})`,
    );
  }
  // Overwriting: the new database is complete before the old one goes.
  const writeTo =
    taken.length > 0
      ? join(dirname(out), `.${basename(out)}.pagecast-overwrite-${randomBytes(6).toString("hex")}`)
      : out;

  const started = Date.now();
  // The AWS SDK even with static credentials, as restore() does.
  const store = await openCliStore(target.url, io, timeoutMs, target.credentials, "aws-sdk");
  // Progress goes to stderr: redrawn in place on a terminal, sparse lines otherwise.
  const view = new RestoreProgressView({
    write: (text) => io.stderr(text),
    tty: io.stderrIsTTY ?? io.isTTY,
    ...(integrityCheck !== "none" ? { check: integrityCheckPragma(integrityCheck) } : {}),
  });
  let result: Awaited<ReturnType<typeof restoreReplica>>;
  try {
    result = await restoreReplica(store, writeTo, {
      ...(txid !== undefined ? { txid } : {}),
      ...(timestamp !== undefined ? { timestamp } : {}),
      concurrency,
      integrityCheck,
      signal: io.signal,
      onProgress: (p) => view.update(p),
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === "REPLICA_EMPTY" && f["if-replica-exists"] === true) {
      io.stderr(`no replica at ${store.url}, skipping (--if-replica-exists)\n`);
      return 0;
    }
    throw err;
  } finally {
    view.end();
    await store.close();
  }
  if (writeTo !== out) {
    for (const s of SIDECARS) await rm(out + s, { force: true });
    await rename(writeTo, out);
  }
  io.stdout(
    `restored TXID ${result.txid} (${new Date(result.timestamp).toISOString()}) to ${out}: ` +
      `${result.commit} pages of ${result.pageSize} bytes from ${result.files} files, ` +
      `${result.bytes} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `checksum ${result.checksumVerified === "none" ? "not available" : `verified against ${result.checksumVerified}`}, ${result.integrityCheck === "none" ? "integrity not checked" : `${integrityCheckPragma(result.integrityCheck)} ok`}\n`,
  );
  return 0;
};
