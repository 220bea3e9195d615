/**
 * A persistent page cache backend over the Cache API (Cloudflare Workers'
 * `caches.default` / `caches.open(name)`, also browsers and service workers):
 * entries live in the data center's cache and survive the isolate, so the
 * next invocation reads pages from it instead of S3. The platform bounds and
 * evicts it; a lost entry is only a miss.
 */
import type { PersistentCacheBackend } from "./persistent-cache.js";

/** The part of the Cache API used here (`Cache` in Workers and browsers). */
export interface CacheApiLike {
  match(request: Request): Promise<Response | undefined>;
  put(request: Request, response: Response): Promise<void>;
  delete(request: Request): Promise<boolean>;
}

/** Options of {@link cacheApiBackend}. */
export interface CacheApiBackendOptions {
  /**
   * Origin of the synthetic URLs entries are stored under (default
   * `https://pagecast-cache.invalid`); never fetched.
   */
  origin?: string;
  /** `max-age` of entries in seconds (default one year: they never change). */
  maxAgeSeconds?: number;
}

/**
 * A backend storing each entry as one response in `cache` (in Workers:
 * `caches.default` or `await caches.open("pagecast")`).
 */
export function cacheApiBackend(
  cache: CacheApiLike,
  options: CacheApiBackendOptions = {},
): PersistentCacheBackend {
  const origin = (options.origin ?? "https://pagecast-cache.invalid").replace(/\/+$/, "");
  const maxAge = Math.floor(options.maxAgeSeconds ?? 365 * 24 * 3600);
  const request = (key: string) => new Request(`${origin}/v1/${encodeURIComponent(key)}`);
  return {
    async get(key) {
      const res = await cache.match(request(key));
      if (!res?.ok) return undefined;
      return new Uint8Array(await res.arrayBuffer());
    },
    async put(key, value) {
      await cache.put(
        request(key),
        new Response(value as Uint8Array<ArrayBuffer>, {
          headers: {
            "content-type": "application/octet-stream",
            "cache-control": `public, max-age=${maxAge}, immutable`,
          },
        }),
      );
    },
    async delete(key) {
      await cache.delete(request(key));
    },
  };
}
