/**
 * `pagecast query <url> "<sql>" [--at <time>] [--json] [--timeout 30s]`: runs
 * SQL on a replica straight from storage, fetching only the pages the query
 * touches (never the whole database), within the `--timeout` deadline.
 */
import { openReplica } from "../vfs/open-replica.js";
import type { Replica, ReplicaOptions } from "../vfs/replica.js";
import type { SqlValue } from "../vfs/replica-connection.js";
import { readTimeString } from "../vfs/time-string.js";
import { readSqliteWasm } from "../vfs-node/node-wasm.js";
import { expectPositionals, parseArgs } from "./args.js";
import { type CliCommand, UsageError } from "./cli-io.js";
import { openCliStore, readTimeout, withDeadline } from "./cli-timeout.js";
import { commandSpec } from "./commands.js";
import { loadConfigFlag, resolveTarget } from "./config-target.js";

/** Parses `--at`: an ISO time with a zone, "N <unit>s ago", or `txid:N` for an exact transaction. */
function parseAt(text: string): NonNullable<ReplicaOptions["at"]> {
  const m = /^txid:(\d+)$/i.exec(text.trim());
  if (m) {
    const txid = Number(m[1]);
    if (!Number.isSafeInteger(txid) || txid < 1)
      throw new UsageError("--at txid:N needs a TXID >= 1");
    return { txid };
  }
  // Strict and zone-independent (never Date.parse), like openReplica's own reading.
  const t = readTimeString(text, Date.now());
  if (typeof t !== "number") {
    throw new UsageError(
      `--at must be a time like 2025-01-31T12:00:00Z, "2 hours ago" or txid:N (${t.message})`,
    );
  }
  return new Date(t);
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** JSON form of a value: BLOBs as hex strings, integers beyond 2^53 as decimal strings. */
function jsonValue(v: SqlValue): unknown {
  if (v instanceof Uint8Array) return hex(v);
  if (typeof v === "bigint") return v.toString();
  return v;
}

/** Text form of a value, as the sqlite3 shell prints it. */
function textValue(v: SqlValue): string {
  if (v === null) return "NULL";
  if (v instanceof Uint8Array) return `x'${hex(v)}'`;
  return String(v);
}

/** Runs the query command; returns the exit code. */
export const query: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("query")!.flags);
  const config = await loadConfigFlag(args.flags, io);
  const [source, sql] = expectPositionals(args, [config ? "<db>" : "<url>", "<sql>"]) as [
    string,
    string,
  ];
  const at = typeof args.flags.at === "string" ? parseAt(args.flags.at) : undefined;
  const timeoutMs = readTimeout(args.flags);
  const target = resolveTarget(source, config);
  const store = await openCliStore(target.url, io, timeoutMs, target.credentials);
  let replica: Replica | undefined;
  let abandoned = false;
  // Closing the store first ends the requests a query waits on; then the replica can close.
  const abandon = async () => {
    abandoned = true;
    await store.close();
    await replica?.close();
  };
  try {
    const { columns, rows, opened } = await withDeadline(
      timeoutMs,
      `query on ${store.url}`,
      () => store,
      async () => {
        const opened = await openReplica({
          store,
          wasm: readSqliteWasm,
          ...(at !== undefined ? { at } : {}),
        });
        replica = opened;
        if (abandoned) await opened.close();
        return { ...(await opened.execute(sql)), opened };
      },
      abandon,
      io.signal,
    );
    if (args.flags.json) {
      const out = rows.map((row) =>
        Object.fromEntries(columns.map((c, i) => [c, jsonValue(row[i] ?? null)])),
      );
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else if (columns.length > 0) {
      const lines = [columns.join("|"), ...rows.map((row) => row.map(textValue).join("|"))];
      io.stdout(`${lines.join("\n")}\n`);
    }
    const st = opened.status();
    if (io.isTTY && !args.flags.json) {
      const pages = st.requests.page;
      io.stderr(
        `-- TXID ${st.txid ?? "?"}; ${pages.requests} page requests, ${pages.bytes} bytes\n`,
      );
    }
    return 0;
  } finally {
    await replica?.close();
    await store.close();
  }
};
