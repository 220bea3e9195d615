/**
 * `ObjectStore` on S3 or any S3-compatible server through the runtime's own
 * `fetch`, signed by pagecast's own SigV4 (`sigv4.ts`) instead of the AWS SDK:
 * what `openStore` uses for s3:// URLs in Workers, browsers, Deno and Bun, so
 * their bundles carry no SDK. Node keeps `S3Store` (the SDK and its
 * credential chain). Same behaviour and typed errors as `S3Store`:
 *
 * - Every attempt goes through `RequestRunner` (counted, per-attempt limit,
 *   operation deadline, retries of retryable failures, health, listeners).
 * - `idleTimeoutMs`: an attempt fails when no answer, or no body byte,
 *   arrives for that long (fetch has no connect timeout of its own; the
 *   per-attempt limit bounds the rest).
 * - Clock skew: the server's clock is taken from the `Date` of answers (and
 *   the `ServerTime` of `RequestTimeTooSkewed`) when it is 5 minutes or more
 *   off; a request refused for skew is repeated once signed with it.
 * - `If-Match` on PUT unquoted (RGW compares verbatim), `If-None-Match` on
 *   GET quoted; a conditional put of a missing key (412 on RGW, 404 on AWS)
 *   is `PreconditionFailedError`.
 * - `maxBytes` is checked against `Content-Length` before the body is read,
 *   and bytes are counted when there is none.
 * - Bodies above `multipartThreshold` go up as multipart uploads
 *   (`multipart-upload.ts`); DeleteObjects in batches of 1000, falling back
 *   to single deletes for good when a server refuses the batch call.
 *
 * Credentials: `credentials` (keys or an async provider, e.g. a Worker's
 * secrets); else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
 * `AWS_SESSION_TOKEN` where the runtime exposes `process.env` (Bun, Deno,
 * Workers with nodejs_compat). No profiles, SSO or instance metadata.
 */
import { PagecastError } from "../errors.js";
import { resolveRange } from "./byte-range.js";
import { unquoteEtag } from "./etag.js";
import { bodyParts, streamParts, uploadMultipart } from "./multipart-upload.js";
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
import { BodyBytes } from "./response-body.js";
import { s3Get } from "./s3-get.js";
import {
  completeMultipartXml,
  deleteObjectsXml,
  envRegion,
  isBatchDeleteRefusal,
  multipartSettings,
  parseContentRange,
  parseDeleteErrors,
  parseListObjects,
  RETRYABLE_S3_CODES,
  rangeBytes,
  rangeHeader,
  s3StoreUrl,
  safeCode,
  xmlText,
} from "./s3-protocol.js";
import {
  encodeComponent,
  encodePath,
  type SigV4Credentials,
  type SigV4Crypto,
  SigV4Signer,
} from "./sigv4.js";
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

/** Access keys for SigV4. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Options of `new FetchS3Store()`. */
export interface FetchS3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; treated as a directory (a `/` is appended). */
  prefix?: string;
  /** Endpoint of an S3-compatible server, e.g. `https://<account>.r2.cloudflarestorage.com`. */
  endpoint?: string;
  /** Default: env `AWS_REGION` / `AWS_DEFAULT_REGION` when readable, else `us-east-1`. */
  region?: string;
  /** Path-style addressing; default true when `endpoint` is given. */
  forcePathStyle?: boolean;
  /**
   * Keys, or a function returning them (called before each request; cache in
   * it). Default: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
   * `AWS_SESSION_TOKEN` from `process.env` where the runtime has one.
   */
  credentials?: S3Credentials | (() => S3Credentials | Promise<S3Credentials>);
  retry?: RetryOptions;
  /**
   * Longest wait for an answer or for the next body byte, in ms (default
   * 10 000; 0 disables).
   */
  idleTimeoutMs?: number;
  /** The server's clock minus this host's, in ms, to start with (default 0; corrected from answers). */
  clockOffsetMs?: number;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** The hashing behind request signatures (default: WebCrypto; Node passes `node:crypto`'s, synchronous and faster to start). */
  signingCrypto?: SigV4Crypto;
  /** Bodies larger than this go up as multipart uploads (default 8 MiB). */
  multipartThreshold?: number;
  /** Part size of multipart uploads, 5..8 MiB (default 8 MiB). */
  partSize?: number;
  /** Parts in flight at once (default 4). */
  partConcurrency?: number;
}

/** Codes of refusals caused by the client's clock. */
const CLOCK_SKEW_CODES = new Set([
  "RequestTimeTooSkewed",
  "RequestExpired",
  "RequestInTheFuture",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "AuthFailure",
]);
/** A server clock this far from ours is taken as the signing time (the SDK's threshold). */
const CLOCK_SKEW_MS = 300_000;
const DEFAULT_IDLE_MS = 10_000;
const SINGLE_DELETE_CONCURRENCY = 8;
/** Error bodies are small; a larger one is cut (only its code matters). */
const ERROR_BODY_LIMIT = 64 * 1024;

const NO_CREDENTIALS =
  "no S3 credentials: pass `credentials` (in Workers, from the Worker's secrets) or set " +
  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY where the runtime has process.env";

/** An HTTP answer that is a failure (status and the server's code, never its text). */
class S3HttpError extends Error {
  constructor(
    readonly status: number,
    readonly serverCode: string | undefined,
    readonly requestId: string | undefined,
    /** The clock offset moved by minutes on this answer. */
    readonly clockMoved: boolean,
  ) {
    super(`HTTP ${status}${serverCode ? ` ${serverCode}` : ""}`);
  }
}

/** The idle limit of one attempt: aborts `signal` after `ms` without `touch()`. */
class IdleWatch {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  fired = false;

  constructor(
    private readonly ms: number,
    outer: AbortSignal,
  ) {
    if (outer.aborted) this.controller.abort(outer.reason);
    else outer.addEventListener("abort", () => this.controller.abort(outer.reason), { once: true });
    this.touch();
  }

  touch(): void {
    if (this.ms <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort(new Error("idle timeout"));
    }, this.ms);
  }

  done(): void {
    clearTimeout(this.timer);
  }
}

function encodeQuery(query: Record<string, string | number | undefined>): string {
  const parts = Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (v === "" ? k : `${k}=${encodeComponent(String(v))}`));
  return parts.length ? `?${parts.join("&")}` : "";
}

function envCredentials(): S3Credentials | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  const accessKeyId = env?.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env?.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = env?.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/** Internal: no credentials were found (no request was sent). */
class NoCredentials extends Error {}

/** Request of one S3 call. */
interface S3Call {
  method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
  /** Object key with the store's prefix; undefined for bucket-level calls. */
  objectKey?: string;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  signal: AbortSignal;
  /** Statuses that are answers, not failures (2xx always are). */
  accept?: number[];
}

/** An `ObjectStore` on an S3 bucket through `fetch` and SigV4 (no AWS SDK). */
export class FetchS3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  /** Key prefix inside the bucket, `""` or ending with `/`. */
  readonly prefix: string;
  private readonly base: string;
  private readonly region: string;
  private readonly runner: RequestRunner;
  private readonly fetchFn: typeof fetch;
  private readonly credentials: FetchS3StoreOptions["credentials"];
  private readonly idleTimeoutMs: number;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly signer: SigV4Signer;
  private offset: number;
  private answered = false;
  private batchDelete = true;

  constructor(options: FetchS3StoreOptions) {
    if (typeof options.bucket !== "string" || !/^[A-Za-z0-9._-]{1,255}$/.test(options.bucket)) {
      throw new InvalidStoreArgumentError("S3 bucket name is missing or malformed");
    }
    const prefix = options.prefix ?? "";
    validatePrefix(prefix);
    this.bucket = options.bucket;
    this.prefix = directoryPrefix(prefix);
    this.region = options.region ?? envRegion() ?? "us-east-1";
    this.url = s3StoreUrl({
      bucket: options.bucket,
      prefix: this.prefix,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
    });
    const pathStyle = options.forcePathStyle ?? options.endpoint !== undefined;
    let endpoint: URL;
    try {
      endpoint = new URL(options.endpoint ?? `https://s3.${this.region}.amazonaws.com`);
    } catch (error) {
      throw new InvalidStoreArgumentError("S3 endpoint is not a URL", { cause: error });
    }
    if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") {
      throw new InvalidStoreArgumentError("S3 endpoint must be http(s)");
    }
    const path = endpoint.pathname.replace(/\/+$/, "");
    this.base = pathStyle
      ? `${endpoint.origin}${path}/${this.bucket}`
      : `${endpoint.protocol}//${this.bucket}.${endpoint.host}${path}`;
    const multipart = multipartSettings(options);
    this.multipartThreshold = multipart.multipartThreshold;
    this.partSize = multipart.partSize;
    this.partConcurrency = multipart.partConcurrency;
    const idle = options.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    if (typeof idle !== "number" || !Number.isFinite(idle) || idle < 0) {
      throw new InvalidStoreArgumentError("idleTimeoutMs must be a number of milliseconds >= 0");
    }
    this.idleTimeoutMs = idle;
    this.offset = options.clockOffsetMs ?? 0;
    const fetchFn = options.fetch ?? (globalThis.fetch as typeof fetch | undefined);
    if (typeof fetchFn !== "function") {
      throw new InvalidStoreArgumentError("this runtime has no fetch: pass options.fetch");
    }
    // Called unbound: Workers refuse `fetch` called on another `this`.
    this.fetchFn = (input, init) => fetchFn(input, init);
    this.credentials = options.credentials;
    this.signer = new SigV4Signer({
      region: this.region,
      ...(options.signingCrypto ? { crypto: options.signingCrypto } : {}),
    });
    this.runner = new RequestRunner(() => this.url, options.retry);
  }

  private objectKey(key: string): string {
    validateKey(key);
    return this.prefix + key;
  }

  private unprefixed(objectKey: string): string {
    return objectKey.slice(this.prefix.length);
  }

  private async keys(): Promise<SigV4Credentials> {
    const given = this.credentials;
    const creds = typeof given === "function" ? await given() : (given ?? envCredentials());
    if (!creds?.accessKeyId || !creds.secretAccessKey) throw new NoCredentials();
    return creds;
  }

  /** Takes the server's clock when it is minutes off ours; true when the offset moved. */
  private learnClock(serverMs: number): boolean {
    if (!Number.isFinite(serverMs)) return false;
    const offset = serverMs - Date.now();
    if (Math.abs(offset - this.offset) < CLOCK_SKEW_MS) return false;
    this.offset = offset;
    return true;
  }

  /**
   * Sends one signed request; a non-accepted status throws `S3HttpError`.
   * The response comes back with its body unread (and the idle watch armed
   * for it: the caller reads it with `readBody`).
   */
  private async send(call: S3Call): Promise<{ response: Response; idle: IdleWatch }> {
    const creds = await this.keys();
    const path = call.objectKey !== undefined ? `/${encodePath(call.objectKey)}` : "/";
    const url = `${this.base}${path}${encodeQuery(call.query ?? {})}`;
    const datetime = new Date(Date.now() + this.offset).toISOString().replace(/[:-]|\.\d{3}/g, "");
    const headers = await this.signer.sign(
      { method: call.method, url, headers: call.headers ?? {}, datetime },
      creds,
    );
    const idle = new IdleWatch(this.idleTimeoutMs, call.signal);
    let response: Response;
    try {
      response = await this.fetchFn(url, {
        method: call.method,
        headers,
        ...(call.body !== undefined ? { body: call.body as BodyInit } : {}),
        signal: idle.controller.signal,
      });
    } catch (error) {
      idle.done();
      throw idle.fired ? new IdleTimeout(this.idleTimeoutMs, error) : error;
    }
    idle.touch();
    this.answered = true;
    let moved = this.learnClock(Date.parse(response.headers.get("date") ?? ""));
    if (response.ok || call.accept?.includes(response.status)) return { response, idle };
    let code: string | undefined;
    let requestId = response.headers.get("x-amz-request-id") ?? undefined;
    if (call.method !== "HEAD" && response.body) {
      const text = await this.readBody(response, idle, ERROR_BODY_LIMIT, true).catch(
        () => undefined,
      );
      const xml = text ? new TextDecoder().decode(text) : "";
      code = safeCode(xmlText(xml, "Code"));
      requestId ??= xmlText(xml, "RequestId");
      const serverTime = xmlText(xml, "ServerTime");
      if (serverTime) moved = this.learnClock(Date.parse(serverTime)) || moved;
    } else {
      await response.body?.cancel().catch(() => {});
    }
    idle.done();
    throw new S3HttpError(response.status, code, requestId, moved);
  }

  /**
   * The body's bytes, at most `limit` (undefined when longer, the rest
   * cancelled; `cut`: the first `limit` bytes instead). Each chunk resets
   * the idle watch.
   */
  private async readBody(
    response: Response,
    idle: IdleWatch,
    limit: number,
    cut = false,
  ): Promise<Uint8Array | undefined> {
    const announced = response.headers.get("content-length");
    const collected = new BodyBytes(announced === null ? undefined : Number(announced), limit);
    try {
      const body = response.body;
      if (body) {
        const reader = body.getReader();
        for (;;) {
          let step: ReadableStreamReadResult<Uint8Array>;
          try {
            step = await reader.read();
          } catch (error) {
            throw idle.fired ? new IdleTimeout(this.idleTimeoutMs, error) : error;
          }
          if (step.done) break;
          idle.touch();
          collected.add(step.value);
          if (collected.total > limit) {
            await reader.cancel().catch(() => {});
            if (!cut) return undefined;
            break;
          }
        }
      }
    } finally {
      idle.done();
    }
    return collected.bytes(Math.min(collected.total, limit));
  }

  /** Maps fetch and HTTP failures of `operation` on `key` to typed errors. */
  private mapError(operation: string, key: string) {
    return (error: unknown): PagecastError => {
      if (error instanceof PagecastError) return error;
      const where = `S3 ${operation} ${describeKey(key)} in ${this.url} failed`;
      if (error instanceof NoCredentials) {
        return new StoreRequestError(
          `${where}: ${NO_CREDENTIALS}`,
          { retryable: false, reason: "no credentials" },
          "STORE_NO_CREDENTIALS",
        );
      }
      if (error instanceof IdleTimeout) {
        const reason = `timeout: no data for ${formatDuration(error.ms)}`;
        return new StoreRequestError(`${where}: ${reason}`, {
          retryable: true,
          serverCode: "Timeout",
          reason,
          cause: error.cause,
        });
      }
      if (error instanceof S3HttpError) {
        const { status, serverCode: code } = error;
        const clockSkew =
          status < 500 &&
          (code === "RequestTimeTooSkewed" ||
            (error.clockMoved &&
              (status === 403 || (code !== undefined && CLOCK_SKEW_CODES.has(code)))));
        const retryable =
          clockSkew ||
          (status >= 500 && status !== 501) ||
          status === 429 ||
          (code !== undefined && RETRYABLE_S3_CODES.has(code));
        const reason = `HTTP ${status}${code ? ` ${code}` : ""}${clockSkew ? " (clock skew; corrected from the server's time)" : ""}`;
        const id =
          error.requestId && /^[A-Za-z0-9._-]{1,128}$/.test(error.requestId)
            ? ` (request id ${error.requestId})`
            : "";
        return new StoreRequestError(`${where}: ${reason}${id}`, {
          retryable,
          reason,
          clockSkew,
          status,
          ...(code !== undefined ? { serverCode: code } : {}),
        });
      }
      // No answer: a network failure (fetch throws TypeError; Node puts the system code in `cause`).
      const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
      const code = safeCode(cause?.code) ?? safeCode((error as { code?: unknown } | null)?.code);
      const reason = `network error${code ? ` ${code}` : ""}`;
      return new StoreRequestError(`${where}: ${reason}`, {
        retryable: true,
        reason,
        ...(code ? { serverCode: code } : {}),
        cause: error,
      });
    };
  }

  private run<T>(
    kind: RequestKind,
    operation: string,
    key: string,
    signal: AbortSignal | undefined,
    attempt: (context: AttemptContext) => Promise<T>,
    bytes?: number,
  ): Promise<T> {
    return this.runner.run(kind, signal, attempt, this.mapError(operation, key), {
      operation: key === "" ? `S3 ${operation}` : `S3 ${operation} ${describeKey(key)}`,
      ...(bytes !== undefined ? { bytes } : {}),
    });
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
    options: GetOptions,
    { signal, expectBytes }: AttemptContext,
  ): Promise<GetResult | "unsatisfiable"> {
    let sent: { response: Response; idle: IdleWatch };
    try {
      sent = await this.send({
        method: "GET",
        objectKey,
        headers: {
          ...(range ? { range: rangeHeader(range) } : {}),
          ...(options.ifNoneMatch !== undefined
            ? { "if-none-match": `"${unquoteEtag(options.ifNoneMatch)}"` }
            : {}),
        },
        signal,
        accept: [304],
      });
    } catch (error) {
      if (error instanceof S3HttpError) {
        if (error.status === 416 || error.serverCode === "InvalidRange") return "unsatisfiable";
        if (error.status === 404 && error.serverCode !== "NoSuchBucket")
          throw new NotFoundError(key);
      }
      throw error;
    }
    const { response, idle } = sent;
    if (response.status === 304) {
      idle.done();
      await response.body?.cancel().catch(() => {});
      return { notModified: true };
    }
    const headers = response.headers;
    const lengthHeader = headers.get("content-length");
    const length =
      lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    const etag = unquoteEtag(headers.get("etag") ?? "");
    const modified = new Date(headers.get("last-modified") ?? 0);
    const lastModified = Number.isNaN(modified.getTime()) ? new Date(0) : modified;
    const rangeValue = headers.get("content-range");
    const contentRange = rangeValue ? parseContentRange(rangeValue) : undefined;
    const max = options.maxBytes;
    const tooLarge = (size: number | undefined) =>
      new ObjectTooLargeError(key, {
        maxBytes: max ?? 0,
        ...(size !== undefined ? { size } : {}),
        ...(contentRange || size !== undefined
          ? { meta: { key, size: contentRange?.total ?? size ?? 0, etag, lastModified } }
          : {}),
      });
    if (max !== undefined && length !== undefined && length > max) {
      idle.done();
      await response.body?.cancel().catch(() => {});
      throw tooLarge(length);
    }
    // The body's size is known now: a big one gets the time it needs.
    if (length !== undefined) expectBytes(length);
    const raw = await this.readBody(response, idle, max ?? Number.POSITIVE_INFINITY);
    if (!raw) throw tooLarge(undefined);
    if (length !== undefined && raw.length !== length) {
      throw new StoreRequestError(
        `S3 get ${describeKey(key)} in ${this.url}: body ended after ${raw.length} of ${length} bytes`,
        { retryable: true, serverCode: "TruncatedBody" },
      );
    }
    this.runner.counters.received(raw.length);
    if (rangeValue && contentRange === undefined) {
      throw new StoreRequestError(
        `S3 get ${describeKey(key)} in ${this.url}: unusable Content-Range header`,
        {
          retryable: false,
          serverCode: "BadContentRange",
        },
      );
    }
    if (contentRange) {
      return {
        notModified: false,
        body: raw,
        meta: { key, size: contentRange.total, etag, lastModified },
        offset: contentRange.start,
      };
    }
    // No Content-Range: the server sent the whole object; cut the range here.
    const span = resolveRange(range, raw.length);
    const body =
      span.start === 0 && span.end === raw.length ? raw : raw.slice(span.start, span.end);
    return {
      notModified: false,
      body,
      meta: { key, size: raw.length, etag, lastModified },
      offset: span.start,
    };
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectMeta | undefined> {
    const objectKey = this.objectKey(key);
    return this.run("head", "head", key, options.signal, async ({ signal }) => {
      let sent: { response: Response; idle: IdleWatch };
      try {
        sent = await this.send({ method: "HEAD", objectKey, signal });
      } catch (error) {
        if (error instanceof S3HttpError && error.status === 404) return undefined;
        throw error;
      }
      sent.idle.done();
      await sent.response.body?.cancel().catch(() => {});
      return this.metaOf(key, sent.response.headers);
    });
  }

  private metaOf(key: string, headers: Headers): ObjectMeta {
    const size = Number(headers.get("content-length") ?? "0");
    const modified = new Date(headers.get("last-modified") ?? 0);
    return {
      key,
      size: Number.isSafeInteger(size) && size >= 0 ? size : 0,
      etag: unquoteEtag(headers.get("etag") ?? ""),
      lastModified: Number.isNaN(modified.getTime()) ? new Date(0) : modified,
    };
  }

  /** A put failure as `PreconditionFailedError` when it is one, else unchanged. */
  private conditionalFailure(key: string, options: PutOptions, error: unknown): unknown {
    if (!(error instanceof S3HttpError)) return error;
    if (error.status === 412 || error.serverCode === "PreconditionFailed") {
      return new PreconditionFailedError(key);
    }
    // If-Match on a missing key: AWS answers 404, RGW 412.
    if (
      options.ifMatch !== undefined &&
      error.status === 404 &&
      error.serverCode !== "NoSuchBucket"
    ) {
      return new PreconditionFailedError(key);
    }
    return error;
  }

  private conditionHeaders(options: PutOptions): Record<string, string> {
    return {
      ...(options.ifNoneMatch === "*" ? { "if-none-match": "*" } : {}),
      ...(options.ifMatch !== undefined ? { "if-match": unquoteEtag(options.ifMatch) } : {}),
    };
  }

  /** Sends a request whose answer's body is of no interest; returns the answer's headers. */
  private async call(call: S3Call): Promise<Headers> {
    const { response, idle } = await this.send(call);
    idle.done();
    await response.body?.cancel().catch(() => {});
    return response.headers;
  }

  /** Sends a request and reads its (small, XML) answer. */
  private async callXml(call: S3Call): Promise<string> {
    const { response, idle } = await this.send(call);
    const body = await this.readBody(response, idle, 64 * 1024 * 1024);
    return new TextDecoder().decode(body);
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    const objectKey = this.objectKey(key);
    checkBody(body);
    checkPutOptions(options);
    if (body.length > this.multipartThreshold) {
      this.runner.check(options.signal);
      const etag = await uploadMultipart(
        key,
        this.url,
        bodyParts(body, this.partSize),
        this.multipartSteps(key, objectKey, options),
        options,
        this.partConcurrency,
      );
      return this.putResult(key, etag, options);
    }
    const etag = await this.run(
      "put",
      "put",
      key,
      options.signal,
      async ({ signal }) => {
        this.runner.counters.sent(body.length);
        try {
          const headers = await this.call({
            method: "PUT",
            objectKey,
            headers: {
              // As the SDK does: servers (fauxqs) read no body without a content type.
              "content-type": options.contentType || "application/octet-stream",
              ...this.conditionHeaders(options),
            },
            body,
            signal,
          });
          return headers.get("etag") ?? undefined;
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
      const { nextPart, release } = streamParts(reader, head, this.partSize);
      const etag = await uploadMultipart(
        key,
        this.url,
        nextPart,
        this.multipartSteps(key, objectKey, options),
        options,
        this.partConcurrency,
        release,
      );
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
    if (!meta) {
      throw new StoreRequestError(`S3 put ${describeKey(key)}: object vanished`, {
        retryable: false,
      });
    }
    return { etag: meta.etag };
  }

  private multipartSteps(key: string, objectKey: string, options: PutOptions) {
    return {
      create: () =>
        this.run("put", "create multipart upload", key, options.signal, async ({ signal }) => {
          const xml = await this.callXml({
            method: "POST",
            objectKey,
            query: { uploads: "" },
            headers: options.contentType ? { "content-type": options.contentType } : {},
            signal,
          });
          const id = xmlText(xml, "UploadId");
          if (!id) {
            throw new StoreRequestError(`S3 put ${describeKey(key)} in ${this.url}: no upload id`, {
              retryable: false,
            });
          }
          return id;
        }),
      upload: (uploadId: string, partNumber: number, part: Uint8Array, stop: AbortSignal) =>
        this.run(
          "put",
          "upload part",
          key,
          stop,
          async ({ signal }) => {
            this.runner.counters.sent(part.length);
            const headers = await this.call({
              method: "PUT",
              objectKey,
              query: { partNumber, uploadId },
              headers: { "content-type": "application/octet-stream" },
              body: part,
              signal,
            });
            const etag = headers.get("etag");
            if (!etag) {
              throw new StoreRequestError(`S3 upload part of ${describeKey(key)}: no ETag`, {
                retryable: false,
              });
            }
            return etag;
          },
          part.length,
        ),
      complete: (uploadId: string, etags: string[]) =>
        this.run("put", "complete multipart upload", key, options.signal, async ({ signal }) => {
          try {
            const xml = await this.callXml({
              method: "POST",
              objectKey,
              query: { uploadId },
              headers: { "content-type": "application/xml", ...this.conditionHeaders(options) },
              body: completeMultipartXml(etags),
              signal,
            });
            // S3 may answer 200 and put the failure in the body.
            const failed = /<Error>/.test(xml) ? xmlText(xml, "Code") : undefined;
            if (failed !== undefined)
              throw new S3HttpError(500, safeCode(failed), undefined, false);
            return xmlText(xml, "ETag");
          } catch (error) {
            throw this.conditionalFailure(key, options, error);
          }
        }),
      abort: async (uploadId: string) => {
        // Not under the caller's signal: an abandoned upload costs storage.
        await this.run("delete", "abort multipart upload", key, undefined, async ({ signal }) => {
          await this.call({ method: "DELETE", objectKey, query: { uploadId }, signal });
        });
      },
      head: () => this.head(key, options),
    };
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    const { prefix, maxKeys } = checkListOptions(options);
    return this.run("list", "list", prefix, options.signal, async ({ signal }) => {
      const xml = await this.callXml({
        method: "GET",
        query: {
          "list-type": 2,
          prefix: this.prefix + prefix,
          "max-keys": maxKeys,
          ...(options.startAfter ? { "start-after": this.prefix + options.startAfter } : {}),
          ...(options.continuationToken ? { "continuation-token": options.continuationToken } : {}),
        },
        signal,
      });
      const parsed = parseListObjects(xml);
      const objects: ObjectMeta[] = [];
      for (const item of parsed.objects) {
        if (!item.key.startsWith(this.prefix)) continue;
        objects.push({
          ...item,
          key: item.key.slice(this.prefix.length),
          etag: unquoteEtag(item.etag),
        });
      }
      const token = parsed.truncated ? parsed.nextToken : undefined;
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
    const body = new TextEncoder().encode(deleteObjectsXml(batch));
    // S3 wants a checksum of this body; WebCrypto has SHA-256 but no MD5.
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    const checksum = btoa(String.fromCharCode(...digest));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    try {
      await this.run("delete", "delete", label, signal, async ({ signal: attemptSignal }) => {
        const xml = await this.callXml({
          method: "POST",
          query: { delete: "" },
          headers: {
            "content-type": "application/xml",
            "x-amz-checksum-sha256": checksum,
            "x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-content-sha256": hex,
          },
          body,
          signal: attemptSignal,
        });
        const failures = parseDeleteErrors(xml).filter((e) => e.code !== "NoSuchKey");
        const failure = failures[0];
        if (failure) {
          throw new StoreRequestError(
            `S3 delete of ${failures.length} key(s) in ${this.url} failed${failure.code ? `: ${failure.code}` : ""}, e.g. ${describeKey(this.unprefixed(failure.key))}`,
            {
              retryable: failure.code === undefined || RETRYABLE_S3_CODES.has(failure.code),
              ...(failure.code ? { serverCode: failure.code } : {}),
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
              await this.call({ method: "DELETE", objectKey, signal: s });
            } catch (error) {
              if (
                !(
                  error instanceof S3HttpError &&
                  error.status === 404 &&
                  error.serverCode !== "NoSuchBucket"
                )
              ) {
                throw error;
              }
            }
          },
        );
      }
    };
    await Promise.all(Array.from({ length: SINGLE_DELETE_CONCURRENCY }, worker));
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

  /** The server's time as this store tracks it (from answers' `Date`); undefined before any answer. */
  serverTime(): number | undefined {
    return this.answered ? Date.now() + this.offset : undefined;
  }

  async close(): Promise<void> {
    this.runner.close();
  }
}

/** Internal: the idle watch fired (no answer or no body byte for `ms`). */
class IdleTimeout extends Error {
  constructor(
    readonly ms: number,
    cause: unknown,
  ) {
    super("idle timeout", { cause });
  }
}
