/**
 * `openStore(url)`: the runtime-agnostic store factory (s3:// and memory://,
 * plus file:// where a file-system opener is registered: pagecast's Node
 * entry registers one, so in Node every URL the Node store accepts works
 * here too). s3:// opens a `FetchS3Store` (fetch + SigV4, no AWS SDK, so
 * Workers bundles stay small) unless an S3 opener is registered: pagecast's
 * Node entry registers `S3Store` (the AWS SDK and its credential chain).
 * This module imports nothing from `node:`.
 */
import type { FetchS3StoreOptions } from "./fetch-s3-store.js";
import type { MemoryStoreOptions } from "./memory-store.js";
import { MemoryStore } from "./memory-store.js";
import type { ObjectStore } from "./object-store.js";
import { prefixedStore } from "./prefixed-store.js";
import type { RetryOptions } from "./request-runner.js";
import type { S3StoreOptions } from "./s3-store.js";
import { InvalidStoreArgumentError, InvalidStoreUrlError } from "./store-errors.js";
import { parseStoreUrl, type StoreLocation } from "./store-url.js";

/** Options of `openStore`; the URL's own parameters win over `s3` fields. */
export interface OpenStoreOptions {
  /**
   * S3 credentials or provider. Default in Node: the SDK's standard chain
   * (env, profile, IMDS...); elsewhere: `AWS_ACCESS_KEY_ID` /
   * `AWS_SECRET_ACCESS_KEY` from `process.env` where the runtime has one
   * (Bun, Deno), so Workers pass them (from secrets).
   */
  credentials?: S3StoreOptions["credentials"];
  /** Retry settings of the store. */
  retry?: RetryOptions;
  /**
   * Further S3 settings (defaults for endpoint/region, part size, timeouts;
   * `client`, `clientConfig` and `connectTimeoutMs` apply to Node's SDK store only).
   */
  s3?: Omit<S3StoreOptions, "bucket" | "prefix" | "credentials" | "retry">;
  /**
   * How s3:// is reached. `"auto"` (default): outside Node always fetch
   * (`FetchS3Store`); in Node `FetchS3Store` when the credentials are static
   * (the `credentials` keys, or `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
   * with no `AWS_PROFILE`) and no SDK-only setting is used (`s3.client`,
   * `s3.clientConfig`, `s3.connectTimeoutMs`, `AWS_ENDPOINT_URL*`, FIPS or
   * dual-stack endpoints), else `S3Store` (the AWS SDK and its credential
   * chain: profiles, SSO, instance and container roles). Skipping the SDK
   * saves ~0.2-0.3 s of a cold start. (The Replicator and restore ask for
   * `"aws-sdk"`: long runs, where its streamed range bodies matter.)
   * `"aws-sdk"` (Node only) and `"fetch"` force one.
   */
  s3Transport?: "auto" | "aws-sdk" | "fetch";
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

/** An s3:// location, parsed, without its scheme. */
export type S3Location = Omit<Extract<StoreLocation, { scheme: "s3" }>, "scheme">;

/** Opens s3:// stores (`location` parsed, without its scheme). */
export type S3StoreOpener = (
  location: S3Location,
  options: OpenStoreOptions,
) => Promise<ObjectStore>;

let s3StoreOpener: S3StoreOpener | undefined;

/**
 * @internal Registers the s3:// opener (`pagecast`'s Node entry registers
 * the AWS SDK's `S3Store`); `undefined` goes back to `FetchS3Store`.
 */
export function registerS3StoreOpener(opener: S3StoreOpener | undefined): void {
  s3StoreOpener = opener;
}

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
      const { scheme: _scheme, ...where } = location;
      if (s3StoreOpener) return s3StoreOpener(where, options);
      if (options.s3Transport === "aws-sdk") {
        throw new InvalidStoreArgumentError(
          's3Transport "aws-sdk" needs Node (pagecast\'s Node entry); elsewhere s3:// goes through fetch',
        );
      }
      return openFetchS3Store(where, options);
    }
    case "file":
      if (fileStoreOpener && url !== undefined) return fileStoreOpener(url, location, options);
      throw new InvalidStoreUrlError(
        'file:// stores need a file system: in Node import pagecast (its Node entry opens them) or use openNodeStore from "pagecast/node"',
      );
  }
}

/**
 * @internal Opens s3:// `where` with `FetchS3Store` (fetch + SigV4), the
 * `s3` settings it understands applied.
 */
export async function openFetchS3Store(
  where: S3Location,
  options: OpenStoreOptions,
  runtime: Pick<FetchS3StoreOptions, "signingCrypto" | "fetch"> = {},
): Promise<ObjectStore> {
  // Loaded on demand: memory-only users (tests, demos) never load it.
  const { FetchS3Store } = await import("./fetch-s3-store.js");
  const s3 = options.s3 ?? {};
  return new FetchS3Store({
    ...(s3.endpoint !== undefined ? { endpoint: s3.endpoint } : {}),
    ...(s3.region !== undefined ? { region: s3.region } : {}),
    ...(s3.forcePathStyle !== undefined ? { forcePathStyle: s3.forcePathStyle } : {}),
    ...(s3.idleTimeoutMs !== undefined ? { idleTimeoutMs: s3.idleTimeoutMs } : {}),
    ...(s3.multipartThreshold !== undefined ? { multipartThreshold: s3.multipartThreshold } : {}),
    ...(s3.partSize !== undefined ? { partSize: s3.partSize } : {}),
    ...(s3.partConcurrency !== undefined ? { partConcurrency: s3.partConcurrency } : {}),
    ...where,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...runtime,
  });
}

/**
 * Opens the store named by `url`: `s3://bucket/prefix?endpoint=...&region=...`,
 * `memory://name/prefix`, and in Node `file:///abs/dir`. Credentials come
 * from `options` or the environment, never from the URL.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<ObjectStore> {
  return openLocation(parseStoreUrl(url), options, url);
}
