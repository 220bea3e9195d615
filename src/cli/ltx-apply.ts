import { createReadStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { decodeLtxHeader, LTX_HEADER_SIZE, LtxApplier, LtxError } from "../format/index.js";
import { growthJustified, maxFramesIn } from "../format/page-growth.js";
import { fileApplyTarget } from "../replicator/file-apply-target.js";
import { expectPositionals, parseArgs } from "./args.js";
import { type CliCommand, onFile } from "./cli-io.js";
import { commandSpec } from "./commands.js";
import { fileRangeReader } from "./file-range-reader.js";

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
    let pages = 0;
    for (const file of files) {
      const result = await onFile(file, async () => {
        await checkGrowth(file, pages);
        return applier.apply(createReadStream(file, { highWaterMark: 1 << 20 }));
      });
      pages = result.header.commit;
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

/**
 * The page count a file claims must be justified by the pages its size can
 * hold (as restore checks): the output is never extended to a claim the
 * file cannot back (a damaged or hostile header naming billions of pages).
 */
async function checkGrowth(file: string, fromPages: number): Promise<void> {
  const handle = await open(file, "r");
  try {
    const { bytes, totalSize } = await fileRangeReader(handle).read({
      offset: 0,
      length: LTX_HEADER_SIZE,
    });
    const header = decodeLtxHeader(bytes);
    if (!growthJustified(fromPages, header.commit, maxFramesIn(totalSize))) {
      throw new LtxError(
        "LTX_CORRUPT",
        `claims ${header.commit} pages, more than its ${totalSize} bytes can justify`,
      );
    }
  } finally {
    await handle.close();
  }
}
