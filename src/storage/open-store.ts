/**
 * `openStore(url)`: the runtime-agnostic store factory (s3:// and memory://,
 * plus file:// where a file-system opener is registered: pagecast's Node
 * entry registers one, so in Node every URL the Node store accepts works
 * here too). This module imports nothing from `node:`.
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

/**
 * Opens file:// stores in runtimes with a file system: `url` as given,
 * `location` parsed; `options` may carry the Node store's `file` settings.
 */
export type FileStoreOpener = (
  url: string,
  location: Extract<StoreLocation, { scheme: "file" }>,
  options: OpenStoreOptions,
) => Promise<ObjectStore>;

let fileStoreOpener: FileStoreOpener | undefined;

/**
 * @internal Registers the file:// opener (`pagecast`'s Node entry does, with
 * the file store); `undefined` unregisters it.
 */
export function registerFileStoreOpener(opener: FileStoreOpener | undefined): void {
  fileStoreOpener = opener;
}

/** Opens the store of an s3:// or memory:// location (already parsed); file:// when registered. */
export async function openLocation(
  location: StoreLocation,
  options: OpenStoreOptions = {},
  url?: string,
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
      if (fileStoreOpener && url !== undefined) return fileStoreOpener(url, location, options);
      throw new InvalidStoreUrlError(
        'file:// stores need a file system: in Node import pagecast (its Node entry opens them) or use openNodeStore from "pagecast/node"',
      );
  }
}

/**
 * Opens the store named by `url`: `s3://bucket/prefix?endpoint=...&region=...`,
 * `memory://name/prefix`, and in Node `file:///abs/dir`. Credentials come
 * from `options` or the environment, never from the URL.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<ObjectStore> {
  return openLocation(parseStoreUrl(url), options, url);
}
