import type { FileHandle } from "node:fs/promises";
import type { RangeReader } from "../format/index.js";

/** A local file as a {@link RangeReader}, so CLI tools read LTX tails the same way the VFS does. */
export function fileRangeReader(handle: FileHandle): RangeReader {
  return {
    async read(range) {
      const totalSize = (await handle.stat()).size;
      const offset =
        "suffix" in range
          ? Math.max(0, totalSize - range.suffix)
          : Math.min(range.offset, totalSize);
      const length =
        "suffix" in range ? totalSize - offset : Math.min(range.length, totalSize - offset);
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return { bytes: bytes.subarray(0, done), offset, totalSize };
    },
  };
}
