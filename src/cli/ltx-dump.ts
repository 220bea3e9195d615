import { open } from "node:fs/promises";
import { decodeLtxHeader, LTX_HEADER_SIZE, readLtxPageIndex } from "../format/index.js";
import { expectPositionals, parseArgs } from "./args.js";
import { type CliCommand, onFile } from "./cli-io.js";
import { commandSpec } from "./commands.js";
import { fileRangeReader } from "./file-range-reader.js";

/** Checksums and node IDs as fixed-width hex, like the Go `ltx dump`. */
function hex64(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/**
 * `pagecast ltx dump <file.ltx>`: header, trailer and page index as JSON.
 * Reads only the header and the tail, so it is instant on large files; use
 * `ltx verify` to check the page data.
 */
export const ltxDump: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("ltx dump")!.flags);
  const [file] = expectPositionals(args, ["<file.ltx>"]) as [string];
  const handle = await open(file, "r");
  return onFile(file, async () => {
    const reader = fileRangeReader(handle);
    const { bytes } = await reader.read({ offset: 0, length: LTX_HEADER_SIZE });
    const header = decodeLtxHeader(bytes);
    const index = await readLtxPageIndex(reader);
    const out = {
      header: {
        ...header,
        preApplyChecksum: hex64(header.preApplyChecksum),
        nodeID: hex64(header.nodeID),
        time: new Date(header.timestamp).toISOString(),
      },
      trailer: {
        postApplyChecksum: hex64(index.trailer.postApplyChecksum),
        fileChecksum: hex64(index.trailer.fileChecksum),
      },
      fileSize: index.fileSize,
      indexOffset: index.indexOffset,
      indexSize: index.indexSize,
      pages: index.entries.toArray(),
    };
    io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }).finally(() => handle.close());
};
