/**
 * `openNodeStore(url)`: `openStore` plus file:// (Node only).
 */
import { fileURLToPath } from "node:url";
import { FileStore, type FileStoreOptions } from "./file-store.js";
import type { ObjectStore } from "./object-store.js";
import {
  type OpenStoreOptions,
  openLocation,
  registerFileStoreOpener,
  registerS3StoreOpener,
  type S3StoreOpener,
} from "./open-store.js";
import { InvalidStoreUrlError } from "./store-errors.js";
import { parseStoreUrl } from "./store-url.js";

/** Options of `openNodeStore`. */
export interface OpenNodeStoreOptions extends OpenStoreOptions {
  /** File store settings (fsync, lock tuning). */
  file?: Omit<FileStoreOptions, "root" | "retry">;
}

/** Opens an s3://, memory:// or file:///abs/path store. */
export async function openNodeStore(
  url: string,
  options: OpenNodeStoreOptions = {},
): Promise<ObjectStore> {
  const location = parseStoreUrl(url);
  if (location.scheme === "s3") {
    const { scheme: _scheme, ...where } = location;
    return openS3Store(where, options);
  }
  if (location.scheme !== "file") return openLocation(location, options, url);
  return openFileStore(url, options);
}

function openFileStore(url: string, options: OpenNodeStoreOptions): ObjectStore {
  let root: string;
  try {
    root = fileURLToPath(url);
  } catch (error) {
    throw new InvalidStoreUrlError("file URL does not name a local path", { cause: error });
  }
  return new FileStore({
    ...options.file,
    root,
    ...(options.retry ? { retry: options.retry } : {}),
  });
}

/**
 * Makes the runtime-agnostic `openStore` (and so `openReplica(url)` and time
 * travel) open file:// URLs with the file store, exactly as
 * {@link openNodeStore} does. `pagecast`'s Node entry calls it.
 */
export function registerNodeFileStores(): void {
  registerFileStoreOpener(async (url, _location, options) =>
    openFileStore(url, options as OpenNodeStoreOptions),
  );
}

/** s3:// in Node: the AWS SDK's `S3Store` (its credential chain: env, profiles, SSO, IMDS...). */
const openS3Store: S3StoreOpener = async (where, options) => {
  const { S3Store } = await import("./s3-store.js");
  return new S3Store({
    ...options.s3,
    ...where,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
  });
};

/**
 * Makes the runtime-agnostic `openStore` (and `openReplica(url)`, time
 * travel) open s3:// URLs with the AWS SDK's `S3Store` instead of
 * `FetchS3Store`. `pagecast`'s Node entry calls it.
 */
export function registerNodeS3Stores(): void {
  registerS3StoreOpener(openS3Store);
}
