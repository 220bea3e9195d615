/**
 * `cacheDir`: the persistent page cache in a directory. The directory backend
 * needs the file system, so it lives in Node-only code (`src/vfs-node`) and
 * is registered here by the Node entry point; elsewhere `cacheDir` fails with
 * a clear error (Workers use the Cache API: `persistentCache`).
 */
import { PersistentCache, type PersistentCacheBackend } from "./persistent-cache.js";
import { ReplicaError } from "./replica-error.js";

/** Makes the backend of a cache directory. */
export type CacheDirBackendFactory = (
  dir: string,
  options: { maxBytes?: number },
) => PersistentCacheBackend;

let factory: CacheDirBackendFactory | undefined;
/** One cache per directory per process: replicas of a process share its memory and bookkeeping. */
const opened = new Map<string, PersistentCache>();

/** Registers the directory backend (`pagecast` in Node does this). */
export function setCacheDirBackendFactory(f: CacheDirBackendFactory | undefined): void {
  factory = f;
}

/** The persistent cache of directory `dir` (shared within the process). */
export function openCacheDir(dir: string, maxBytes?: number): PersistentCache {
  if (typeof dir !== "string" || dir.length === 0) {
    throw new ReplicaError("REPLICA_INVALID_ARGUMENT", "cacheDir must be a non-empty path");
  }
  if (!factory) {
    throw new ReplicaError(
      "REPLICA_CACHE_DIR_UNAVAILABLE",
      "cacheDir needs a file system (Node: import pagecast, which registers it); " +
        "in Workers pass persistentCache: cacheApiBackend(caches.default) instead",
    );
  }
  const key = `${dir}\n${maxBytes ?? ""}`;
  let cache = opened.get(key);
  if (!cache) {
    cache = new PersistentCache(factory(dir, maxBytes === undefined ? {} : { maxBytes }));
    opened.set(key, cache);
  }
  return cache;
}
