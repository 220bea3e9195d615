/**
 * `ObjectStore` on S3 or any S3-compatible server (Ceph RGW, MinIO, R2,
 * emulators) through `@aws-sdk/client-s3`. Runtime-agnostic: it runs in Node
 * and in Workers (no `node:` imports).
 *
 * Notes on compatibility:
 * - The SDK's own retries are off (`maxAttempts: 1`); `RequestRunner` retries,
 *   so that every attempt is counted and only retryable failures repeat.
 * - Checksums only "when required": emulators mishandle aws-chunked bodies.
 * - `If-Match` on PUT is sent unquoted (RGW compares it verbatim); `If-None-Match`
 *   on GET is sent quoted, as HTTP specifies and as emulators compare it.
 * - A conditional put of a missing key answers 412 on RGW and 404 on AWS: both
 *   become `PreconditionFailedError`.
 * - Bodies above `multipartThreshold` (default 8 MiB) go up in parts of at most
 *   8 MiB; a failed multipart upload is aborted. The put's condition is checked
 *   with a HEAD just before CompleteMultipartUpload and also sent with it: AWS
 *   enforces it there atomically; servers that ignore it there (Ceph RGW 16,
 *   fauxqs) only get the HEAD check, which a racing writer can slip past.
 * - DeleteObjects goes in batches of 1000; if a server refuses the batch call,
 *   the store switches to single deletes for the rest of its life.
 * - Every wait is bounded: a connect timeout and a socket idle timeout on the
 *   SDK's HTTP handler, the runner's per-attempt limit and per-operation
 *   deadline. After a network failure or timeout the idle keep-alive
 *   connections are dropped, so a retry never rides on a dead socket.
 * - A request refused for clock skew (`RequestTimeTooSkewed`) is repeated
 *   once the SDK has taken the server's time offset from the answer, even with
 *   retries off.
 * - `get` with `maxBytes` checks the announced length before reading the
 *   body (and counts bytes when there is none), so a hostile object is refused
 *   without being downloaded.
 */
// Types only: the SDK itself loads on the first request (see `loadSdk`), so
// importing pagecast costs nothing for programs that never reach S3 this way.
import type { GetObjectCommandOutput, S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { PagecastError } from "../errors.js";
import { resolveRange } from "./byte-range.js";
import { unquoteEtag } from "./etag.js";
import {
  bodyParts,
  type MultipartSteps,
  streamParts,
  uploadMultipart,
} from "./multipart-upload.js";
import type {
  AttemptFailure,
  ByteRange,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  RequestKind,
  StoreCounters,
  StoreHealth,
} from "./object-store.js";
import { checkSource, PieceReader } from "./put-stream.js";
import {
  type AttemptContext,
  formatDuration,
  RequestRunner,
  type RetryOptions,
} from "./request-runner.js";
import { discardBody, joinPieces, readBodyAtMost, readBodyPieces } from "./response-body.js";
import { s3Get } from "./s3-get.js";
import {
  envRegion,
  isBatchDeleteRefusal,
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  multipartSettings,
  parseContentRange,
  RETRYABLE_S3_CODES,
  rangeBytes,
  rangeHeader,
  s3StoreUrl,
} from "./s3-protocol.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreRequestError,
} from "./store-errors.js";
import { describeKey, directoryPrefix, validateKey, validatePrefix } from "./store-keys.js";
import {
  checkBody,
  checkListOptions,
  checkPutOptions,
  DELETE_BATCH_SIZE,
} from "./store-options.js";

export { MAX_PART_SIZE, MIN_PART_SIZE, s3StoreUrl };

type Sdk = typeof import("@aws-sdk/client-s3");
let sdkModule: Promise<Sdk> | undefined;
/** The AWS SDK, loaded once on first use (it takes ~0.2 s to load in Node). */
function loadSdk(): Promise<Sdk> {
  sdkModule ??= import("@aws-sdk/client-s3");
  return sdkModule;
}

/** Options of `new S3Store()`. */
export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; treated as a directory (a `/` is appended). */
  prefix?: string;
  /** Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`. */
  endpoint?: string;
  /** Default: env `AWS_REGION` / `AWS_DEFAULT_REGION` when readable, else `us-east-1`. */
  region?: string;
  /** Path-style addressing; default true when `endpoint` is given. */
  forcePathStyle?: boolean;
  /** Explicit credentials or provider; default: the SDK's standard credential chain. */
  credentials?: S3ClientConfig["credentials"];
  /** A ready client to use instead of building one (not destroyed by `close()`). */
  client?: S3Client;
  retry?: RetryOptions;
  /**
   * Longest wait for a TCP (and TLS) connection, in ms (default 5 000; 0
   * disables). Not applied to a given `client`.
   */
  connectTimeoutMs?: number;
  /**
   * Longest silence of a connection while a request is in flight (no byte
   * sent or received), in ms (default 10 000; 0 disables): an endpoint that
   * accepts connections and never answers fails the attempt after this long;
   * a silence that starts later in a request may be cut up to 3 s sooner.
   * Not applied to a given `client`.
   */
  idleTimeoutMs?: number;
  /**
   * Further settings of the S3 client the store builds (e.g. `requestHandler`,
   * `userAgentAppId`, `systemClockOffset`); they win over the store's own,
   * except `maxAttempts` (the store retries itself).
   */
  clientConfig?: Partial<S3ClientConfig>;
  /** Bodies larger than this go up as multipart uploads (default 8 MiB). */
  multipartThreshold?: number;
  /** Part size of multipart uploads, 5..8 MiB (default 8 MiB). */
  partSize?: number;
  /** Parts in flight at once (default 4). */
  partConcurrency?: number;
}

/**
 * Codes of refusals caused by the client's clock; the SDK corrects its offset
 * from the answer's time (`$metadata.clockSkewCorrected`).
 */
const CLOCK_SKEW_CODES = new Set([
  "RequestTimeTooSkewed",
  "RequestExpired",
  "RequestInTheFuture",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "AuthFailure",
]);
/** A change of the SDK's clock offset this large means a request was signed with a wrong time (the SDK's threshold). */
const CLOCK_SKEW_CORRECTION_MS = 240_000;
/** Defaults of the connection timeouts (ms). */
export const S3_TIMEOUT_DEFAULTS = { connectTimeoutMs: 5_000, idleTimeoutMs: 10_000 } as const;
const SINGLE_DELETE_CONCURRENCY = 8;

interface SdkErrorShape {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown; clockSkewCorrected?: unknown };
}

/** Node sockets held idle by the SDK's keep-alive agents (feature-detected). */
interface AgentLike {
  freeSockets?: Record<string, { destroy?: () => void }[] | undefined>;
}

/** HTTP status and error code of an SDK or network error, when it has them. */
function describeSdkError(error: unknown): { status?: number; code?: string } {
  const shape = (typeof error === "object" && error !== null ? error : {}) as SdkErrorShape;
  const status = shape.$metadata?.httpStatusCode;
  const raw = [shape.Code, shape.code, shape.name].find((c) => typeof c === "string");
  // Only identifier-like codes are repeated in messages: never free server text.
  const code = typeof raw === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(raw) ? raw : undefined;
  return {
    ...(typeof status === "number" ? { status } : {}),
    ...(code !== undefined ? { code } : {}),
  };
}

/** What to do when the SDK's credential chain found nothing. */
const NO_CREDENTIALS =
  "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " +
  "(the pagecast CLI also reads LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY), " +
  "or AWS_PROFILE, or pass `credentials`";

function isNotFound(error: unknown): boolean {
  const { status, code } = describeSdkError(error);
  if (code === "NoSuchBucket") return false;
  return status === 404 || code === "NoSuchKey" || code === "NotFound";
}

/**
 * The SDK's `socketTimeout` for an idle limit: the Node handler starts a
 * timeout of 6 s or more only 3 s into the request, so it is given 3 s less
 * and a request that never hears back fails after `idleMs`, not `idleMs` + 3 s.
 */
function sdkSocketTimeout(idleMs: number): number {
  return idleMs >= 9_000 ? idleMs - 3_000 : Math.min(idleMs, 5_999);
}

function timeoutOption(name: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new InvalidStoreArgumentError(`${name} must be a number of milliseconds >= 0`);
  }
  return ms;
}

/** An `ObjectStore` on an S3 bucket (and optional prefix). */
export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  /** Key prefix inside the bucket, `""` or ending with `/`. */
  readonly prefix: string;
  /** Set once the SDK has loaded (first request), or from `options.client`. */
  private client: S3Client | undefined;
  private clientReady: Promise<{ client: S3Client; sdk: Sdk }> | undefined;
  private readonly clientConfig: S3ClientConfig | undefined;
  private readonly ownsClient: boolean;
  private readonly runner: RequestRunner;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private batchDelete = true;
  /** Whether any answer came from the server yet (its clock offset is then known). */
  private answered = false;

  constructor(options: S3StoreOptions) {
    if (typeof options.bucket !== "string" || !/^[A-Za-z0-9._-]{1,255}$/.test(options.bucket)) {
      throw new InvalidStoreArgumentError("S3 bucket name is missing or malformed");
    }
    const prefix = options.prefix ?? "";
    validatePrefix(prefix);
    this.bucket = options.bucket;
    this.prefix = directoryPrefix(prefix);
    this.url = s3StoreUrl({
      bucket: options.bucket,
      prefix: this.prefix,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
    });
    const multipart = multipartSettings(options);
    this.multipartThreshold = multipart.multipartThreshold;
    this.partSize = multipart.partSize;
    this.partConcurrency = multipart.partConcurrency;
    this.connectTimeoutMs = timeoutOption(
      "connectTimeoutMs",
      options.connectTimeoutMs,
      S3_TIMEOUT_DEFAULTS.connectTimeoutMs,
    );
    this.idleTimeoutMs = timeoutOption(
      "idleTimeoutMs",
      options.idleTimeoutMs,
      S3_TIMEOUT_DEFAULTS.idleTimeoutMs,
    );
    this.runner = new RequestRunner(() => this.url, options.retry);
    // A connection that failed one attempt says the idle ones may be dead too
    // (a dropped NAT entry, a restarted proxy): the retry connects afresh.
    this.runner.onAttemptFailure((failure) => {
      if (failure.error instanceof StoreRequestError && failure.error.status === undefined) {
        this.dropIdleConnections();
      }
    });
    if (options.client) {
      this.client = options.client;
      this.clientConfig = undefined;
      this.ownsClient = false;
    } else {
      this.clientConfig = {
        region: options.region ?? envRegion() ?? "us-east-1",
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        // Options, not a handler instance: the runtime's own handler (Node's
        // http, or fetch in Workers) takes what it understands.
        requestHandler: {
          ...(this.connectTimeoutMs > 0 ? { connectionTimeout: this.connectTimeoutMs } : {}),
          ...(this.idleTimeoutMs > 0
            ? { socketTimeout: sdkSocketTimeout(this.idleTimeoutMs) }
            : {}),
        },
        ...options.clientConfig,
        maxAttempts: 1,
      };
      this.ownsClient = true;
    }
  }

  /** The client and the SDK's command classes (both loaded on first use). */
  private s3(): Promise<{ client: S3Client; sdk: Sdk }> {
    this.clientReady ??= loadSdk().then((sdk) => {
      this.client ??= new sdk.S3Client(this.clientConfig ?? {});
      return { client: this.client, sdk };
    });
    return this.clientReady;
  }

  private objectKey(key: string): string {
    validateKey(key);
    return this.prefix + key;
  }

  /** Maps SDK and network errors of `operation` on `key` to typed errors. */
  private mapError(operation: string, key: string) {
    return (error: unknown, clockMoved = false): PagecastError => {
      if (error instanceof PagecastError) return error;
      const { status, code } = describeSdkError(error);
      if (status === undefined && code === "CredentialsProviderError") {
        // No request was sent: asking again finds no credentials either.
        return new StoreRequestError(
          `S3 ${operation} ${describeKey(key)} in ${this.url} failed: ${NO_CREDENTIALS}`,
          { retryable: false, reason: "no credentials", cause: error },
          "STORE_NO_CREDENTIALS",
        );
      }
      const shape = (typeof error === "object" && error !== null ? error : {}) as SdkErrorShape;
      // A refusal after which the SDK moved its clock offset by minutes (the
      // SDK's own flag, or seen around the attempt): a HEAD's refusal has no
      // body, hence no code, so the offset alone tells.
      const corrected = clockMoved || shape.$metadata?.clockSkewCorrected === true;
      const clockSkew =
        status !== undefined &&
        status < 500 &&
        (code === "RequestTimeTooSkewed" ||
          (corrected && (status === 403 || (code !== undefined && CLOCK_SKEW_CODES.has(code)))));
      const retryable =
        status === undefined ||
        clockSkew ||
        // 501 Not Implemented will not change by asking again.
        (status >= 500 && status !== 501) ||
        status === 429 ||
        (code !== undefined && RETRYABLE_S3_CODES.has(code));
      const timeout = status === undefined ? this.timeoutReason(shape, code) : undefined;
      const reason =
        timeout ??
        (status === undefined
          ? `network error${code ? ` ${code}` : ""}`
          : `HTTP ${status}${code ? ` ${code}` : ""}${clockSkew ? " (clock skew; corrected from the server's time)" : ""}`);
      const requestId = shape.$metadata
        ? (shape.$metadata as { requestId?: unknown }).requestId
        : undefined;
      const id =
        typeof requestId === "string" && /^[A-Za-z0-9._-]{1,128}$/.test(requestId)
          ? ` (request id ${requestId})`
          : "";
      return new StoreRequestError(
        `S3 ${operation} ${describeKey(key)} in ${this.url} failed: ${reason}${id}`,
        {
          retryable,
          reason,
          clockSkew,
          ...(status !== undefined ? { status } : {}),
          ...(timeout !== undefined
            ? { serverCode: "Timeout" }
            : code !== undefined
              ? { serverCode: code }
              : {}),
          // A server's error object can carry fields such as AWSAccessKeyId or
          // StringToSign; only transport errors (no response) are kept as cause.
          ...(status === undefined ? { cause: error } : {}),
        },
      );
    };
  }

  /**
   * The SDK's own timeout errors (no response), described with the limit
   * that ran out; their text is the SDK's, never the server's.
   */
  private timeoutReason(shape: SdkErrorShape, code: string | undefined): string | undefined {
    if (shape.name !== "TimeoutError" || (code !== undefined && code !== "TimeoutError")) {
      return undefined;
    }
    const text = typeof shape.message === "string" ? shape.message : "";
    if (/establish a connection/.test(text)) {
      return `timeout: no connection within ${formatDuration(this.connectTimeoutMs)}`;
    }
    if (/inactivity/.test(text))
      return `timeout: no data for ${formatDuration(this.idleTimeoutMs)}`;
    return "timeout";
  }

  private run<T>(
    kind: RequestKind,
    operation: string,
    key: string,
    signal: AbortSignal | undefined,
    attempt: (context: AttemptContext) => Promise<T>,
    bytes?: number,
  ): Promise<T> {
    return this.runner.run(
      kind,
      signal,
      async (context) => {
        const offset = this.clockOffset();
        try {
          const value = await attempt(context);
          this.answered = true;
          return value;
        } catch (error) {
          if (describeSdkError(error).status === undefined) throw error;
          this.answered = true;
          const moved = Math.abs(this.clockOffset() - offset) >= CLOCK_SKEW_CORRECTION_MS;
          throw moved ? this.mapError(operation, key)(error, true) : error;
        }
      },
      this.mapError(operation, key),
      {
        operation: key === "" ? `S3 ${operation}` : `S3 ${operation} ${describeKey(key)}`,
        ...(bytes !== undefined ? { bytes } : {}),
      },
    );
  }

  /** Closes the keep-alive connections that sit idle in the SDK's agents (Node only). */
  private dropIdleConnections(): void {
    try {
      const handler = (
        this.client?.config as
          | { requestHandler?: { httpHandlerConfigs?: () => unknown } }
          | undefined
      )?.requestHandler;
      const config = handler?.httpHandlerConfigs?.() as
        | { httpAgent?: AgentLike; httpsAgent?: AgentLike }
        | undefined;
      for (const agent of [config?.httpAgent, config?.httpsAgent]) {
        const free = agent?.freeSockets;
        if (!free || typeof free !== "object") continue;
        for (const sockets of Object.values(free)) {
          for (const socket of sockets ?? []) socket?.destroy?.();
        }
      }
    } catch {
      // Best effort: a handler without agents (fetch) has nothing to drop.
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    const objectKey = this.objectKey(key);
    return s3Get(
      key,
      this.url,
      options,
      (r) =>
        this.run(
          "get",
          "get",
          key,
          options.signal,
          (context) => this.getAttempt(key, objectKey, r, options, context),
          r ? rangeBytes(r) : undefined,
        ),
      () => this.head(key, options),
    );
  }

  private async getAttempt(
    key: string,
    objectKey: string,
    range: ByteRange | undefined,
    { ifNoneMatch, maxBytes, pieces: wantPieces }: GetOptions,
    { signal, expectBytes }: AttemptContext,
  ): Promise<GetResult | "unsatisfiable"> {
    let response: GetObjectCommandOutput;
    try {
      const { client, sdk } = await this.s3();
      response = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          ...(range ? { Range: rangeHeader(range) } : {}),
          ...(ifNoneMatch !== undefined ? { IfNoneMatch: `"${unquoteEtag(ifNoneMatch)}"` } : {}),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      const { status, code } = describeSdkError(error);
      if (status === 304 || code === "NotModified") return { notModified: true };
      if (status === 416 || code === "InvalidRange") return "unsatisfiable";
      if (isNotFound(error)) throw new NotFoundError(key);
      throw error;
    }
    // The body's size is known now: a big one gets the time it needs.
    const length = response.ContentLength;
    if (length !== undefined && (maxBytes === undefined || length <= maxBytes)) {
      expectBytes(length);
    }
    // Pieces as they arrived when the caller streams them on and the
    // response is the range asked for (the usual case); joined otherwise.
    const streamed =
      wantPieces && maxBytes === undefined && response.ContentRange
        ? await readBodyPieces(response.Body)
        : undefined;
    const raw = streamed ? undefined : await this.readBody(key, response, maxBytes);
    const received = streamed ? streamed.length : (raw as Uint8Array).length;
    if (response.ContentLength !== undefined && received !== response.ContentLength) {
      throw new StoreRequestError(
        `S3 get ${describeKey(key)} in ${this.url}: body ended after ${received} of ${response.ContentLength} bytes`,
        { retryable: true, serverCode: "TruncatedBody" },
      );
    }
    this.runner.counters.received(received);
    const etag = unquoteEtag(response.ETag ?? "");
    const lastModified = response.LastModified ?? new Date(0);
    const contentRange = response.ContentRange
      ? parseContentRange(response.ContentRange)
      : undefined;
    if (response.ContentRange && contentRange === undefined) {
      throw new StoreRequestError(
        `S3 get ${describeKey(key)} in ${this.url}: unusable Content-Range header`,
        { retryable: false, serverCode: "BadContentRange" },
      );
    }
    if (contentRange) {
      const meta = { key, size: contentRange.total, etag, lastModified };
      if (streamed) {
        const { pieces, length } = streamed;
        let joined: Uint8Array | undefined;
        return {
          notModified: false,
          get body() {
            joined ??= joinPieces(pieces, length);
            return joined;
          },
          pieces,
          meta,
          offset: contentRange.start,
        };
      }
      return { notModified: false, body: raw as Uint8Array, meta, offset: contentRange.start };
    }
    if (!raw) throw new Error("unreachable: a streamed body always has a Content-Range");
    // No usable Content-Range: the server sent the whole object; cut the range here.
    const size = raw.length;
    const span = resolveRange(range, size);
    const body = span.start === 0 && span.end === size ? raw : raw.slice(span.start, span.end);
    return {
      notModified: false,
      body,
      meta: { key, size, etag, lastModified },
      offset: span.start,
    };
  }

  /**
   * The response's body; with `maxBytes`, refused from its announced length
   * before any of it is read (or as soon as it runs over, when no length is
   * announced).
   */
  private async readBody(
    key: string,
    response: GetObjectCommandOutput,
    maxBytes: number | undefined,
  ): Promise<Uint8Array> {
    const body = response.Body;
    if (maxBytes === undefined) {
      // Straight into one array of the announced size (the SDK's collector holds it twice).
      return (
        (await readBodyAtMost(body, Number.POSITIVE_INFINITY, response.ContentLength)) ??
        new Uint8Array(0)
      );
    }
    const tooLarge = (size: number | undefined) => {
      const total = response.ContentRange ? parseContentRange(response.ContentRange) : undefined;
      const meta: ObjectMeta | undefined =
        total || size !== undefined
          ? {
              key,
              size: total?.total ?? size ?? 0,
              etag: unquoteEtag(response.ETag ?? ""),
              lastModified: response.LastModified ?? new Date(0),
            }
          : undefined;
      return new ObjectTooLargeError(key, {
        maxBytes,
        ...(size !== undefined ? { size } : {}),
        ...(meta ? { meta } : {}),
      });
    };
    if (response.ContentLength !== undefined && response.ContentLength > maxBytes) {
      discardBody(body);
      throw tooLarge(response.ContentLength);
    }
    const bytes = await readBodyAtMost(body, maxBytes, response.ContentLength);
    if (!bytes) throw tooLarge(undefined);
    return bytes;
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectMeta | undefined> {
    const objectKey = this.objectKey(key);
    return this.run("head", "head", key, options.signal, async ({ signal }) => {
      try {
        const { client, sdk } = await this.s3();
        const response = await client.send(
          new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }),
          { abortSignal: signal },
        );
        return {
          key,
          size: response.ContentLength ?? 0,
          etag: unquoteEtag(response.ETag ?? ""),
          lastModified: response.LastModified ?? new Date(0),
        };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    const objectKey = this.objectKey(key);
    checkBody(body);
    checkPutOptions(options);
    const conditions = {
      ...(options.ifNoneMatch === "*" ? { IfNoneMatch: "*" } : {}),
      ...(options.ifMatch !== undefined ? { IfMatch: unquoteEtag(options.ifMatch) } : {}),
    };
    const etag =
      body.length > this.multipartThreshold
        ? await this.putMultipart(
            key,
            objectKey,
            bodyParts(body, this.partSize),
            options,
            conditions,
          )
        : await this.run(
            "put",
            "put",
            key,
            options.signal,
            async ({ signal }) => {
              this.runner.counters.sent(body.length);
              try {
                const { client, sdk } = await this.s3();
                const response = await client.send(
                  new sdk.PutObjectCommand({
                    Bucket: this.bucket,
                    Key: objectKey,
                    Body: body,
                    ContentLength: body.length,
                    ...(options.contentType ? { ContentType: options.contentType } : {}),
                    ...conditions,
                  }),
                  { abortSignal: signal },
                );
                return response.ETag;
              } catch (error) {
                throw this.conditionalFailure(key, options, error);
              }
            },
            body.length,
          );
    return this.putResult(key, etag, options);
  }

  async putStream(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options: PutOptions = {},
  ): Promise<PutResult> {
    const objectKey = this.objectKey(key);
    checkSource(source);
    checkPutOptions(options);
    this.runner.check(options.signal);
    const reader = new PieceReader(source, options.signal);
    try {
      // A body that fits under the threshold goes up in one request, as with put.
      const head = await reader.read(this.multipartThreshold);
      if (await reader.atEnd()) return await this.put(key, head, options);
      const conditions = {
        ...(options.ifNoneMatch === "*" ? { IfNoneMatch: "*" } : {}),
        ...(options.ifMatch !== undefined ? { IfMatch: unquoteEtag(options.ifMatch) } : {}),
      };
      const { nextPart, release } = streamParts(reader, head, this.partSize);
      const etag = await this.putMultipart(key, objectKey, nextPart, options, conditions, release);
      return await this.putResult(key, etag, options);
    } finally {
      await reader.cancel();
    }
  }

  /** The put's result; some servers omit the ETag header, and the contract promises one. */
  private async putResult(
    key: string,
    etag: string | undefined,
    options: PutOptions,
  ): Promise<PutResult> {
    if (etag) return { etag: unquoteEtag(etag) };
    const meta = await this.head(key, options);
    if (!meta)
      throw new StoreRequestError(`S3 put ${describeKey(key)}: object vanished`, {
        retryable: false,
      });
    return { etag: meta.etag };
  }

  /** A put failure as `PreconditionFailedError` when it is one, else unchanged. */
  private conditionalFailure(key: string, options: PutOptions, error: unknown): unknown {
    const { status, code } = describeSdkError(error);
    if (status === 412 || code === "PreconditionFailed") {
      return new PreconditionFailedError(key);
    }
    // If-Match on a missing key: AWS answers 404, RGW 412.
    if (options.ifMatch !== undefined && isNotFound(error)) {
      return new PreconditionFailedError(key);
    }
    return error;
  }

  /** A multipart upload (`multipart-upload.ts`) through the SDK. */
  private putMultipart(
    key: string,
    objectKey: string,
    nextPart: () => Promise<Uint8Array | undefined>,
    options: PutOptions,
    conditions: { IfNoneMatch?: string; IfMatch?: string },
    release?: (part: Uint8Array) => void,
  ): Promise<string | undefined> {
    const steps: MultipartSteps = {
      create: async () => {
        const created = await this.run(
          "put",
          "create multipart upload",
          key,
          options.signal,
          async ({ signal }) => {
            const { client, sdk } = await this.s3();
            return client.send(
              new sdk.CreateMultipartUploadCommand({
                Bucket: this.bucket,
                Key: objectKey,
                ...(options.contentType ? { ContentType: options.contentType } : {}),
              }),
              { abortSignal: signal },
            );
          },
        );
        if (!created.UploadId) {
          throw new StoreRequestError(`S3 put ${describeKey(key)} in ${this.url}: no upload id`, {
            retryable: false,
          });
        }
        return created.UploadId;
      },
      upload: async (uploadId, partNumber, part, stop) => {
        const uploaded = await this.run(
          "put",
          "upload part",
          key,
          stop,
          async ({ signal }) => {
            const { client, sdk } = await this.s3();
            this.runner.counters.sent(part.length);
            return client.send(
              new sdk.UploadPartCommand({
                Bucket: this.bucket,
                Key: objectKey,
                UploadId: uploadId,
                PartNumber: partNumber,
                Body: part,
                ContentLength: part.length,
              }),
              { abortSignal: signal },
            );
          },
          part.length,
        );
        if (!uploaded.ETag) {
          throw new StoreRequestError(`S3 upload part of ${describeKey(key)}: no ETag`, {
            retryable: false,
          });
        }
        return uploaded.ETag;
      },
      complete: async (uploadId, etags) => {
        const completed = await this.run(
          "put",
          "complete multipart upload",
          key,
          options.signal,
          async ({ signal }) => {
            try {
              const { client, sdk } = await this.s3();
              return await client.send(
                new sdk.CompleteMultipartUploadCommand({
                  Bucket: this.bucket,
                  Key: objectKey,
                  UploadId: uploadId,
                  MultipartUpload: {
                    Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })),
                  },
                  ...conditions,
                }),
                { abortSignal: signal },
              );
            } catch (error) {
              throw this.conditionalFailure(key, options, error);
            }
          },
        );
        return completed.ETag;
      },
      // Not under the caller's signal: an abandoned upload costs storage.
      abort: async (uploadId) => {
        await this.run("delete", "abort multipart upload", key, undefined, async ({ signal }) => {
          const { client, sdk } = await this.s3();
          return client.send(
            new sdk.AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: objectKey,
              UploadId: uploadId,
            }),
            { abortSignal: signal },
          );
        });
      },
      head: () => this.head(key, options),
    };
    this.runner.check(options.signal);
    return uploadMultipart(key, this.url, nextPart, steps, options, this.partConcurrency, release);
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    const { prefix, maxKeys } = checkListOptions(options);
    return this.run("list", "list", prefix, options.signal, async ({ signal }) => {
      const { client, sdk } = await this.s3();
      const response = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          MaxKeys: maxKeys,
          ...(options.startAfter ? { StartAfter: this.prefix + options.startAfter } : {}),
          ...(options.continuationToken ? { ContinuationToken: options.continuationToken } : {}),
        }),
        { abortSignal: signal },
      );
      const objects: ObjectMeta[] = [];
      for (const item of response.Contents ?? []) {
        if (!item.Key?.startsWith(this.prefix)) continue;
        objects.push({
          key: item.Key.slice(this.prefix.length),
          size: item.Size ?? 0,
          etag: unquoteEtag(item.ETag ?? ""),
          lastModified: item.LastModified ?? new Date(0),
        });
      }
      const token = response.IsTruncated ? response.NextContinuationToken : undefined;
      return token ? { objects, continuationToken: token } : { objects };
    });
  }

  async deleteMany(keys: string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    const objectKeys = keys.map((key) => this.objectKey(key));
    for (let i = 0; i < objectKeys.length; i += DELETE_BATCH_SIZE) {
      const batch = objectKeys.slice(i, i + DELETE_BATCH_SIZE);
      if (this.batchDelete && (await this.deleteBatch(batch, options.signal))) continue;
      await this.deleteSingly(batch, options.signal);
    }
  }

  /** One DeleteObjects call; false when the server refuses the call itself. */
  private async deleteBatch(batch: string[], signal: AbortSignal | undefined): Promise<boolean> {
    const label = this.unprefixed(batch[0] ?? "");
    try {
      await this.run("delete", "delete", label, signal, async ({ signal: attemptSignal }) => {
        const { client, sdk } = await this.s3();
        const response = await client.send(
          new sdk.DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
          { abortSignal: attemptSignal },
        );
        const failures = (response.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
        const failure = failures[0];
        if (failure) {
          const code =
            failure.Code && /^[A-Za-z0-9._-]{1,64}$/.test(failure.Code) ? failure.Code : undefined;
          throw new StoreRequestError(
            `S3 delete of ${failures.length} key(s) in ${this.url} failed${code ? `: ${code}` : ""}, e.g. ${describeKey(this.unprefixed(failure.Key ?? ""))}`,
            {
              retryable: code === undefined || RETRYABLE_S3_CODES.has(code),
              ...(code ? { serverCode: code } : {}),
            },
          );
        }
      });
      return true;
    } catch (error) {
      if (isBatchDeleteRefusal(error)) {
        this.batchDelete = false;
        return false;
      }
      throw error;
    }
  }

  private async deleteSingly(batch: string[], signal: AbortSignal | undefined): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const objectKey = batch[next++]!;
        await this.run(
          "delete",
          "delete",
          this.unprefixed(objectKey),
          signal,
          async ({ signal: s }) => {
            try {
              const { client, sdk } = await this.s3();
              await client.send(
                new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }),
                {
                  abortSignal: s,
                },
              );
            } catch (error) {
              if (!isNotFound(error)) throw error;
            }
          },
        );
      }
    };
    await Promise.all(Array.from({ length: SINGLE_DELETE_CONCURRENCY }, worker));
  }

  private unprefixed(objectKey: string): string {
    return objectKey.slice(this.prefix.length);
  }

  counters(): StoreCounters {
    return this.runner.counters.snapshot();
  }

  health(): StoreHealth {
    return this.runner.health();
  }

  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    return this.runner.onAttemptFailure(listener);
  }

  /**
   * The server's time as the SDK tracks it (from the `Date` of every answer,
   * and the `ServerTime` of clock-skew refusals); undefined before any answer.
   */
  serverTime(): number | undefined {
    return this.answered ? Date.now() + this.clockOffset() : undefined;
  }

  /** The SDK's estimate of the server's clock minus this host's, in ms. */
  private clockOffset(): number {
    // Before the first request the client may not exist yet: its configured offset.
    const config = (this.client?.config ?? this.clientConfig) as
      | { systemClockOffset?: unknown }
      | undefined;
    const offset = config?.systemClockOffset;
    return typeof offset === "number" && Number.isFinite(offset) ? offset : 0;
  }

  async close(): Promise<void> {
    this.runner.close();
    if (this.ownsClient) this.client?.destroy();
  }
}
