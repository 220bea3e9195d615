/**
 * `openStore(url)`: the runtime-agnostic store factory (s3:// and memory://).
 * Node programs that also want file:// use `openNodeStore` from "pagecast/node".
 */
import type { MemoryStoreOptions } from "./memory-store.js";
import { MemoryStore } from "./memory-store.js";
import type { ObjectStore } from "./object-store.js";
import { prefixedStore } from "./prefixed-store.js";
import type { RetryOptions } from "./request-runner.js";
import type { S3StoreOptions } from "./s3-store.js";
import { InvalidStoreUrlError } from "./store-errors.js";
import { parseStoreUrl, type StoreLocation } from "./store-url.js";

/** Options of `openStore`; the URL's own parameters win over `s3` fields. */
export interface OpenStoreOptions {
  /** S3 credentials or provider; default: the SDK's standard chain (env, profile, IMDS...). */
  credentials?: S3StoreOptions["credentials"];
  /** Retry settings of the store. */
  retry?: RetryOptions;
  /** Further S3 settings (client, part size, defaults for endpoint/region). */
  s3?: Omit<S3StoreOptions, "bucket" | "prefix" | "credentials" | "retry">;
}

/** Opens the store of an s3:// or memory:// location (already parsed). */
export async function openLocation(
  location: StoreLocation,
  options: OpenStoreOptions = {},
): Promise<ObjectStore> {
  switch (location.scheme) {
    case "memory": {
      const memoryOptions: MemoryStoreOptions = { name: location.name };
      if (options.retry) memoryOptions.retry = options.retry;
      const store = new MemoryStore(memoryOptions);
      return location.prefix ? prefixedStore(store, location.prefix, { ownsStore: true }) : store;
    }
    case "s3": {
      // Loaded on demand: memory-only users (tests, demos) never pay for the SDK.
      const { S3Store } = await import("./s3-store.js");
      const { scheme: _scheme, ...where } = location;
      return new S3Store({
        ...options.s3,
        ...where,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        ...(options.retry ? { retry: options.retry } : {}),
      });
    }
    case "file":
      throw new InvalidStoreUrlError(
        'file:// stores are Node-only: use openNodeStore from "pagecast/node"',
      );
  }
}

/**
 * Opens the store named by `url`: `s3://bucket/prefix?endpoint=...&region=...`
 * or `memory://name/prefix`. Credentials come from `options` or the
 * environment, never from the URL.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<ObjectStore> {
  return openLocation(parseStoreUrl(url), options);
}
