/**
 * Per-key mutual exclusion for the file store: a promise chain per key within
 * the process, plus an exclusive-create lock file so that writers in other
 * processes sharing the directory are excluded too.
 *
 * Guarantee: among processes that use this store on one local file system,
 * at most one holds a key's lock, except after a holder died while holding it:
 * the lock is then taken over once older than `staleMs`, and two processes
 * taking over the same stale lock at the same instant could both proceed.
 * Network file systems without atomic exclusive create are not supported.
 */
import { createHash } from "node:crypto";
import { mkdir, open, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { abortableDelay } from "./request-runner.js";
import { StoreRequestError } from "./store-errors.js";

/** Options of `FileKeyLocks`. */
export interface FileKeyLockOptions {
  /** Age in ms after which a lock file is presumed left by a dead holder (default 10 000). */
  staleMs?: number;
  /** Longest wait for a lock in ms before failing retryably (default 30 000). */
  waitMs?: number;
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

/** Locks keyed by store key; lock files live in one directory. */
export class FileKeyLocks {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly staleMs: number;
  private readonly waitMs: number;

  constructor(
    private readonly directory: string,
    options: FileKeyLockOptions = {},
  ) {
    this.staleMs = options.staleMs ?? 10_000;
    this.waitMs = options.waitMs ?? 30_000;
  }

  /** Runs `fn` holding `key`'s lock, in this process and across processes. */
  async withLock<T>(
    key: string,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    try {
      await previous;
      const path = await this.acquireFile(key, signal);
      try {
        return await fn();
      } finally {
        await unlink(path).catch(() => {});
      }
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  private async acquireFile(key: string, signal: AbortSignal | undefined): Promise<string> {
    const name = createHash("sha256").update(key).digest("hex");
    const path = join(this.directory, `${name}.lock`);
    const deadline = Date.now() + this.waitMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        const handle = await open(path, "wx");
        await handle.close();
        return path;
      } catch (error) {
        if (isErrno(error, "ENOENT")) {
          await mkdir(this.directory, { recursive: true });
          continue;
        }
        if (!isErrno(error, "EEXIST")) throw error;
      }
      const info = await stat(path).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > this.staleMs) {
        await unlink(path).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) {
        throw new StoreRequestError(`lock for ${JSON.stringify(key)} is busy`, {
          retryable: true,
          serverCode: "LockBusy",
        });
      }
      await abortableDelay(Math.ceil(Math.random() * wait), signal);
    }
  }
}
