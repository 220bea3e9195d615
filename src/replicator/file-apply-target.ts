/** A database file on disk as the target of `LtxApplier` (used by `ltx apply` and restore). */
import type { FileHandle } from "node:fs/promises";
import type { ApplyTarget } from "../format/index.js";

/** Options of {@link fileApplyTarget}. */
export interface FileApplyTargetOptions {
  /**
   * Coalesce contiguous writes into one write of up to this many bytes
   * (default 0: every write goes straight to the file). The applier writes one
   * page at a time, in page order for snapshots, so a restore spends most of
   * its write time in per-page system calls without it. Buffered bytes reach
   * the file at the next non-contiguous write, `truncate()`, `read()` or
   * `flush()`; `LtxApplier` truncates at the end of every file it applies, so
   * after each `apply()` the file is complete.
   */
  writeBuffer?: number;
}

/** An {@link ApplyTarget} over a file, with an explicit flush of coalesced writes. */
export interface FileApplyTarget extends ApplyTarget {
  write(offset: number, bytes: Uint8Array): Promise<void>;
  truncate(size: number): Promise<void>;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Writes any coalesced bytes to the file (a no-op without `writeBuffer`). */
  flush(): Promise<void>;
}

/** Wraps an open file handle; writes loop until complete (the OS may write partially). */
export function fileApplyTarget(
  handle: FileHandle,
  options: FileApplyTargetOptions = {},
): FileApplyTarget {
  const capacity = Math.max(0, Math.floor(options.writeBuffer ?? 0));
  let buffer: Uint8Array | undefined;
  /** File offset of `buffer[0]`, and how many bytes of `buffer` are pending. */
  let start = 0;
  let pending = 0;

  const writeAll = async (offset: number, bytes: Uint8Array) => {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
  };
  const flush = async () => {
    if (pending === 0 || buffer === undefined) return;
    const n = pending;
    // Cleared first: after a failed write the target is inconsistent anyway
    // (the applier refuses further files), and no stale bytes get re-sent.
    pending = 0;
    await writeAll(start, buffer.subarray(0, n));
  };

  return {
    async write(offset, bytes) {
      if (pending > 0 && offset === start + pending && pending + bytes.length <= capacity) {
        // Copied: the applier's page buffers may alias decoder chunks it reuses.
        (buffer as Uint8Array).set(bytes, pending);
        pending += bytes.length;
        return;
      }
      await flush();
      if (bytes.length * 2 > capacity) {
        await writeAll(offset, bytes);
        return;
      }
      buffer ??= new Uint8Array(capacity);
      buffer.set(bytes, 0);
      start = offset;
      pending = bytes.length;
    },
    async truncate(size) {
      await flush();
      await handle.truncate(size);
    },
    async read(offset, length) {
      await flush();
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buf.subarray(0, done);
    },
    flush,
  };
}
