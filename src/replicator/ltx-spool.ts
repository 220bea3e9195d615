/**
 * A write-once temporary file that holds an encoded LTX file too large to
 * keep in memory (a snapshot of a big database) between encoding and upload.
 *
 * Encoding must finish before the upload starts: the snapshot is checked
 * for consistency (the WAL generation did not change while it was read)
 * only at its end, and a failed upload is retried later with the very same
 * bytes, when the database has moved on. The file lives next to the
 * database (where space was planned, unlike a possibly RAM-backed /tmp) and
 * is unlinked right after creation where the OS allows it, so a crash
 * leaves nothing behind; its descriptor is closed by `dispose()` (or, as a
 * last resort, when the spool is garbage collected).
 */
import { randomBytes } from "node:crypto";
import { closeSync, openSync, read, unlinkSync, writevSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ReplicatorError } from "./replicator-error.js";

const readAsync = promisify(read);

/** Bytes gathered before one write (fewer system calls for small page frames). */
const WRITE_BATCH = 1 << 20;
/** Bytes per chunk when the spool is read back. */
const READ_CHUNK = 1 << 20;

const finalizer = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing to release.
  }
});

/** A temp file written once (append, then `finish`) and read back any number of times. */
export class LtxSpool implements AsyncIterable<Uint8Array> {
  #fd: number | undefined;
  /** Path while the file still has a name (unlinking failed or is deferred). */
  #path: string | undefined;
  #size = 0;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #finished = false;

  /** Creates an empty spool file in `dir`. */
  constructor(dir: string) {
    const path = join(dir, `.pagecast-spool-${randomBytes(8).toString("hex")}.tmp`);
    const fd = openSync(path, "wx+", 0o600);
    this.#fd = fd;
    this.#path = path;
    try {
      unlinkSync(path);
      this.#path = undefined;
    } catch {
      // Some systems refuse to unlink an open file: it goes on dispose().
    }
    finalizer.register(this, fd, this);
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.#size + this.#pendingBytes;
  }

  /** Appends bytes (kept by reference until the next write: do not reuse them). */
  append(chunk: Uint8Array): void {
    if (this.#finished) throw new ReplicatorError("INVALID_STATE", "spool is finished");
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes >= WRITE_BATCH) this.#flush();
  }

  /** Writes what is pending; the spool is complete and readable afterwards. */
  finish(): void {
    this.#flush();
    this.#finished = true;
  }

  #flush(): void {
    const fd = this.#openFd();
    let buffers = this.#pending;
    let left = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    while (left > 0) {
      const written = writevSync(fd, buffers, this.#size);
      this.#size += written;
      left -= written;
      if (left === 0) break;
      // A short write: continue after the bytes that made it.
      let skip = written;
      const rest: Uint8Array[] = [];
      for (const b of buffers) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      buffers = rest;
    }
  }

  #openFd(): number {
    if (this.#fd === undefined) throw new ReplicatorError("INVALID_STATE", "spool is disposed");
    return this.#fd;
  }

  /** Reads the whole spool from the start, one chunk at a time (each chunk reuses one buffer). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (!this.#finished) throw new ReplicatorError("INVALID_STATE", "spool is not finished");
    const buf = new Uint8Array(Math.min(READ_CHUNK, Math.max(1, this.#size)));
    let pos = 0;
    while (pos < this.#size) {
      const want = Math.min(buf.length, this.#size - pos);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await readAsync(this.#openFd(), buf, got, want - got, pos + got);
        if (bytesRead === 0)
          throw new ReplicatorError("INVALID_STATE", "snapshot spool file ended early");
        got += bytesRead;
      }
      pos += want;
      yield buf.subarray(0, want);
    }
  }

  /** Closes (and if still named, removes) the file. Idempotent. */
  dispose(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    this.#pending = [];
    this.#pendingBytes = 0;
    finalizer.unregister(this);
    try {
      closeSync(fd);
    } finally {
      if (this.#path !== undefined) {
        try {
          unlinkSync(this.#path);
        } catch {
          // Gone already.
        }
        this.#path = undefined;
      }
    }
  }
}
