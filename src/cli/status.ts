/**
 * `pagecast status <url>... [--json] [--timeout 30s]`: opens each replica
 * (lazily: no page is read) and prints its status as a table (TXID, last
 * commit, lag, health in color on a terminal, cache, requests) or as JSON for
 * scripts. Replicas are inspected in parallel, each within `--timeout`.
 *
 * Health combines the replica's freshness with what the writer published
 * about itself in the head object: a writer that detected a divergence (the
 * replica did not equal the database) shows `diverged` until the snapshot
 * repairing it is published, whatever the lag.
 */
import { configuredDatabases } from "../config/configured-databases.js";
import { type HeadWriterHealth, readHeadObject } from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { NotFoundError } from "../storage/store-errors.js";
import { openReplica } from "../vfs/open-replica.js";
import type { Replica } from "../vfs/replica.js";
import type { ReplicaHealth, ReplicaStatus } from "../vfs/replica-core.js";
import { readSqliteWasm } from "../vfs-node/node-wasm.js";
import { parseArgs } from "./args.js";
import { type CliCommand, type CliIo, UsageError, useColor } from "./cli-io.js";
import { openCliStore, readTimeout, withDeadline } from "./cli-timeout.js";
import { commandSpec } from "./commands.js";
import { type CliTarget, databaseTarget, loadConfigFlag, resolveTarget } from "./config-target.js";

/** The replica's health, or `diverged` when its writer says the replica does not equal the database. */
type Health = ReplicaHealth | "diverged";

type Outcome = { url: string; db?: string } & (
  | {
      health: Health;
      status: ReplicaStatus;
      /** What the writer published about its health in the head (absent: nothing to report). */
      writer: HeadWriterHealth | null;
    }
  | { error: { message: string; code: string | undefined } }
);

const COLORS: Record<Health, string> = {
  healthy: "\x1b[32m",
  lagging: "\x1b[33m",
  stale: "\x1b[31m",
  diverged: "\x1b[31m",
  unknown: "\x1b[2m",
};

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

function seconds(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.round((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.round((s % 86_400) / 3600)}h`;
}

async function inspect(target: CliTarget, io: CliIo, timeoutMs: number): Promise<Outcome> {
  const { url } = target;
  const db = target.database ? { db: target.database.path } : {};
  let store: ObjectStore | undefined;
  let replica: Replica | undefined;
  let abandoned = false;
  try {
    store = await openCliStore(url, io, timeoutMs, target.credentials);
    const opened = store;
    return await withDeadline(
      timeoutMs,
      `status of ${opened.url}`,
      () => opened,
      async () => {
        replica = await openReplica({ store: opened, wasm: readSqliteWasm });
        if (abandoned) await replica.close();
        const status = replica.status();
        const writer = await writerHealth(opened);
        const health: Health = writer?.health === "diverged" ? "diverged" : status.health;
        return { url, ...db, health, status, writer };
      },
      async () => {
        abandoned = true;
        await opened.close();
        await replica?.close();
      },
      io.signal,
    );
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    return {
      url,
      ...db,
      error: {
        message: err instanceof Error ? err.message : String(err),
        code: typeof code === "string" ? code : undefined,
      },
    };
  } finally {
    await replica?.close();
    await store?.close();
  }
}

/** The head's `writer` field (null when absent, or when there is no pagecast head). */
async function writerHealth(store: ObjectStore): Promise<HeadWriterHealth | null> {
  try {
    const read = await readHeadObject(store);
    return read.notModified ? null : (read.head.writer ?? null);
  } catch (err) {
    // No head, or one this version cannot parse (the replica reads the LTX files then).
    if (
      err instanceof NotFoundError ||
      (err as { code?: unknown }).code === "HEAD_OBJECT_INVALID"
    ) {
      return null;
    }
    throw err;
  }
}

function row(o: Outcome, now: number, color: boolean): string[] {
  const first = o.db !== undefined ? [o.db] : [];
  if ("error" in o) {
    return [
      ...first,
      o.url,
      "-",
      "-",
      "-",
      "error",
      "-",
      "-",
      `${o.error.message}${o.error.code ? ` [${o.error.code}]` : ""}`,
    ];
  }
  const s = o.status;
  const committed = s.commitTime
    ? `${s.commitTime.toISOString()} (${seconds(Math.max(0, (now - s.commitTime.getTime()) / 1000))} ago)`
    : "-";
  const health = color ? `${COLORS[o.health]}${o.health}\x1b[0m` : o.health;
  const c = s.cache;
  const lookups = c.hits + c.misses;
  const cache = `${c.entries} pages, ${bytes(c.bytes)}${lookups > 0 ? `, ${Math.round((100 * c.hits) / lookups)}% hits` : ""}`;
  let requests = 0;
  let received = 0;
  const kinds: string[] = [];
  for (const [kind, t] of Object.entries(s.requests)) {
    requests += t.requests;
    received += t.bytes;
    if (t.requests > 0) kinds.push(`${kind} ${t.requests}`);
  }
  return [
    ...first,
    s.url,
    s.txid === null ? "-" : String(s.txid),
    committed,
    s.lagSeconds === null ? "-" : seconds(s.lagSeconds),
    health,
    cache,
    `${requests} (${kinds.join(", ")}), ${bytes(received)}`,
    s.lastError
      ? `${s.lastError.message}${s.lastError.code ? ` [${s.lastError.code}]` : ""}`
      : o.writer?.health === "diverged"
        ? `writer: ${o.writer.lastDivergence} (repair snapshot pending)`
        : "",
  ];
}

/** Visible width (ANSI color codes take none). */
function width(text: string): number {
  return text.replace(/\x1b\[[0-9;]*m/g, "").length;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => width(r[i]!))));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell + " ".repeat(widths[i]! - width(cell))))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** `pagecast status`: exit 0 when every replica opened, 1 otherwise. */
export const status: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("status")!.flags);
  const names = args.positionals;
  const timeoutMs = readTimeout(args.flags);
  const config = await loadConfigFlag(args.flags, io);
  let targets: CliTarget[];
  if (config && names.length === 0) {
    targets = (await configuredDatabases(config)).map(databaseTarget);
    if (targets.length === 0)
      throw new UsageError(`${config.file} names no database that exists yet`);
  } else {
    if (names.length === 0) throw new UsageError("missing <url>");
    targets = names.map((n) => resolveTarget(n, config));
  }
  const outcomes = await Promise.all(targets.map((t) => inspect(t, io, timeoutMs)));
  if (args.flags.json) {
    io.stdout(`${JSON.stringify(outcomes, null, 2)}\n`);
  } else {
    const head = [
      ...(config ? ["DATABASE"] : []),
      "URL",
      "TXID",
      "LAST COMMIT",
      "LAG",
      "HEALTH",
      "CACHE",
      "REQUESTS",
      "ERROR",
    ];
    const now = Date.now();
    io.stdout(`${table([head, ...outcomes.map((o) => row(o, now, useColor(io)))])}\n`);
  }
  return outcomes.some((o) => "error" in o) ? 1 : 0;
};
