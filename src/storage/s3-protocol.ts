/**
 * Pieces of the S3 protocol both S3 backends share (the AWS SDK one and the
 * fetch one): which error codes are worth retrying, range headers, the
 * `Content-Range` answer, and the S3 XML bodies (ListObjectsV2, errors,
 * DeleteObjects, multipart). XML is read with a few regular expressions
 * because Workers have no DOMParser; S3's answers are flat and regular.
 * Runtime-agnostic (no `node:` imports).
 */
import type { ByteRange } from "./object-store.js";
import { InvalidStoreArgumentError, StoreRequestError } from "./store-errors.js";
import { formatStoreLocation } from "./store-url.js";

const MIB = 1024 * 1024;
/** Largest part the stores upload (and default threshold for multipart). */
export const MAX_PART_SIZE = 8 * MIB;
/** S3's smallest allowed part (all but the last). */
export const MIN_PART_SIZE = 5 * MIB;

/** The canonical, credential-free URL of an S3 location. */
export function s3StoreUrl(options: {
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}): string {
  return formatStoreLocation({
    scheme: "s3",
    bucket: options.bucket,
    prefix: options.prefix ?? "",
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.region ? { region: options.region } : {}),
    ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
  });
}

/** Server codes of failures that may pass when asked again. */
export const RETRYABLE_S3_CODES = new Set([
  "SlowDown",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "ConditionalRequestConflict",
  "OperationAborted",
  "TimeoutError",
]);

/** Error codes with which servers refuse the DeleteObjects call itself. */
export const BATCH_DELETE_REFUSED = new Set([
  "NotImplemented",
  "MissingContentMD5",
  "InvalidRequest",
  "MethodNotAllowed",
  "InvalidDigest",
  "BadDigest",
]);

/** Whether a failed DeleteObjects call means the server does not do batch deletes at all. */
export function isBatchDeleteRefusal(error: unknown): boolean {
  return (
    error instanceof StoreRequestError &&
    !error.retryable &&
    error.status !== undefined &&
    (error.status === 501 ||
      error.status === 405 ||
      (error.status === 400 && BATCH_DELETE_REFUSED.has(error.serverCode ?? "")))
  );
}

/** Multipart settings of an S3 store, checked; defaults 8 MiB threshold and parts, 4 in flight. */
export function multipartSettings(options: {
  multipartThreshold?: number;
  partSize?: number;
  partConcurrency?: number;
}): { multipartThreshold: number; partSize: number; partConcurrency: number } {
  const multipartThreshold = options.multipartThreshold ?? MAX_PART_SIZE;
  const partSize = options.partSize ?? MAX_PART_SIZE;
  const partConcurrency = options.partConcurrency ?? 4;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw new InvalidStoreArgumentError("partSize must be between 5 MiB and 8 MiB");
  }
  if (!Number.isSafeInteger(multipartThreshold) || multipartThreshold < 1) {
    throw new InvalidStoreArgumentError("multipartThreshold must be a positive integer");
  }
  if (!Number.isSafeInteger(partConcurrency) || partConcurrency < 1) {
    throw new InvalidStoreArgumentError("partConcurrency must be a positive integer");
  }
  return { multipartThreshold, partSize, partConcurrency };
}

/** Only identifier-like codes are repeated in messages: never free server text. */
export function safeCode(raw: unknown): string | undefined {
  return typeof raw === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(raw) ? raw : undefined;
}

export function rangeHeader(range: ByteRange): string {
  return "suffix" in range
    ? `bytes=-${range.suffix}`
    : `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/** Body bytes a ranged get asks for (for its time limits); a whole get learns its size from the answer. */
export function rangeBytes(range: ByteRange | undefined): number | undefined {
  if (!range) return undefined;
  return "suffix" in range ? range.suffix : range.length;
}

/** `bytes 0-99/1234` -> start and total; undefined for anything else (e.g. an unknown total). */
export function parseContentRange(value: string): { start: number; total: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  const total = Number(match[3]);
  return Number.isSafeInteger(start) && Number.isSafeInteger(total) && start <= total
    ? { start, total }
    : undefined;
}

/** `AWS_REGION` / `AWS_DEFAULT_REGION` where the runtime exposes `process.env` (Node, Bun, Deno). */
export function envRegion(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  return env?.AWS_REGION || env?.AWS_DEFAULT_REGION || undefined;
}

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

/** Decodes XML character and entity references. */
export function xmlDecode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith("#x")) return String.fromCodePoint(Number.parseInt(ref.slice(2), 16));
    if (ref.startsWith("#")) return String.fromCodePoint(Number.parseInt(ref.slice(1), 10));
    return ENTITIES[ref] ?? whole;
  });
}

/** Escapes text for an XML element body. */
export function xmlEscape(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) =>
      `&${c === "&" ? "amp" : c === "<" ? "lt" : c === ">" ? "gt" : c === '"' ? "quot" : "apos"};`,
  );
}

/** Bodies of every `<tag>...</tag>` (not nested in one another) in `xml`. */
export function xmlElements(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "g");
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push(m[1] ?? "");
  return out;
}

/** Decoded text of the first `<tag>` in `xml`, or undefined. */
export function xmlText(xml: string, tag: string): string | undefined {
  const body = xmlElements(xml, tag)[0];
  return body === undefined ? undefined : xmlDecode(body);
}

/** One entry of a ListObjectsV2 answer, key as stored (with the store's prefix). */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

/** A ListObjectsV2 answer. */
export function parseListObjects(xml: string): {
  objects: ListedObject[];
  truncated: boolean;
  nextToken: string | undefined;
} {
  const objects: ListedObject[] = [];
  for (const item of xmlElements(xml, "Contents")) {
    const key = xmlText(item, "Key");
    if (key === undefined) continue;
    const size = Number(xmlText(item, "Size") ?? "0");
    const modified = new Date(xmlText(item, "LastModified") ?? 0);
    objects.push({
      key,
      size: Number.isSafeInteger(size) && size >= 0 ? size : 0,
      etag: xmlText(item, "ETag") ?? "",
      lastModified: Number.isNaN(modified.getTime()) ? new Date(0) : modified,
    });
  }
  // Contents come before the trailer: look for the flags outside of them.
  const trailer = xml.replace(/<Contents>[\s\S]*?<\/Contents>/g, "");
  return {
    objects,
    truncated: xmlText(trailer, "IsTruncated") === "true",
    nextToken: xmlText(trailer, "NextContinuationToken"),
  };
}

/** The `<Error>` of a DeleteObjects answer's failures: key and code. */
export function parseDeleteErrors(xml: string): { key: string; code: string | undefined }[] {
  return xmlElements(xml, "Error").map((e) => ({
    key: xmlText(e, "Key") ?? "",
    code: safeCode(xmlText(e, "Code")),
  }));
}

/** The DeleteObjects request body (quiet: only failures come back). */
export function deleteObjectsXml(keys: string[]): string {
  const objects = keys.map((k) => `<Object><Key>${xmlEscape(k)}</Key></Object>`).join("");
  return `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${objects}</Delete>`;
}

/** The CompleteMultipartUpload request body. */
export function completeMultipartXml(etags: string[]): string {
  const parts = etags
    .map(
      (etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(etag)}</ETag></Part>`,
    )
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`;
}
