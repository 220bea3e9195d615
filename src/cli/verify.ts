/**
 * `pagecast verify <db> <url> [--timeout 30s] [--json]`: proves replication
 * works end to end. Writes a marker row into the primary (in its own table,
 * `_pagecast_verify`, keeping the last 10 markers), then opens the replica
 * lazily and polls until the marker appears; prints the observed lag. Exits 1
 * when the marker does not show up in time (no replicator running, a wrong
 * URL, storage trouble).
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import { PagecastError } from "../errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { formatDuration } from "../storage/request-runner.js";
import { StoreClosedError } from "../storage/store-errors.js";
import { openReplica } from "../vfs/open-replica.js";
import type { Replica } from "../vfs/replica.js";
import { ReplicaQueryError } from "../vfs/replica-error.js";
import { readSqliteWasm } from "../vfs-node/node-wasm.js";
import { expectPositionals, parseArgs } from "./args.js";
import { type CliCommand, onFile } from "./cli-io.js";
import { DEADLINE_GRACE_MS, openCliStore, readTimeout } from "./cli-timeout.js";
import { commandSpec } from "./commands.js";
import { loadConfigFlag, resolveTarget } from "./config-target.js";

/** A failure of `pagecast verify` before it could wait (`VERIFY_DB_MISSING`). */
export class VerifyError extends PagecastError {}

/** The marker table (created on first use) and how many markers it keeps. */
const TABLE = "_pagecast_verify";
const KEEP = 10;
const POLL_MS = 100;

function writeMarker(path: string): { token: string; writtenAt: number } {
  if (!existsSync(path))
    throw new VerifyError("VERIFY_DB_MISSING", `database ${path} does not exist`);
  const db = new Database(path, { fileMustExist: true, timeout: 5000 });
  try {
    const token = randomUUID();
    const writtenAt = Date.now();
    db.transaction(() => {
      db.exec(
        `CREATE TABLE IF NOT EXISTS ${TABLE} (id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE, written_at INTEGER NOT NULL)`,
      );
      db.prepare(`INSERT INTO ${TABLE} (token, written_at) VALUES (?, ?)`).run(token, writtenAt);
      db.prepare(`DELETE FROM ${TABLE} WHERE id <= (SELECT max(id) FROM ${TABLE}) - ?`).run(KEEP);
    })();
    return { token, writtenAt };
  } finally {
    db.close();
  }
}

/** Waits `ms`, or until `signal` aborts; the abort listener goes with the wait (one per poll would pile up). */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" ? `${message} [${code}]` : message;
}

/** `pagecast verify`: exit 0 when the marker arrived, 1 on timeout or interruption. */
export const verify: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("verify")!.flags);
  const config = await loadConfigFlag(args.flags, io);
  const [dbPath, urlArg] = expectPositionals(args, config ? ["<db>"] : ["<db>", "<url>"]) as [
    string,
    string?,
  ];
  const target = config ? resolveTarget(dbPath, config) : resolveTarget(urlArg!, undefined);
  const url = target.url;
  const timeoutMs = readTimeout(args.flags);
  const json = args.flags.json === true;

  const { token, writtenAt } = await onFile(dbPath, async () => writeMarker(dbPath));
  const deadline = timeoutMs > 0 ? writtenAt + timeoutMs : Number.POSITIVE_INFINITY;
  if (!json) io.stderr(`marker ${token} written to ${dbPath}; waiting for ${url}\n`);

  let store: ObjectStore | undefined;
  let replica: Replica | undefined;
  let lastProblem: string | undefined;
  let hung: string | undefined;
  // Just after the deadline the store closes: a storage call still waiting ends at once.
  const stopAt =
    timeoutMs > 0
      ? setTimeout(
          () => {
            const since = store?.health?.()?.oldestInFlightSince;
            if (since) {
              hung = `storage: a request got no answer for ${formatDuration(Date.now() - since.getTime())}`;
            }
            void store?.close();
          },
          Math.max(0, deadline - Date.now()) + DEADLINE_GRACE_MS,
        )
      : undefined;
  try {
    // Storage operations get what is left of the command's time.
    store = await openCliStore(
      url,
      io,
      timeoutMs > 0 ? Math.max(1, deadline - Date.now()) : 0,
      target.credentials,
    );
    while (!io.signal.aborted) {
      try {
        // Lazily: the replica may not exist until the writer's first upload.
        replica ??= await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 0 });
        const rows = await replica.values(`SELECT written_at FROM ${TABLE} WHERE token = ?`, [
          token,
        ]);
        if (rows.length > 0) {
          const seenAt = Date.now();
          const st = replica.status();
          const lagMs = seenAt - writtenAt;
          if (json) {
            io.stdout(
              `${JSON.stringify({ ok: true, token, lagMs, txid: st.txid, url: st.url })}\n`,
            );
          } else {
            io.stdout(
              `ok: marker visible on ${st.url} after ${(lagMs / 1000).toFixed(2)} s (TXID ${st.txid})\n`,
            );
          }
          return 0;
        }
        lastProblem = undefined;
      } catch (err) {
        // Not yet replicated (no table yet), no replica yet, or storage trouble: keep trying.
        if (
          !(err instanceof ReplicaQueryError && err.code === "SQLITE_ERROR") &&
          !(err instanceof StoreClosedError)
        ) {
          lastProblem = describeError(err);
        }
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())), io.signal);
    }
    const storageError = store?.health?.()?.lastError;
    lastProblem ??= hung ?? (storageError ? `storage: ${storageError.reason}` : undefined);
    const st = replica?.status();
    const where = st
      ? `the replica is at TXID ${st.txid}${st.commitTime ? ` (committed ${st.commitTime.toISOString()})` : ""}`
      : "no replica could be opened";
    const reason = io.signal.aborted ? "interrupted" : `not visible after ${timeoutMs / 1000} s`;
    if (json) {
      io.stdout(
        `${JSON.stringify({ ok: false, token, reason, txid: st?.txid ?? null, lastError: lastProblem ?? null })}\n`,
      );
    } else {
      io.stderr(
        `pagecast verify: marker ${reason}: ${where}${lastProblem ? `; last error: ${lastProblem}` : ""}. ` +
          `Is a replicator running for ${dbPath}?\n`,
      );
    }
    return 1;
  } finally {
    clearTimeout(stopAt);
    await store?.close();
    await replica?.close();
  }
};
