/**
 * `openNodeStore(url)`: `openStore` plus file:// (Node only).
 */
import { fileURLToPath } from "node:url";
import { FileStore, type FileStoreOptions } from "./file-store.js";
import type { ObjectStore } from "./object-store.js";
import { type OpenStoreOptions, openLocation, registerFileStoreOpener } from "./open-store.js";
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
