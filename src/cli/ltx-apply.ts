import { createReadStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { LtxApplier } from "../format/index.js";
import { fileApplyTarget } from "../replicator/file-apply-target.js";
import { expectPositionals, parseArgs } from "./args.js";
import { type CliCommand, onFile } from "./cli-io.js";
import { commandSpec } from "./commands.js";

/**
 * `pagecast ltx apply <out.db> <file.ltx>...`: applies a snapshot followed by
 * contiguous incremental files, checking every checksum on the way. The
 * database appears atomically only once every file applied cleanly.
 */
export const ltxApply: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("ltx apply")!.flags);
  const [outPath, ...files] = expectPositionals(args, ["<out.db>", "<file.ltx>"], true) as [
    string,
    ...string[],
  ];
  const tmpPath = `${outPath}.tmp-${process.pid}`;
  const handle = await open(tmpPath, "w+");
  try {
    // Buffered: the applier writes page by page, and one syscall per page dominates otherwise.
    const target = fileApplyTarget(handle, { writeBuffer: 1 << 20 });
    const applier = new LtxApplier(target);
    for (const file of files) {
      const result = await onFile(file, () =>
        applier.apply(createReadStream(file, { highWaterMark: 1 << 20 })),
      );
      io.stdout(
        `applied ${file}: TXID ${result.header.minTXID}-${result.header.maxTXID}, ${result.pageCount} pages\n`,
      );
    }
    await target.flush();
    await handle.sync();
    await handle.close();
    await rename(tmpPath, outPath);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmpPath, { force: true });
    throw err;
  }
  return 0;
};
