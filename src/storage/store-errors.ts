/**
 * Typed errors of the storage layer. Messages name the store location and the
 * key, never credentials, signed URLs or server-supplied text that could echo
 * them.
 */
import { PagecastError } from "../errors.js";
import type { ObjectMeta } from "./object-store.js";

/** `get` of a key that does not exist. */
export class NotFoundError extends PagecastError {
  /** The key that was asked for (relative to the store). */
  readonly key: string;

  constructor(key: string, options?: { cause?: unknown }) {
    super("STORE_NOT_FOUND", `object not found: ${key}`, options);
    this.key = key;
  }
}

/**
 * The key of the object whose absence made `err` (itself, or a cause a few
 * levels down: a query's I/O error, a download's failure), or undefined when
 * a missing object is not why it failed. A planned file deleted meanwhile
 * (retention) is a stale plan, which readers and restore plan again.
 */
export function missingObjectKey(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof NotFoundError) return e.key;
    const { code, key, message } = e as { code?: unknown; key?: unknown; message?: unknown };
    if (code === "STORE_NOT_FOUND") return typeof key === "string" ? key : String(message);
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A conditional put (`ifNoneMatch: "*"` or `ifMatch`) whose condition did not hold. */
export class PreconditionFailedError extends PagecastError {
  /** The key that was written (relative to the store). */
  readonly key: string;
  /**
   * True when an earlier attempt of this same put failed in a way that may have
   * reached the server (a network error, a timeout, a 5xx). The object may then
   * already hold this put's own body, so the caller should read it back before
   * concluding that someone else won.
   */
  readonly ambiguous: boolean;

  constructor(key: string, options?: { cause?: unknown; ambiguous?: boolean }) {
    const ambiguous = options?.ambiguous ?? false;
    super(
      "STORE_PRECONDITION_FAILED",
      `precondition failed for ${key}${ambiguous ? " (after a retried attempt that may have succeeded)" : ""}`,
      options,
    );
    this.key = key;
    this.ambiguous = ambiguous;
  }
}

/** A store URL that cannot be used (wrong scheme, bad bucket, embedded secrets...). */
export class InvalidStoreUrlError extends PagecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("STORE_INVALID_URL", message, options);
  }
}

/** A key, prefix, range or option that the store refuses (e.g. a key escaping a file store's root). */
export class InvalidStoreArgumentError extends PagecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("STORE_INVALID_ARGUMENT", message, options);
  }
}

/** Options of {@link StoreRequestError}. */
export interface StoreRequestErrorOptions {
  retryable: boolean;
  status?: number;
  serverCode?: string;
  /** Short, credential-free cause for progress lines, e.g. `timeout: no data for 10 s`. */
  reason?: string;
  /** The server refused the request's signing time (see {@link StoreRequestError.clockSkew}). */
  clockSkew?: boolean;
  cause?: unknown;
}

/** A request that failed for another reason: network, server error, throttling, access denied. */
export class StoreRequestError extends PagecastError {
  /** Whether trying again later may succeed (network errors, timeouts, 5xx, 429, throttling). */
  readonly retryable: boolean;
  /** HTTP status when the failure came from an HTTP response. */
  readonly status: number | undefined;
  /**
   * Server error code when known, e.g. `SlowDown`, `AccessDenied`, a system code
   * like `ECONNRESET`, or `Timeout` for an attempt that got no (complete) answer in time.
   */
  readonly serverCode: string | undefined;
  /**
   * Short cause without the store's location, for progress lines:
   * `timeout: no data for 10 s`, `HTTP 503 SlowDown`, `network error ECONNREFUSED`.
   */
  readonly reason: string;
  /**
   * True when the server refused the request because of the client's clock
   * (`RequestTimeTooSkewed`) and the client has corrected its offset from the
   * server's time: the store repeats such a request even when retries are off.
   */
  readonly clockSkew: boolean;

  constructor(message: string, options: StoreRequestErrorOptions, code = "STORE_REQUEST_FAILED") {
    super(code, message, { cause: options.cause });
    this.retryable = options.retryable;
    this.status = options.status;
    this.serverCode = options.serverCode;
    this.clockSkew = options.clockSkew ?? false;
    this.reason =
      options.reason ??
      (options.status !== undefined
        ? `HTTP ${options.status}${options.serverCode ? ` ${options.serverCode}` : ""}`
        : options.serverCode
          ? options.serverCode === "Timeout"
            ? "timeout"
            : `error ${options.serverCode}`
          : "request failed");
  }
}

/**
 * An operation (one request and its retries) that found no answer before its
 * deadline (`RetryOptions.operationTimeoutMs`): the store is hung or too slow.
 * Retryable: a later attempt may find storage back.
 */
export class StoreTimeoutError extends StoreRequestError {
  /** The deadline that ran out, in ms. */
  readonly timeoutMs: number;
  /** Attempts made before the deadline. */
  readonly attempts: number;

  constructor(
    message: string,
    options: { timeoutMs: number; attempts: number; reason: string; cause?: unknown },
  ) {
    super(
      message,
      {
        retryable: true,
        serverCode: "Timeout",
        reason: options.reason,
        ...(options.cause !== undefined ? { cause: options.cause } : {}),
      },
      "STORE_TIMEOUT",
    );
    this.timeoutMs = options.timeoutMs;
    this.attempts = options.attempts;
  }
}

/**
 * A `get` whose body would exceed the caller's `maxBytes`: refused before the
 * body is downloaded (the object comes from storage and is untrusted). A
 * definite answer, never retried.
 */
export class ObjectTooLargeError extends PagecastError {
  /** The key that was asked for (relative to the store). */
  readonly key: string;
  /** Bytes the body would have had (the object's size for a whole read), when known. */
  readonly size: number | undefined;
  /** The limit the caller gave. */
  readonly maxBytes: number;
  /** The object's metadata, when the store learnt it (e.g. to replace the object by compare-and-swap). */
  readonly meta: ObjectMeta | undefined;

  constructor(
    key: string,
    options: { size?: number; maxBytes: number; meta?: ObjectMeta; cause?: unknown },
  ) {
    super(
      "STORE_OBJECT_TOO_LARGE",
      `object ${key} is ${options.size === undefined ? "larger than" : `${options.size} bytes, over`} the ${options.maxBytes}-byte limit for this read`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.key = key;
    this.size = options.size;
    this.maxBytes = options.maxBytes;
    this.meta = options.meta;
  }
}

/** The caller's `AbortSignal` fired; the operation was abandoned. */
export class StoreAbortedError extends PagecastError {
  constructor(message = "store operation aborted", options?: { cause?: unknown }) {
    super("STORE_ABORTED", message, options);
  }
}

/** An operation on a store after `close()`. */
export class StoreClosedError extends PagecastError {
  constructor(url: string) {
    super("STORE_CLOSED", `store is closed: ${url}`);
  }
}
