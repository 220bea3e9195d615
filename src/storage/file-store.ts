/**
 * File-system `ObjectStore` (Node only): one file per key under a root
 * directory. LTX keys (`<level %04x>/<min>-<max>.ltx`, the S3 layout) are
 * stored where Litestream's *file* replica client keeps them,
 * `ltx/<level in decimal>/<min>-<max>.ltx`, so Litestream can restore a
 * pagecast file replica and pagecast reads Litestream's; listings map them
 * back to their keys (see `file-layout.ts`). LTX files get the header's commit
 * time as their mtime, which Litestream's file client reads as the file's
 * creation time. Every other key (the head object, the lease, skeletons) is
 * a file at its key path next to `ltx/`, where Litestream never looks.
 * Copying a replica to a bucket therefore means renaming `ltx/<n>/` to `%04x/`.
 *
 * Directories written by earlier pagecast versions hold LTX files at their
 * key path (`0000/...`, the "legacy layout"). Reads find a key in either
 * layout. The first LTX put under a directory moves its legacy files into the
 * Litestream layout (link, then unlink: at every moment the file is in at
 * least one place, and readers look in the Litestream layout again after a
 * miss in the legacy one), so a writer continuing such a replica never leaves
 * its history split between the two layouts, where Litestream would see only
 * part of it. Readers of earlier versions do not know the Litestream layout:
 * upgrade them before the writer.
 *
 * Guarantees:
 * - Writes are atomic: the body goes to a temp file (fsynced by default) that
 *   is renamed or linked into place; readers see the old or the new object.
 * - Create-only puts (`ifNoneMatch: "*"`) use `link()`, which fails if the key
 *   exists, so exactly one creator wins even across processes.
 * - Every write and delete of a key holds that key's lock (see
 *   `file-key-lock.ts`), so compare-and-swap (`ifMatch`) is exact within a
 *   process and across processes on one local file system.
 * - The ETag is `<inode>-<size>-<mtime ns>`; each write gives its temp file a
 *   fresh, strictly increasing mtime, so a version's ETag is not reused even
 *   when the file system recycles the inode.
 * - Keys that would escape the root are refused (see `store-keys.ts`), as is
 *   the reserved first segment `.pagecast` (temp and lock files).
 * - Symbolic links inside the root are never followed: before each operation
 *   the real path of the key's directory must be exactly the root's real path
 *   joined with the key's segments (so no link, even one pointing inside the
 *   root, can alias keys and bypass their locks), directories are created one
 *   level at a time without following links, and a key that is itself a link
 *   is refused (`STORE_INVALID_ARGUMENT`); listing skips links. A link swapped
 *   in by a concurrent process between the check and the operation is not
 *   caught (the root is trusted not to be modified by hostile processes).
 * Limits: a key cannot be both an object and a "directory" of other keys
 * (`a` and `a/b`), unlike S3. Temp files of a crashed writer stay in
 * `.pagecast/tmp`.
 */
import { randomBytes } from "node:crypto";
import { type BigIntStats, constants, type Dirent } from "node:fs";
import {
  link,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rmdir,
  unlink,
} from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import pLimit from "p-limit";
import { PagecastError } from "../errors.js";
import { resolveRange, validateRange } from "./byte-range.js";
import { sameEtag } from "./etag.js";
import { type FileKeyLockOptions, FileKeyLocks } from "./file-key-lock.js";
import {
  isLegacyLevelDir,
  isLtxFileName,
  keyOfLitestreamPath,
  LITESTREAM_LTX_DIR,
  type LtxKeyParts,
  legacyPath,
  litestreamLevelDir,
  litestreamPath,
  parseLtxStoreKey,
} from "./file-layout.js";
import type {
  AttemptFailure,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  StoreCounters,
  StoreHealth,
} from "./object-store.js";
import { checkSource } from "./put-stream.js";
import { RequestRunner, type RetryOptions } from "./request-runner.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreRequestError,
} from "./store-errors.js";
import { compareKeys, describeKey, validateKey } from "./store-keys.js";
import {
  checkBody,
  checkListOptions,
  checkMaxBytes,
  checkPutOptions,
  DELETE_BATCH_SIZE,
  listStartAfter,
  paginateKeys,
} from "./store-options.js";

/** First key segment reserved for the store's own temp and lock files. */
export const FILE_STORE_RESERVED = ".pagecast";

/** Options of `new FileStore()`. */
export interface FileStoreOptions {
  /** Absolute path of the root directory (created on first write). */
  root: string;
  /** fsync each file and its directory on write (default true: a put is durable once it resolves). */
  fsync?: boolean;
  /** Retry settings (only transient errors such as EMFILE or a busy lock are retried). */
  retry?: RetryOptions;
  /** Cross-process lock tuning. */
  locks?: FileKeyLockOptions;
}

// O_NOFOLLOW makes opening a key that is a symbolic link fail (ELOOP) instead
// of reading the link's target; 0 where the platform lacks it.
const READ_NOFOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

const RETRYABLE_CODES = new Set(["EMFILE", "ENFILE", "EBUSY", "EAGAIN", "EINTR", "ETIMEDOUT"]);
const DELETE_CONCURRENCY = 16;
/** Legacy-layout files moved at once (see `adoptLitestreamLayout`). */
const MOVE_CONCURRENCY = 16;

function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

// Each write stamps a strictly increasing mtime (in microseconds) so that an
// ETag built from inode, size and mtime is never handed out twice.
let lastMtimeMicros = 0;
function nextMtimeSeconds(): number {
  lastMtimeMicros = Math.max(Date.now() * 1000, lastMtimeMicros + 1);
  return lastMtimeMicros / 1e6;
}

/**
 * The commit time (ms) in an LTX header's first bytes, when `head` starts like
 * an LTX file; Litestream's file client stamps it on the file as its mtime.
 */
function ltxHeaderTime(head: Uint8Array): number | undefined {
  if (head.length < 40 || head[0] !== 0x4c || head[1] !== 0x54 || head[2] !== 0x58)
    return undefined;
  if (head[3] !== 0x31) return undefined;
  const t = new DataView(head.buffer, head.byteOffset, head.length).getBigUint64(32);
  return t > 0n && t <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(t) : undefined;
}

function metaFromStats(key: string, info: BigIntStats): ObjectMeta {
  return {
    key,
    size: Number(info.size),
    etag: `${info.ino.toString(16)}-${info.size.toString(16)}-${info.mtimeNs.toString(16)}`,
    // Rounded: an mtime set from milliseconds (see ltxHeaderTime) lands a few ns off.
    lastModified: new Date(Number((info.mtimeNs + 500_000n) / 1_000_000n)),
  };
}

/** Carries an error thrown by a put's source through the file-writing code. */
class SourceFailure {
  constructor(readonly error: unknown) {}
}

/** An `ObjectStore` on a local directory. */
export class FileStore implements ObjectStore {
  readonly url: string;
  /** Absolute root directory. */
  readonly root: string;
  private readonly fsync: boolean;
  private readonly runner: RequestRunner;
  private readonly locks: FileKeyLocks;
  private readonly tmpDir: string;
  /** Real path of the root, cached once known (a root is not expected to move). */
  private realRoot: string | undefined;
  /** Moves of legacy-layout LTX files, per base directory (done once per store). */
  private readonly migrations = new Map<string, Promise<void>>();

  constructor(options: FileStoreOptions) {
    if (typeof options.root !== "string" || !isAbsolute(options.root)) {
      throw new InvalidStoreArgumentError("file store root must be an absolute path");
    }
    if (options.root.includes("\u0000")) {
      throw new InvalidStoreArgumentError("file store root contains a NUL character");
    }
    this.root = resolve(options.root);
    this.url = pathToFileURL(this.root).href;
    this.fsync = options.fsync ?? true;
    this.runner = new RequestRunner(() => this.url, options.retry);
    this.tmpDir = join(this.root, FILE_STORE_RESERVED, "tmp");
    this.locks = new FileKeyLocks(join(this.root, FILE_STORE_RESERVED, "locks"), options.locks);
  }

  /**
   * Checks `key` (valid, inside the root, not reserved) and returns its LTX
   * parts when it is an LTX key. Keys naming a Litestream-layout path
   * (`ltx/<n>/<min>-<max>.ltx`) are refused: that file is the LTX key
   * `<%04x n>/<min>-<max>.ltx`, and one object must not have two keys.
   */
  private checkKey(key: string): LtxKeyParts | undefined {
    validateKey(key);
    const segments = key.split("/");
    if (segments[0] === FILE_STORE_RESERVED) {
      throw new InvalidStoreArgumentError(
        `key ${describeKey(key)} uses the reserved segment ${FILE_STORE_RESERVED}`,
      );
    }
    const path = join(this.root, ...segments);
    const rel = relative(this.root, path);
    if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel)) {
      throw new InvalidStoreArgumentError(`key ${describeKey(key)} escapes the store root`);
    }
    const alias = keyOfLitestreamPath(key);
    if (alias !== undefined) {
      throw new InvalidStoreArgumentError(
        `key ${describeKey(key)} is where the file store keeps LTX key ${describeKey(alias)}; use that key`,
      );
    }
    return parseLtxStoreKey(key);
  }

  /** Absolute path of a root-relative `/`-separated path. */
  private abs(rel: string): string {
    return join(this.root, ...rel.split("/"));
  }

  /**
   * Where to look for `key`, in order: its path, or for LTX keys the
   * Litestream layout, the legacy layout, and the Litestream layout again (a
   * file moved between the first two looks is found by the third).
   */
  private readPaths(key: string, parts: LtxKeyParts | undefined): string[] {
    if (!parts) return [key];
    const primary = litestreamPath(parts);
    return [primary, legacyPath(parts), primary];
  }

  /**
   * Metadata of the file at `rel` (for `key`'s error messages), or undefined
   * when there is none. A link there, or on the way, is refused.
   */
  private async statPath(rel: string, key: string): Promise<BigIntStats | undefined> {
    try {
      if (!(await this.checkDirectory(rel.split("/").slice(0, -1), key, false))) return undefined;
      const info = await lstat(this.abs(rel), { bigint: true });
      if (info.isSymbolicLink()) throw this.linkError(key);
      return info.isFile() ? info : undefined;
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw error;
    }
  }

  /** The first of `paths` holding a file, with its metadata. */
  private async statFirst(
    paths: readonly string[],
    key: string,
  ): Promise<{ rel: string; info: BigIntStats } | undefined> {
    for (const rel of paths) {
      const info = await this.statPath(rel, key);
      if (info) return { rel, info };
    }
    return undefined;
  }

  /**
   * Absolute path of the file holding `key` (for LTX keys, in whichever
   * layout it is), or `undefined` when the key does not exist. For tools that
   * show users where a replica's files are.
   */
  async filePath(key: string): Promise<string | undefined> {
    const parts = this.checkKey(key);
    const found = await this.statFirst(this.readPaths(key, parts), key);
    return found && this.abs(found.rel);
  }

  private linkError(key: string): InvalidStoreArgumentError {
    return new InvalidStoreArgumentError(
      `key ${describeKey(key)} leads through a symbolic link; links in a file store are not followed`,
    );
  }

  /** The root's real path; `undefined` when the root does not exist and `create` is false. */
  private async realRootPath(create: boolean): Promise<string | undefined> {
    if (this.realRoot !== undefined) return this.realRoot;
    try {
      this.realRoot = await realpath(this.root);
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
      if (!create) return undefined;
      await mkdir(this.root, { recursive: true });
      this.realRoot = await realpath(this.root);
    }
    return this.realRoot;
  }

  /**
   * Checks that the directory `segments` (relative to the root) is reached
   * through no symbolic link: its real path must be the real root joined with
   * `segments`. Returns false when it does not exist (or a parent is a file);
   * with `create`, makes the missing levels one at a time, never through a link.
   * Throws `InvalidStoreArgumentError` (naming `key`) when a link is in the way.
   */
  private async checkDirectory(
    segments: readonly string[],
    key: string,
    create: boolean,
  ): Promise<boolean> {
    const realRoot = await this.realRootPath(create);
    if (realRoot === undefined) return false;
    if (segments.length === 0) return true;
    const expected = join(realRoot, ...segments);
    const directory = join(this.root, ...segments);
    try {
      if ((await realpath(directory)) !== expected) throw this.linkError(key);
      return true;
    } catch (error) {
      const code = errnoCode(error);
      if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
      if (!create) return false;
    }
    // The root itself is trusted (and may be removed while the store is open).
    await mkdir(this.root, { recursive: true });
    // mkdir({ recursive }) would follow a link to a directory outside the root
    // and create there; go level by level and refuse links instead.
    for (let depth = 1; depth <= segments.length; depth++) {
      const level = join(this.root, ...segments.slice(0, depth));
      let info = await lstat(level).catch((error: unknown) => {
        if (errnoCode(error) === "ENOENT") return undefined;
        throw error;
      });
      if (info === undefined) {
        await mkdir(level).catch((error: unknown) => {
          if (errnoCode(error) !== "EEXIST") throw error;
        });
        info = await lstat(level);
      }
      if (info.isSymbolicLink()) throw this.linkError(key);
      // A file in the way: the realpath below fails with ENOTDIR for the caller.
      if (!info.isDirectory()) break;
    }
    // Checked again: a link may have replaced a level meanwhile.
    if ((await realpath(directory)) !== expected) throw this.linkError(key);
    return true;
  }

  private mapError(operation: string, key: string) {
    return (error: unknown): PagecastError => {
      if (error instanceof PagecastError) return error;
      const code = errnoCode(error);
      return new StoreRequestError(
        `${operation} ${describeKey(key)} in ${this.url} failed${code ? ` (${code})` : ""}`,
        {
          retryable: code !== undefined && RETRYABLE_CODES.has(code),
          ...(code ? { serverCode: code } : {}),
          cause: error,
        },
      );
    };
  }

  /** Opens the file holding `key` (trying each of `paths`), or throws `NotFoundError`. */
  private async openKey(key: string, paths: readonly string[]) {
    for (const rel of paths) {
      if (!(await this.checkDirectory(rel.split("/").slice(0, -1), key, false))) continue;
      const handle = await open(this.abs(rel), READ_NOFOLLOW).catch((error: unknown) => {
        const code = errnoCode(error);
        if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return undefined;
        if (code === "ELOOP") throw this.linkError(key);
        throw error;
      });
      if (handle) return handle;
    }
    throw new NotFoundError(key);
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    const paths = this.readPaths(key, this.checkKey(key));
    if (options.range) validateRange(options.range);
    checkMaxBytes(options);
    return this.runner.run(
      "get",
      options.signal,
      async () => {
        const handle = await this.openKey(key, paths);
        try {
          // One descriptor for stat and read: a concurrent rename cannot mix versions.
          const info = await handle.stat({ bigint: true });
          if (!info.isFile()) throw new NotFoundError(key);
          const meta = metaFromStats(key, info);
          if (options.ifNoneMatch !== undefined && sameEtag(options.ifNoneMatch, meta.etag)) {
            return { notModified: true };
          }
          const { start, end } = resolveRange(options.range, meta.size);
          if (options.maxBytes !== undefined && end - start > options.maxBytes) {
            throw new ObjectTooLargeError(key, {
              size: end - start,
              maxBytes: options.maxBytes,
              meta,
            });
          }
          const body = new Uint8Array(end - start);
          let filled = 0;
          while (filled < body.length) {
            const { bytesRead } = await handle.read(
              body,
              filled,
              body.length - filled,
              start + filled,
            );
            if (bytesRead === 0) break;
            filled += bytesRead;
          }
          const result = filled === body.length ? body : body.slice(0, filled);
          this.runner.counters.received(result.length);
          return { notModified: false, body: result, meta, offset: start };
        } finally {
          await handle.close();
        }
      },
      this.mapError("get", key),
    );
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectMeta | undefined> {
    const paths = this.readPaths(key, this.checkKey(key));
    return this.runner.run(
      "head",
      options.signal,
      async () => {
        const found = await this.statFirst(paths, key);
        return found && metaFromStats(key, found.info);
      },
      this.mapError("head", key),
    );
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    const parts = this.checkKey(key);
    checkBody(body);
    checkPutOptions(options);
    return this.runner.run(
      "put",
      options.signal,
      async ({ signal }) => {
        this.runner.counters.sent(body.length);
        const temp = await this.writeTemp([body], undefined, parts !== undefined);
        try {
          return await this.placeTemp(key, parts, temp, options, signal);
        } finally {
          await unlink(temp.path).catch(() => {});
        }
      },
      this.mapError("put", key),
    );
  }

  async putStream(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options: PutOptions = {},
  ): Promise<PutResult> {
    const parts = this.checkKey(key);
    checkSource(source);
    checkPutOptions(options);
    this.runner.check(options.signal);
    // The body goes to a temp file once (a stream cannot be replayed); only
    // placing it, which is cheap and may meet a busy lock, is retried.
    let temp: { path: string; etag: string; size: number };
    try {
      temp = await this.writeTemp(source, options.signal, parts !== undefined);
    } catch (error) {
      // The source's own errors (and aborts) propagate unchanged.
      if (error instanceof SourceFailure) throw error.error;
      throw this.mapError("put", key)(error);
    }
    try {
      return await this.runner.run(
        "put",
        options.signal,
        async ({ signal }) => {
          this.runner.counters.sent(temp.size);
          return this.placeTemp(key, parts, temp, options, signal);
        },
        this.mapError("put", key),
      );
    } finally {
      await unlink(temp.path).catch(() => {});
    }
  }

  /**
   * Moves a written temp file to `key` under the put's conditions (holding
   * the key's lock). LTX keys go to the Litestream layout, after the
   * directory's legacy-layout files moved there; a legacy copy of the key
   * counts as its current version and is removed once replaced.
   */
  private async placeTemp(
    key: string,
    parts: LtxKeyParts | undefined,
    temp: { path: string; etag: string },
    options: PutOptions,
    signal: AbortSignal,
  ): Promise<PutResult> {
    if (parts) await this.adoptLitestreamLayout(parts.base);
    const target = parts ? litestreamPath(parts) : key;
    const legacy = parts ? legacyPath(parts) : undefined;
    return this.withKeyLock(key, signal, async () => {
      const createOnly = options.ifNoneMatch === "*";
      const old = legacy === undefined ? undefined : await this.statPath(legacy, key);
      if (options.ifMatch !== undefined) {
        // lstat: a link is never the current version of a key.
        const current = (await this.statPath(target, key)) ?? old;
        if (!current || !sameEtag(options.ifMatch, metaFromStats(key, current).etag)) {
          throw new PreconditionFailedError(key);
        }
      }
      if (createOnly && old) throw new PreconditionFailedError(key);
      await this.moveIntoPlace(temp.path, target, key, createOnly);
      if (old && legacy !== undefined) await this.removeFile(legacy);
      return { etag: temp.etag };
    });
  }

  /**
   * Sets an LTX file's mtime to its header's commit time, as Litestream's
   * file client expects (files of earlier versions carry their upload time).
   */
  private async stampHeaderTime(path: string): Promise<void> {
    const handle = await open(path, READ_NOFOLLOW);
    try {
      const head = new Uint8Array(40);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      const time = bytesRead === head.length ? ltxHeaderTime(head) : undefined;
      if (time !== undefined) await handle.utimes(time / 1000, time / 1000);
    } finally {
      await handle.close();
    }
  }

  /** Unlinks a root-relative file if present, pruning directories it leaves empty. */
  private async removeFile(rel: string): Promise<void> {
    const path = this.abs(rel);
    try {
      await unlink(path);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw error;
    }
    await this.pruneDirectories(dirname(path));
  }

  /** Removes `dir` and its parents up to the root while they are empty. */
  private async pruneDirectories(dir: string): Promise<void> {
    for (; dir !== this.root && dir.startsWith(this.root + sep); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  /**
   * Moves the legacy-layout LTX files directly under `base` (`<base>%04x/...`)
   * into the Litestream layout, once per store and base; a failed attempt is
   * retried by the next LTX put. Each file is linked into place (kept if
   * already there), the new directories are synced, and only then is the old
   * name unlinked, each key under its lock (a concurrent delete or create-only
   * put of it stays exact).
   */
  private adoptLitestreamLayout(base: string): Promise<void> {
    let done = this.migrations.get(base);
    if (!done) {
      done = this.moveLegacyFiles(base).catch((error: unknown) => {
        this.migrations.delete(base);
        throw error;
      });
      this.migrations.set(base, done);
    }
    return done;
  }

  private async moveLegacyFiles(base: string): Promise<void> {
    const baseSegments = base === "" ? [] : base.slice(0, -1).split("/");
    if (!(await this.checkDirectory(baseSegments, base || ".", false))) return;
    const dir = join(this.root, ...baseSegments);
    const levels = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter(
      (entry) => entry.isDirectory() && isLegacyLevelDir(entry.name),
    );
    const never = new AbortController().signal;
    const limit = pLimit(MOVE_CONCURRENCY);
    for (const level of levels) {
      const names = (await readdir(join(dir, level.name)).catch(() => [] as string[])).filter(
        isLtxFileName,
      );
      const moved: { key: string; parts: LtxKeyParts }[] = [];
      const targets = new Set<string>();
      await Promise.all(
        names.map((name) =>
          limit(async () => {
            const key = `${base}${level.name}/${name}`;
            const parts = parseLtxStoreKey(key);
            if (!parts) return;
            await this.withKeyLock(key, never, async () => {
              const from = legacyPath(parts);
              if (!(await this.statPath(from, key))) return;
              const to = litestreamPath(parts);
              await this.checkDirectory(to.split("/").slice(0, -1), key, true);
              await link(this.abs(from), this.abs(to)).catch((error: unknown) => {
                // Already there (an interrupted move): the Litestream-layout file is the key's.
                if (errnoCode(error) !== "EEXIST") throw error;
              });
              await this.stampHeaderTime(this.abs(to));
              moved.push({ key, parts });
              targets.add(dirname(this.abs(to)));
            });
          }),
        ),
      );
      if (this.fsync) for (const target of targets) await this.syncDirectory(target);
      await Promise.all(
        moved.map(({ key, parts }) =>
          limit(() =>
            this.withKeyLock(key, never, async () => {
              if (await this.statPath(litestreamPath(parts), key)) {
                await unlink(this.abs(legacyPath(parts))).catch(() => {});
              }
            }),
          ),
        ),
      );
      if (moved.length > 0 && this.fsync) {
        await this.syncDirectory(join(dir, level.name)).catch(() => {});
      }
      await rmdir(join(dir, level.name)).catch(() => {});
    }
  }

  /** Runs `action` holding `key`'s lock, once the lock directory is known to be no link. */
  private async withKeyLock<T>(
    key: string,
    signal: AbortSignal,
    action: () => Promise<T>,
  ): Promise<T> {
    await this.checkDirectory([FILE_STORE_RESERVED, "locks"], key, true);
    return this.locks.withLock(key, signal, action);
  }

  /**
   * Writes `chunks` to a fresh temp file with a unique mtime; returns its path,
   * size and ETag. Errors of an async source come wrapped in `SourceFailure`.
   */
  private async writeTemp(
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
    ltx = false,
  ): Promise<{ path: string; etag: string; size: number }> {
    // Checked on every write: a linked `.pagecast` would put temp files outside.
    await this.checkDirectory([FILE_STORE_RESERVED, "tmp"], FILE_STORE_RESERVED, true);
    const path = join(this.tmpDir, `${randomBytes(12).toString("hex")}.tmp`);
    const handle = await open(path, "wx");
    try {
      let size = 0;
      // The first bytes of an LTX file: its header names the commit time.
      const head = new Uint8Array(ltx ? 40 : 0);
      const iterator =
        Symbol.asyncIterator in chunks
          ? chunks[Symbol.asyncIterator]()
          : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
      for (;;) {
        let chunk: Uint8Array;
        try {
          if (signal?.aborted) throw new StoreAbortedError(undefined, { cause: signal.reason });
          const next = await iterator.next();
          if (next.done) break;
          if (!(next.value instanceof Uint8Array)) {
            throw new InvalidStoreArgumentError("source yielded a chunk that is not a Uint8Array");
          }
          chunk = next.value;
        } catch (error) {
          throw new SourceFailure(error);
        }
        if (size < head.length) head.set(chunk.subarray(0, head.length - size), size);
        let written = 0;
        while (written < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
          written += bytesWritten;
        }
        size += chunk.length;
      }
      const headerTime = size >= head.length && ltx ? ltxHeaderTime(head) : undefined;
      const mtime = headerTime !== undefined ? headerTime / 1000 : nextMtimeSeconds();
      await handle.utimes(mtime, mtime);
      if (this.fsync) await handle.sync();
      const etag = metaFromStats("", await handle.stat({ bigint: true })).etag;
      return { path, etag, size };
    } catch (error) {
      await unlink(path).catch(() => {});
      throw error;
    } finally {
      await handle.close();
    }
  }

  /** Renames (or, create-only, links) the temp file to `rel` (`key`'s file), creating directories. */
  private async moveIntoPlace(
    temp: string,
    rel: string,
    key: string,
    createOnly: boolean,
  ): Promise<void> {
    const path = this.abs(rel);
    // A concurrent delete may prune the freshly made directory; a few rounds settle it.
    for (let round = 0; ; round++) {
      try {
        await this.checkDirectory(rel.split("/").slice(0, -1), key, true);
        if (createOnly) await link(temp, path);
        else await rename(temp, path);
        break;
      } catch (error) {
        if (error instanceof PagecastError) throw error;
        const code = errnoCode(error);
        if (code === "ENOENT" && round < 5) continue;
        if (createOnly && code === "EEXIST") throw new PreconditionFailedError(key);
        if (code === "EISDIR" || code === "ENOTDIR" || code === "EEXIST") {
          throw new StoreRequestError(
            `put ${describeKey(key)} in ${this.url} failed: the key or one of its parents is a directory of other keys`,
            { retryable: false, serverCode: code, cause: error },
          );
        }
        throw error;
      }
    }
    if (this.fsync) await this.syncDirectory(dirname(path));
  }

  private async syncDirectory(directory: string): Promise<void> {
    const handle = await open(directory, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    const checked = checkListOptions(options);
    return this.runner.run(
      "list",
      options.signal,
      async () => {
        const prefix = checked.prefix;
        const cut = prefix.lastIndexOf("/") + 1;
        const dir = prefix.slice(0, cut);
        const head = prefix.slice(cut);
        const paths: string[] = [];
        await this.walk(dir, head, options, paths);
        // LTX keys under `dir` live in `<dir>ltx/<n>/` (walked above only when
        // `head` allows "ltx"), those of a legacy level directory in its
        // Litestream counterpart. Walked after the legacy directories, so a
        // file moved between layouts meanwhile is seen at least once.
        if (/^[0-9a-f]{0,4}$/.test(head) && !LITESTREAM_LTX_DIR.startsWith(head)) {
          await this.walk(`${dir}${LITESTREAM_LTX_DIR}/`, "", options, paths);
        }
        const counterpart = litestreamLevelDir(dir);
        if (counterpart !== undefined) await this.walk(counterpart, head, options, paths);
        // Keys as the store names them; an LTX key found in both layouts once.
        const found = new Map<string, string>();
        for (const rel of paths) {
          const key = keyOfLitestreamPath(rel) ?? rel;
          if (!key.startsWith(prefix)) continue;
          if (!found.has(key) || rel !== key) found.set(key, rel);
        }
        const keys = [...found.keys()].map((key) => ({ key }));
        const { page, continuationToken } = paginateKeys(keys, checked, options);
        const metas = await Promise.all(
          page.map(async ({ key }) => {
            const rel = found.get(key)!;
            const parts = parseLtxStoreKey(key);
            // A file moved to the Litestream layout since is looked up there.
            const candidates = parts && rel === key ? [rel, litestreamPath(parts)] : [rel];
            for (const path of candidates) {
              const info = await lstat(this.abs(path), { bigint: true }).catch(() => undefined);
              if (info?.isFile()) return metaFromStats(key, info);
            }
            // A key deleted since the directory was read is simply left out.
            return undefined;
          }),
        );
        const objects = metas.filter((meta): meta is ObjectMeta => meta !== undefined);
        return continuationToken === undefined ? { objects } : { objects, continuationToken };
      },
      this.mapError("list", checked.prefix),
    );
  }

  /**
   * Collects the root-relative paths of the files under directory `base`
   * (`""` or ending in `/`) whose first segment starts with `head`; skips
   * subtrees that sort before startAfter. Within a directory, `ltx/` is
   * walked last (after the legacy level directories: see `list`).
   */
  private async walk(
    base: string,
    head: string,
    options: ListOptions,
    out: string[],
  ): Promise<void> {
    let entries: Dirent[];
    try {
      // A prefix naming a linked directory must not list what is behind the link.
      if (!(await this.checkDirectory(base.split("/").slice(0, -1), base, false))) return;
      entries = await readdir(base === "" ? this.root : join(this.root, ...base.split("/")), {
        withFileTypes: true,
      });
    } catch (error) {
      if (error instanceof InvalidStoreArgumentError) return;
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw error;
    }
    entries.sort(
      (a, b) => Number(a.name === LITESTREAM_LTX_DIR) - Number(b.name === LITESTREAM_LTX_DIR),
    );
    const after = listStartAfter(options);
    for (const entry of entries) {
      if (!entry.name.startsWith(head)) continue;
      if (base === "" && entry.name === FILE_STORE_RESERVED) continue;
      const path = base + entry.name;
      if (entry.isFile()) {
        out.push(path);
      } else if (entry.isDirectory()) {
        const dir = `${path}/`;
        // Keys under `ltx/` sort before it (hex level names), so the skip holds for them too.
        if (after !== undefined && compareKeys(dir, after) < 0 && !after.startsWith(dir)) continue;
        await this.walk(dir, "", options, out);
      }
    }
  }

  async deleteMany(keys: string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const paths = keys.map((key) => {
      const parts = this.checkKey(key);
      // An LTX key goes from both layouts.
      return parts ? [litestreamPath(parts), legacyPath(parts)] : [key];
    });
    for (let i = 0; i < keys.length; i += DELETE_BATCH_SIZE) {
      const batch = keys.slice(i, i + DELETE_BATCH_SIZE);
      await this.runner.run(
        "delete",
        options.signal,
        async ({ signal }) => {
          let next = 0;
          const worker = async () => {
            while (next < batch.length) {
              const index = next++;
              const key = batch[index]!;
              await this.deleteOne(key, paths[i + index]!, signal);
            }
          };
          await Promise.all(Array.from({ length: DELETE_CONCURRENCY }, worker));
        },
        this.mapError("delete", batch[0] ?? ""),
      );
    }
  }

  private async deleteOne(key: string, rels: string[], signal: AbortSignal): Promise<void> {
    await this.withKeyLock(key, signal, async () => {
      for (const rel of rels) {
        // Unlinking a key that is a link removes only the link, but a linked
        // parent directory would lead outside the root.
        if (!(await this.checkDirectory(rel.split("/").slice(0, -1), key, false))) continue;
        const path = this.abs(rel);
        try {
          await unlink(path);
        } catch (error) {
          const code = errnoCode(error);
          if (code === "ENOENT" || code === "ENOTDIR") continue;
          // A "key" that is a directory of other keys is not an object (Linux says
          // EISDIR, macOS EPERM; a real permission error must still surface).
          if (code === "EISDIR" || code === "EPERM") {
            const info = await lstat(path).catch(() => undefined);
            if (info?.isDirectory()) continue;
          }
          throw error;
        }
      }
    });
    // Empty directories would otherwise pile up; stop at the first non-empty one.
    for (const rel of rels) await this.pruneDirectories(dirname(this.abs(rel)));
  }

  counters(): StoreCounters {
    return this.runner.counters.snapshot();
  }

  health(): StoreHealth {
    return this.runner.health();
  }

  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    return this.runner.onAttemptFailure(listener);
  }

  async close(): Promise<void> {
    this.runner.close();
  }
}
