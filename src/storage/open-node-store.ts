/**
 * `openNodeStore(url)`: `openStore` plus file:// (Node only).
 */
import { fileURLToPath } from "node:url";
import type { FileStoreOptions } from "./file-store.js";
import type { ObjectStore } from "./object-store.js";
import {
  type OpenStoreOptions,
  openFetchS3Store,
  openLocation,
  registerFileStoreOpener,
  registerS3StoreOpener,
  type S3Location,
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

async function openFileStore(url: string, options: OpenNodeStoreOptions): Promise<ObjectStore> {
  let root: string;
  try {
    root = fileURLToPath(url);
  } catch (error) {
    throw new InvalidStoreUrlError("file URL does not name a local path", { cause: error });
  }
  // Loaded on first use: its node:crypto and file-system imports would cost
  // every `import("pagecast")` in Node ~15 ms.
  const { FileStore } = await import("./file-store.js");
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

/** The store `s3Transport: "auto"` picks in Node (see {@link OpenStoreOptions.s3Transport}). */
export function nodeS3Transport(
  where: S3Location,
  options: OpenStoreOptions,
  env: Record<string, string | undefined> = process.env,
): "aws-sdk" | "fetch" {
  const choice = options.s3Transport ?? "auto";
  if (choice !== "auto") return choice;
  const s3 = options.s3 ?? {};
  // Settings only the SDK's client understands.
  if (s3.client || s3.clientConfig || s3.connectTimeoutMs !== undefined) return "aws-sdk";
  const endpoint = where.endpoint ?? s3.endpoint;
  if (!endpoint && (env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_S3)) return "aws-sdk";
  if (env.AWS_USE_FIPS_ENDPOINT === "true" || env.AWS_USE_DUALSTACK_ENDPOINT === "true") {
    return "aws-sdk";
  }
  const credentials = options.credentials;
  if (credentials !== undefined) {
    // A provider function may refresh (SSO, roles): the SDK calls it as it expects.
    return typeof credentials === "object" &&
      typeof credentials.accessKeyId === "string" &&
      typeof credentials.secretAccessKey === "string"
      ? "fetch"
      : "aws-sdk";
  }
  // The SDK's chain reads these first, unless AWS_PROFILE names a profile.
  return env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY && !env.AWS_PROFILE
    ? "fetch"
    : "aws-sdk";
}

/**
 * s3:// in Node: `FetchS3Store` when the credentials are static (no AWS SDK
 * to load: a faster cold start), else the AWS SDK's `S3Store` and its
 * credential chain (env, profiles, SSO, IMDS...). See `s3Transport`.
 */
const openS3Store: S3StoreOpener = async (where, options) => {
  if (nodeS3Transport(where, options) === "fetch") {
    // Loaded on first use: node:https (TLS) costs an import of pagecast ~10 ms.
    const [{ nodeHttpFetch }, { nodeSigV4Crypto }] = await Promise.all([
      import("./node-http-fetch.js"),
      import("./sigv4-node.js"),
    ]);
    return openFetchS3Store(where, options, {
      signingCrypto: nodeSigV4Crypto,
      fetch: nodeHttpFetch as unknown as typeof fetch,
    });
  }
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
 * travel) open s3:// URLs the Node way: the AWS SDK's `S3Store` unless the
 * credentials are static (see `s3Transport`). `pagecast`'s Node entry calls it.
 */
export function registerNodeS3Stores(): void {
  registerS3StoreOpener(openS3Store);
}
