/** A database file on disk as the target of `LtxApplier` (used by `ltx apply` and restore). */
import type { FileHandle } from "node:fs/promises";
import type { ApplyTarget } from "../format/index.js";

/** Wraps an open file handle; writes loop until complete (the OS may write partially). */
export function fileApplyTarget(handle: FileHandle): ApplyTarget {
  return {
    async write(offset, bytes) {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await handle.write(
          bytes,
          done,
          bytes.length - done,
          offset + done,
        );
        done += bytesWritten;
      }
    },
    async truncate(size) {
      await handle.truncate(size);
    },
    async read(offset, length) {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buf.subarray(0, done);
    },
  };
}
