/**
 * `pagecast ltx list <url> [--json] [--timeout 30s]`: the LTX files of a
 * replica per level, with TXIDs, sizes and times. For a directory (file://),
 * `--json` also gives each file's path: LTX files sit in Litestream's
 * `ltx/<level>/` layout (or the `%04x/` one of earlier pagecast versions),
 * not at their store keys.
 */
import { listAllLevels } from "../layout/index.js";
import { FileStore } from "../storage/file-store.js";
import { expectPositionals, parseArgs } from "./args.js";
import type { CliCommand } from "./cli-io.js";
import { openCliStore, readTimeout, withDeadline } from "./cli-timeout.js";
import { commandSpec } from "./commands.js";
import { loadConfigFlag, resolveTarget } from "./config-target.js";

/** `pagecast ltx list`. */
export const ltxList: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("ltx list")!.flags);
  const config = await loadConfigFlag(args.flags, io);
  const [source] = expectPositionals(args, [config ? "<db>" : "<url>"]) as [string];
  const timeoutMs = readTimeout(args.flags);
  const target = resolveTarget(source, config);
  const store = await openCliStore(target.url, io, timeoutMs, target.credentials);
  try {
    const files = await withDeadline(
      timeoutMs,
      `ltx list of ${store.url}`,
      () => store,
      () => listAllLevels(store),
      () => store.close(),
      io.signal,
    );
    if (args.flags.json === true) {
      const rows = [];
      for (const f of files) {
        const path = store instanceof FileStore ? await store.filePath(f.key) : undefined;
        rows.push({
          ...f,
          lastModified: f.lastModified.toISOString(),
          ...(path !== undefined ? { path } : {}),
        });
      }
      io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    if (files.length === 0) {
      io.stdout(`no LTX files under ${store.url}\n`);
      return 0;
    }
    io.stdout(
      `${"level".padEnd(6)}${"min TXID".padStart(18)}${"max TXID".padStart(18)}${"size".padStart(12)}  created\n`,
    );
    let level = -1;
    for (const f of files) {
      if (f.level !== level) {
        level = f.level;
        const n = files.filter((x) => x.level === level).length;
        io.stdout(
          `# level ${level}${level === 9 ? " (snapshots)" : ""}: ${n} file${n === 1 ? "" : "s"}\n`,
        );
      }
      io.stdout(
        `${String(f.level).padEnd(6)}${f.minTXID.toString(16).padStart(16, "0").padStart(18)}${f.maxTXID
          .toString(16)
          .padStart(16, "0")
          .padStart(18)}${String(f.size).padStart(12)}  ${f.lastModified.toISOString()}\n`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
};
