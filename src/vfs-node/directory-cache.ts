/**
 * Node-only: a persistent page cache backend in a directory (`cacheDir`):
 * Lambda's /tmp, a server's disk, an analytics script's rerun.
 *
 * One file per entry under `<dir>/pagecast-cache-v1/<object hash>/`, written
 * to a temporary name and renamed into place, so several processes can share
 * the directory: a reader sees a whole entry or none, and a merge lost to a
 * concurrent writer only costs a refetch. The directory is bounded: when the
 * bytes it holds exceed `maxBytes`, the least recently used entries (by
 * modification time, refreshed on use) are deleted, by whichever process
 * notices first. Deleting an entry another process is reading is harmless.
 */
import {
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { setCacheDirBackendFactory } from "../vfs/cache-dir.js";
import type { PersistentCacheBackend } from "../vfs/persistent-cache.js";

/** Options of {@link directoryCacheBackend}. */
export interface DirectoryCacheOptions {
  /** Most bytes kept in the directory (default 512 MiB). */
  maxBytes?: number;
}

/** Default bound of a cache directory. */
export const DEFAULT_CACHE_DIR_BYTES = 512 * 1024 * 1024;

const LAYOUT = "pagecast-cache-v1";
/** Entry keys: `<16 hex digits>-<block number>` (see PersistentCache). */
const KEY = /^([0-9a-f]{16})-(\d{1,10})$/;
/** Temporary files older than this are leftovers of a crashed writer. */
const STALE_TMP_MS = 10 * 60 * 1000;
/** Re-measure the directory after this many writes (other processes add entries too). */
const RESCAN_EVERY_WRITES = 256;
/** Eviction goes down to this fraction of the bound, so it does not run on every write. */
const EVICT_TO = 0.8;

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** A backend keeping entries as files under `dir` (created when missing). */
export function directoryCacheBackend(
  dir: string,
  options: DirectoryCacheOptions = {},
): PersistentCacheBackend {
  return new DirectoryCache(dir, options.maxBytes ?? DEFAULT_CACHE_DIR_BYTES);
}

class DirectoryCache implements PersistentCacheBackend {
  readonly #root: string;
  readonly #maxBytes: number;
  /** Bytes in the directory as last measured plus what this process wrote since. */
  #bytes: number | undefined;
  #writesSinceScan = 0;
  #scanning: Promise<void> | undefined;
  /** Bytes this process has written in all (to account for writes during a scan). */
  #written = 0;
  #evictions = 0;
  /** Entries whose modification time this process refreshed already. */
  readonly #touched = new Set<string>();

  constructor(dir: string, maxBytes: number) {
    if (!Number.isFinite(maxBytes) || maxBytes < 1) {
      throw new RangeError("the cache directory bound must be a positive number of bytes");
    }
    this.#root = join(dir, LAYOUT);
    this.#maxBytes = maxBytes;
  }

  #path(key: string): { dir: string; file: string } {
    const m = KEY.exec(key);
    if (!m) throw new Error(`invalid cache key ${JSON.stringify(key)}`);
    const dir = join(this.#root, m[1]!);
    return { dir, file: join(dir, m[2]!) };
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { file } = this.#path(key);
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    if (!this.#touched.has(key)) {
      // Least recently used = oldest modification time: mark it used (once per process).
      this.#touched.add(key);
      const now = new Date();
      utimes(file, now, now).catch(() => {});
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const { dir, file } = this.#path(key);
    await mkdir(dir, { recursive: true });
    // Web Crypto, not node:crypto: importing that costs every cold start ~15 ms.
    const random = crypto.getRandomValues(new Uint32Array(2)).join("-");
    const tmp = `${file}.${process.pid}.${random}.tmp`;
    let old = 0;
    try {
      old = (await stat(file)).size;
    } catch {
      // New entry.
    }
    try {
      await writeFile(tmp, value);
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    this.#touched.add(key);
    this.#written += value.length;
    if (this.#bytes !== undefined) this.#bytes += value.length - old;
    this.#writesSinceScan++;
    if (this.#bytes === undefined || this.#writesSinceScan >= RESCAN_EVERY_WRITES) {
      await this.#scan();
    }
    // Concurrent writes may have landed during a scan: measure again until within the bound.
    for (let i = 0; i < 3 && (this.#bytes ?? 0) > this.#maxBytes; i++) await this.#scan();
  }

  async delete(key: string): Promise<void> {
    const { file } = this.#path(key);
    await unlink(file).catch((err: unknown) => {
      if (!isMissing(err)) throw err;
    });
    this.#touched.delete(key);
  }

  stats(): { bytes?: number; maxBytes: number; evictions: number } {
    return {
      ...(this.#bytes !== undefined ? { bytes: this.#bytes } : {}),
      maxBytes: this.#maxBytes,
      evictions: this.#evictions,
    };
  }

  async close(): Promise<void> {
    await this.#scanning;
    if ((this.#bytes ?? 0) > this.#maxBytes) await this.#scan();
  }

  /** Measures the directory and evicts the least recently used entries past the bound. */
  #scan(): Promise<void> {
    if (!this.#scanning) {
      this.#scanning = this.#scanOnce().finally(() => {
        this.#scanning = undefined;
      });
    }
    return this.#scanning;
  }

  async #scanOnce(): Promise<void> {
    this.#writesSinceScan = 0;
    const writtenBefore = this.#written;
    const entries: { path: string; size: number; mtime: number }[] = [];
    let total = 0;
    const now = Date.now();
    let subdirs: string[];
    try {
      subdirs = await readdir(this.#root);
    } catch (err) {
      if (isMissing(err)) {
        this.#bytes = 0;
        return;
      }
      throw err;
    }
    for (const sub of subdirs) {
      let names: string[];
      try {
        names = await readdir(join(this.#root, sub));
      } catch {
        continue;
      }
      if (names.length === 0) {
        await rm(join(this.#root, sub), { recursive: false }).catch(() => {});
        continue;
      }
      for (const name of names) {
        const path = join(this.#root, sub, name);
        try {
          const s = await stat(path);
          if (name.endsWith(".tmp")) {
            if (now - s.mtimeMs > STALE_TMP_MS) await unlink(path).catch(() => {});
            continue;
          }
          entries.push({ path, size: s.size, mtime: s.mtimeMs });
          total += s.size;
        } catch {
          // Deleted meanwhile by another process.
        }
      }
    }
    if (total > this.#maxBytes) {
      entries.sort((a, b) => a.mtime - b.mtime);
      const target = this.#maxBytes * EVICT_TO;
      for (const e of entries) {
        if (total <= target) break;
        try {
          await unlink(e.path);
          this.#evictions++;
        } catch {
          // Already gone.
        }
        total -= e.size;
      }
      this.#touched.clear();
    }
    // Entries written while the directory was listed may be missing from `total`.
    this.#bytes = total + (this.#written - writtenBefore);
  }
}

/** Makes `cacheDir` work in this process (the Node entry point calls it). */
export function registerNodeCacheDir(): void {
  setCacheDirBackendFactory((dir, options) => directoryCacheBackend(dir, options));
}
