/**
 * Typed errors of the storage layer. Messages name the store location and the
 * key, never credentials, signed URLs or server-supplied text that could echo
 * them.
 */
import { PagecastError } from "../errors.js";

/** `get` of a key that does not exist. */
export class NotFoundError extends PagecastError {
  /** The key that was asked for (relative to the store). */
  readonly key: string;

  constructor(key: string, options?: { cause?: unknown }) {
    super("STORE_NOT_FOUND", `object not found: ${key}`, options);
    this.key = key;
  }
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

/** A request that failed for another reason: network, server error, throttling, access denied. */
export class StoreRequestError extends PagecastError {
  /** Whether trying again later may succeed (network errors, timeouts, 5xx, 429, throttling). */
  readonly retryable: boolean;
  /** HTTP status when the failure came from an HTTP response. */
  readonly status: number | undefined;
  /** Server error code when known, e.g. `SlowDown`, `AccessDenied`, or a system code like `ECONNRESET`. */
  readonly serverCode: string | undefined;

  constructor(
    message: string,
    options: { retryable: boolean; status?: number; serverCode?: string; cause?: unknown },
  ) {
    super("STORE_REQUEST_FAILED", message, { cause: options.cause });
    this.retryable = options.retryable;
    this.status = options.status;
    this.serverCode = options.serverCode;
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
