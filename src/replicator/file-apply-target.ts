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
  /**
   * Coalesced writes that may be in flight at once (default 1: each waits for
   * the previous one). More let the caller go on producing pages while the
   * disk writes (write-behind); a write overlapping one in flight waits for
   * it, and `truncate()`, `read()` and `flush()` wait for all, so the file
   * always ends up as written in order.
   */
  writesInFlight?: number;
  /**
   * Start an `fdatasync` in the background after every this many bytes
   * written (default 0: never). The kernel otherwise holds a large restore's
   * pages dirty in memory until the final sync, which then waits for all of
   * them with the CPUs idle; syncing along the way overlaps the disk writes
   * with the decoding. At most one runs at a time; a failure surfaces at the
   * next write or `flush()`.
   */
  syncEvery?: number;
}

/** An {@link ApplyTarget} over a file, with an explicit flush of coalesced writes. */
export interface FileApplyTarget extends ApplyTarget {
  write(offset: number, bytes: Uint8Array): Promise<void>;
  truncate(size: number): Promise<void>;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Writes any coalesced bytes to the file (a no-op without `writeBuffer`). */
  flush(): Promise<void>;
  /**
   * Counts `bytes` written to the file by others (restore's decode threads
   * write pages themselves) toward `syncEvery`.
   */
  countWritten(bytes: number): void;
}

/** Wraps an open file handle; writes loop until complete (the OS may write partially). */
export function fileApplyTarget(
  handle: FileHandle,
  options: FileApplyTargetOptions = {},
): FileApplyTarget {
  const capacity = Math.max(0, Math.floor(options.writeBuffer ?? 0));
  const maxInFlight = Math.max(1, Math.floor(options.writesInFlight ?? 1));
  let buffer: Uint8Array | undefined;
  /** File offset of `buffer[0]`, and how many bytes of `buffer` are pending. */
  let start = 0;
  let pending = 0;
  /** Writes under way, oldest first, with the byte ranges they cover. */
  const inFlight: { done: Promise<void>; start: number; end: number }[] = [];
  const spare: Uint8Array[] = [];
  const syncEvery = Math.max(0, Math.floor(options.syncEvery ?? 0));
  /** Bytes written since the last background sync started, and the one under way. */
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  let syncError: { error: unknown } | undefined;
  const throwSyncError = () => {
    if (syncError) throw syncError.error;
  };
  /** After a write of `n` bytes: starts a background sync once `syncEvery` bytes are unsynced. */
  const maybeSync = (n: number) => {
    if (syncEvery === 0) return;
    unsynced += n;
    if (unsynced < syncEvery || syncing) return;
    unsynced = 0;
    syncing = handle.datasync().then(
      () => {
        syncing = undefined;
      },
      (error: unknown) => {
        syncing = undefined;
        syncError ??= { error };
      },
    );
  };

  const writeAll = async (offset: number, bytes: Uint8Array) => {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
  };
  /** Waits until at most `n` writes are under way (a failed one throws here). */
  const settle = async (n: number) => {
    while (inFlight.length > n) await inFlight.shift()!.done;
  };
  /** Waits for the writes under way that overlap [from, to). */
  const settleOverlapping = async (from: number, to: number) => {
    let last = -1;
    for (let i = 0; i < inFlight.length; i++) {
      if (inFlight[i]!.start < to && from < inFlight[i]!.end) last = i;
    }
    if (last >= 0) await settle(inFlight.length - last - 1);
  };
  /** Starts writing the coalesced bytes; returns once no more than allowed are under way. */
  const writeOut = async () => {
    if (pending === 0 || buffer === undefined) return;
    const bytes = buffer;
    const n = pending;
    const at = start;
    // Cleared first: after a failed write the target is inconsistent anyway
    // (the applier refuses further files), and no stale bytes get re-sent.
    pending = 0;
    buffer = undefined;
    // An earlier write of the same bytes must land first.
    await settleOverlapping(at, at + n);
    const done = writeAll(at, bytes.subarray(0, n)).then(() => {
      spare.push(bytes);
      maybeSync(n);
    });
    // Observed by settle(); never unhandled meanwhile.
    done.catch(() => {});
    inFlight.push({ done, start: at, end: at + n });
    await settle(maxInFlight - 1);
  };
  const flush = async () => {
    await writeOut();
    await settle(0);
    throwSyncError();
  };

  return {
    async write(offset, bytes) {
      throwSyncError();
      if (pending > 0 && offset === start + pending && pending + bytes.length <= capacity) {
        // Copied: the applier's page buffers may alias decoder chunks it reuses.
        (buffer as Uint8Array).set(bytes, pending);
        pending += bytes.length;
        return;
      }
      await writeOut();
      if (bytes.length * 2 > capacity) {
        await settle(0);
        await writeAll(offset, bytes);
        maybeSync(bytes.length);
        return;
      }
      buffer = spare.pop() ?? new Uint8Array(capacity);
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
    countWritten(bytes) {
      maybeSync(bytes);
    },
  };
}
