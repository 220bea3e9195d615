import { open, rename, rm, stat } from "node:fs/promises";
import {
  DatabaseChecksum,
  type LtxCompat,
  LtxEncoder,
  LtxError,
  lockPgno,
  resolveLtxCompat,
} from "../format/index.js";
import { parseSqliteHeader, SQLITE_HEADER_SIZE } from "../sqlite/database-header.js";
import { expectPositionals, integerFlag, parseArgs } from "./args.js";
import { type CliCommand, onFile, UsageError } from "./cli-io.js";
import { commandSpec } from "./commands.js";

/** Result of snapshotting a database file. */
export interface EncodeResult {
  pageSize: number;
  pageCount: number;
  bytes: number;
  postApplyChecksum: bigint;
}

/**
 * Writes a snapshot LTX file (MinTXID 1, MaxTXID `txid`) of a SQLite database
 * file, streaming page by page so memory stays flat whatever the size. The
 * output appears atomically (temp file + rename).
 */
export async function encodeDatabaseFile(
  dbPath: string,
  outPath: string,
  options: {
    txid?: number;
    timestamp?: number;
    /** Page encoding (default `"0.5.2"`; `"0.5.1"` for Litestream 0.5.0-0.5.15). */
    compat?: LtxCompat;
  } = {},
): Promise<EncodeResult> {
  const input = await open(dbPath, "r");
  const tmpPath = `${outPath}.tmp-${process.pid}`;
  let output: Awaited<ReturnType<typeof open>> | undefined;
  try {
    const head = new Uint8Array(SQLITE_HEADER_SIZE);
    await input.read(head, 0, SQLITE_HEADER_SIZE, 0);
    const info = parseSqliteHeader(head);
    const { size } = await input.stat();
    // The in-header size is authoritative when valid; otherwise SQLite itself uses the file size.
    const pageCount = info.sizeValid ? info.pageCount : Math.floor(size / info.pageSize);
    const encoder = new LtxEncoder(
      {
        pageSize: info.pageSize,
        commit: pageCount,
        minTXID: 1,
        maxTXID: options.txid ?? 1,
        timestamp: options.timestamp ?? Date.now(),
      },
      options.compat !== undefined ? { compat: options.compat } : {},
    );
    output = await open(tmpPath, "w");
    await output.write(encoder.headerBytes());
    const checksum = new DatabaseChecksum();
    const lock = lockPgno(info.pageSize);
    const page = new Uint8Array(info.pageSize);
    for (let pgno = 1; pgno <= pageCount; pgno++) {
      if (pgno === lock) continue;
      const { bytesRead } = await input.read(page, 0, info.pageSize, (pgno - 1) * info.pageSize);
      // A short read means the file is shorter than its header claims: pad like SQLite would see it.
      if (bytesRead < info.pageSize) page.fill(0, bytesRead);
      checksum.add(pgno, page);
      await output.write(encoder.encodePage(pgno, page));
    }
    await output.write(encoder.finish(checksum.value));
    await output.sync();
    await output.close();
    output = undefined;
    await rename(tmpPath, outPath);
    return {
      pageSize: info.pageSize,
      pageCount,
      bytes: (await stat(outPath)).size,
      postApplyChecksum: checksum.value,
    };
  } catch (err) {
    await output?.close().catch(() => {});
    await rm(tmpPath, { force: true });
    throw err;
  } finally {
    await input.close();
  }
}

/** `pagecast ltx encode <db> <out.ltx> [--txid N] [--ltx-compat 0.5.1]` */
export const ltxEncode: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("ltx encode")!.flags);
  const [dbPath, outPath] = expectPositionals(args, ["<db>", "<out.ltx>"]) as [string, string];
  const txid = integerFlag(args.flags, "txid", 1, 1);
  let compat: LtxCompat;
  try {
    compat = resolveLtxCompat(args.flags["ltx-compat"]);
  } catch (err) {
    if (err instanceof LtxError) throw new UsageError(`--ltx-compat: ${err.message}`);
    throw err;
  }
  const wal = await stat(`${dbPath}-wal`).catch(() => undefined);
  if (wal && wal.size > 0) {
    // Only the main file is read: frames still in the WAL would be missing from the snapshot.
    io.stderr(`warning: ${dbPath}-wal is not empty; checkpoint first to include its changes\n`);
  }
  const result = await onFile(dbPath, () => encodeDatabaseFile(dbPath, outPath, { txid, compat }));
  io.stdout(
    `wrote ${outPath}: ${result.pageCount} pages of ${result.pageSize} bytes, TXID 1-${txid}, ${result.bytes} bytes\n`,
  );
  return 0;
};
