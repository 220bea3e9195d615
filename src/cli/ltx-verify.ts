import { createReadStream } from "node:fs";
import { PagecastError } from "../errors.js";
import { LtxDecoder } from "../format/index.js";
import { expectPositionals, parseArgs } from "./args.js";
import type { CliCommand } from "./cli-io.js";
import { commandSpec } from "./commands.js";

/** Decodes one file completely: structure, page frames, index and file checksum. */
export async function verifyLtxFile(path: string): Promise<{ pages: number; maxTXID: number }> {
  const decoder = new LtxDecoder(createReadStream(path, { highWaterMark: 1 << 20 }));
  const header = await decoder.readHeader();
  let pages = 0;
  for await (const _page of decoder.pages()) pages++;
  await decoder.finish();
  return { pages, maxTXID: header.maxTXID };
}

/** `pagecast ltx verify <file.ltx>...`: exit 1 when any file fails. */
export const ltxVerify: CliCommand = async (argv, io) => {
  const args = parseArgs(argv, commandSpec("ltx verify")!.flags);
  const files = expectPositionals(args, ["<file.ltx>"], true);
  let failures = 0;
  for (const file of files) {
    try {
      const { pages } = await verifyLtxFile(file);
      io.stdout(`ok ${file} (${pages} pages)\n`);
    } catch (err) {
      failures++;
      const reason =
        err instanceof PagecastError
          ? `${err.message} [${err.code}]`
          : err instanceof Error
            ? err.message
            : String(err);
      io.stdout(`FAIL ${file}: ${reason}\n`);
    }
  }
  return failures === 0 ? 0 : 1;
};
