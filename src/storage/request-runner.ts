/**
 * The shared request loop of every backend: counts each attempt, bounds it
 * with a timeout and the whole operation with a deadline, maps failures to
 * typed errors, retries the retryable ones with exponential backoff and full
 * jitter, and reports each failed attempt as it happens (listeners and a
 * health snapshot). Backends only say how to do one attempt and how to
 * classify what it throws.
 */
import { PagecastError } from "../errors.js";
import type { AttemptFailure, RequestKind, StoreHealth } from "./object-store.js";
import { CounterSet } from "./store-counters.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
  StoreRequestError,
  StoreTimeoutError,
} from "./store-errors.js";
import { StoreHealthTracker } from "./store-health.js";

/** How a store retries and how long it waits. Every field is optional. */
export interface RetryOptions {
  /** Attempts per request including the first (default 5; 1 disables retries). */
  maxAttempts?: number;
  /** Backoff cap of the first retry in ms (default 100); doubles per retry. */
  baseDelayMs?: number;
  /** Upper bound of any backoff in ms (default 10 000). */
  maxDelayMs?: number;
  /**
   * Time limit of one attempt in ms, body transfer included (default 20 000;
   * 0 disables), extended for large bodies (see `minBytesPerSecond`). An
   * attempt that runs out fails as a retryable timeout. S3 stores also fail
   * an attempt sooner when its connection stays silent (`S3StoreOptions`
   * `connectTimeoutMs` and `idleTimeoutMs`).
   */
  attemptTimeoutMs?: number;
  /**
   * Deadline of one operation (a request with all its retries and backoffs)
   * in ms (default 30 000; 0 disables), extended for large bodies like the
   * attempt limit. When it runs out the operation fails with
   * `StoreTimeoutError` (`STORE_TIMEOUT`, retryable), whatever attempts remain.
   */
  operationTimeoutMs?: number;
  /**
   * Slowest transfer rate still considered alive, in bytes per second
   * (default 131 072, i.e. 1 Mbit/s): a request carrying or expecting `n`
   * body bytes gets `n / minBytesPerSecond` seconds on top of both limits, so
   * a big upload on a slow link is not mistaken for a hang.
   */
  minBytesPerSecond?: number;
  /** Source of jitter in [0, 1) (default `Math.random`; tests pin it). */
  random?: () => number;
  /**
   * Called after every failed attempt, as it happens (before the retry's
   * backoff): for progress lines and health displays. Same as registering
   * with the store's `onAttemptFailure`.
   */
  onAttemptFailure?: (failure: AttemptFailure) => void;
}

/** What one attempt gets from the runner. */
export interface AttemptContext {
  /** Fires when the caller aborts, the attempt times out or the store closes; pass it to the transport. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
  /**
   * Tells the runner how many body bytes this attempt transfers, once known
   * (e.g. from a response's `Content-Length`): its time limit and the
   * operation's deadline grow by `bytes / minBytesPerSecond`. Only the first
   * call of an attempt counts.
   */
  expectBytes(bytes: number): void;
}

/** What a backend tells the runner about one operation. */
export interface RunInfo {
  /** Names the operation in messages, e.g. `S3 get pagecast-head.json` (default: the request kind). */
  operation?: string;
  /** Body bytes the request sends or expects, when known: extends its time limits. */
  bytes?: number;
}

/** Turns whatever an attempt threw into a typed error (retryable or not). */
export type ErrorMapper = (error: unknown) => PagecastError;

/** Defaults of {@link RetryOptions} (exported for documentation and tests). */
export const RETRY_DEFAULTS = {
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  attemptTimeoutMs: 20_000,
  operationTimeoutMs: 30_000,
  minBytesPerSecond: 128 * 1024,
} as const;

/** Retries after a clock-skew correction allowed per operation, on top of `maxAttempts`. */
const CLOCK_SKEW_RETRIES = 2;

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) {
    throw new InvalidStoreArgumentError(`retry option ${name} must be a number >= ${min}`);
  }
  return value;
}

/** Errors that are the server's definite answers: neither failures nor retried. */
function isAnswer(error: unknown): boolean {
  return (
    error instanceof NotFoundError ||
    error instanceof PreconditionFailedError ||
    error instanceof ObjectTooLargeError
  );
}

/** Errors raised on this side without a storage problem: not failures of the store. */
function isLocal(error: unknown): boolean {
  return (
    error instanceof InvalidStoreArgumentError ||
    error instanceof StoreAbortedError ||
    error instanceof StoreClosedError
  );
}

function defaultMapper(error: unknown): PagecastError {
  if (error instanceof PagecastError) return error;
  return new StoreRequestError("store request failed", { retryable: false, cause: error });
}

/** `1.5 s`, `400 ms`: durations in messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

/** Short cause of a failure, for progress lines. */
export function failureReason(error: unknown): string {
  if (error instanceof StoreRequestError) return error.reason;
  if (error instanceof PagecastError) return error.code;
  return "request failed";
}

const monotonic: () => number =
  typeof globalThis.performance?.now === "function"
    ? () => globalThis.performance.now()
    : () => Date.now();

/** Resolves after `ms`, or rejects with `StoreAbortedError` when `signal` fires first. */
export function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new StoreAbortedError(undefined, { cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new StoreAbortedError(undefined, { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Runs a store's requests; owns its counters, health and closed state. */
export class RequestRunner {
  /** Counters of every attempt made through this runner. */
  readonly counters = new CounterSet();
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly operationTimeoutMs: number;
  private readonly minBytesPerSecond: number;
  private readonly random: () => number;
  /**
   * Called on close: attempts in flight and backoffs end at once. Plain
   * callbacks, not a long-lived AbortSignal: Workers refuse I/O objects made
   * in one request from being used in another.
   */
  private readonly onClose = new Set<() => void>();
  private closed = false;
  private readonly tracker = new StoreHealthTracker();

  /** `describe` names the store in errors (a credential-free URL). */
  constructor(
    private readonly describe: () => string,
    options: RetryOptions = {},
  ) {
    this.maxAttempts = Math.floor(
      checkCount("maxAttempts", options.maxAttempts ?? RETRY_DEFAULTS.maxAttempts, 1),
    );
    this.baseDelayMs = checkCount(
      "baseDelayMs",
      options.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs,
      0,
    );
    this.maxDelayMs = checkCount("maxDelayMs", options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs, 0);
    this.attemptTimeoutMs = checkCount(
      "attemptTimeoutMs",
      options.attemptTimeoutMs ?? RETRY_DEFAULTS.attemptTimeoutMs,
      0,
    );
    this.operationTimeoutMs = checkCount(
      "operationTimeoutMs",
      options.operationTimeoutMs ?? RETRY_DEFAULTS.operationTimeoutMs,
      0,
    );
    this.minBytesPerSecond = checkCount(
      "minBytesPerSecond",
      options.minBytesPerSecond ?? RETRY_DEFAULTS.minBytesPerSecond,
      1,
    );
    this.random = options.random ?? Math.random;
    if (options.onAttemptFailure !== undefined) {
      if (typeof options.onAttemptFailure !== "function") {
        throw new InvalidStoreArgumentError("retry option onAttemptFailure must be a function");
      }
      this.tracker.onAttemptFailure(options.onAttemptFailure);
    }
  }

  /** Makes every later `run` fail with `StoreClosedError`; attempts in flight end with it too. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const callback of [...this.onClose]) callback();
    this.onClose.clear();
  }

  /** Throws if the store is closed or the signal has fired. */
  check(signal?: AbortSignal): void {
    if (this.closed) throw new StoreClosedError(this.describe());
    if (signal?.aborted) throw new StoreAbortedError(undefined, { cause: signal.reason });
  }

  /** Backoff before retry number `retry` (1-based): full jitter over a doubling cap. */
  backoffMs(retry: number): number {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (retry - 1));
    return Math.floor(this.random() * cap);
  }

  /** Registers a listener for failed attempts; returns its remover. */
  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    return this.tracker.onAttemptFailure(listener);
  }

  /** A snapshot of the store's health. */
  health(): StoreHealth {
    return this.tracker.snapshot();
  }

  /** Extra time for `bytes` of body at the slowest acceptable rate. */
  private allowanceMs(bytes: number | undefined): number {
    if (bytes === undefined || !(bytes > 0)) return 0;
    return Math.ceil((bytes * 1000) / this.minBytesPerSecond);
  }

  /**
   * Runs `attempt` until it succeeds, fails with a non-retryable error, the
   * attempts are used up or the operation's deadline passes. Each attempt
   * counts as one request of `kind`.
   */
  async run<T>(
    kind: RequestKind,
    signal: AbortSignal | undefined,
    attempt: (context: AttemptContext) => Promise<T>,
    mapError: ErrorMapper = defaultMapper,
    info: RunInfo = {},
  ): Promise<T> {
    const operation = info.operation ?? `${kind} request`;
    const allowance = this.allowanceMs(info.bytes);
    const started = monotonic();
    // Grows when an attempt learns the size of what it transfers.
    let budget = this.operationTimeoutMs > 0 ? this.operationTimeoutMs + allowance : 0;
    const deadline = () => (budget > 0 ? started + budget : Number.POSITIVE_INFINITY);
    const deadlineError = (attempts: number, last: unknown) =>
      new StoreTimeoutError(
        `${operation} in ${this.describe()}: no answer within ${formatDuration(budget)} ` +
          `(${attempts} attempt${attempts === 1 ? "" : "s"}; last: ${failureReason(last)})`,
        { timeoutMs: budget, attempts, reason: `no answer within ${formatDuration(budget)}` },
      );
    let mayHaveReachedServer = false;
    let skewRetries = 0;
    for (let n = 1; ; n++) {
      this.check(signal);
      const limits: AttemptLimits = {
        own:
          this.attemptTimeoutMs > 0 ? this.attemptTimeoutMs + allowance : Number.POSITIVE_INFINITY,
        deadline: deadline(),
        extend: (bytes) => {
          const extra = this.allowanceMs(bytes) - allowance;
          if (!(extra > 0)) return 0;
          if (budget > 0) budget += extra;
          return extra;
        },
      };
      this.counters.request(kind);
      let error: PagecastError;
      try {
        const value = await this.attemptOnce(n, signal, attempt, operation, limits);
        this.tracker.succeeded();
        return value;
      } catch (raw) {
        if (raw instanceof AttemptTimeout) {
          error = raw.byDeadline ? deadlineError(n, raw.error) : raw.error;
        } else {
          error = mapError(raw);
        }
        if (signal?.aborted && !(error instanceof StoreAbortedError)) {
          error = new StoreAbortedError(undefined, { cause: signal.reason });
        }
        if (this.closed && !(error instanceof StoreAbortedError)) {
          error = new StoreClosedError(this.describe());
        }
      }
      if (isAnswer(error)) {
        this.tracker.succeeded();
      } else if (!isLocal(error)) {
        this.counters.error();
      }
      if (error instanceof PreconditionFailedError && mayHaveReachedServer && !error.ambiguous) {
        error = new PreconditionFailedError(error.key, { ambiguous: true, cause: error.cause });
      }
      if (isAnswer(error) || isLocal(error)) throw error;
      // A clock-skew refusal was corrected by the client: one more try, free of the budget.
      const free =
        error instanceof StoreRequestError && error.clockSkew && skewRetries < CLOCK_SKEW_RETRIES;
      const counted = n - skewRetries;
      let willRetry =
        error instanceof StoreRequestError &&
        error.retryable &&
        !(error instanceof StoreTimeoutError) &&
        (free || counted < this.maxAttempts);
      const delayMs = willRetry && !free ? this.backoffMs(counted) : 0;
      let final: PagecastError = error;
      if (willRetry && monotonic() + delayMs >= deadline()) {
        willRetry = false;
        final = deadlineError(n, error);
      } else if (
        !willRetry &&
        n > 1 &&
        error instanceof StoreRequestError &&
        error.constructor === StoreRequestError &&
        error.retryable
      ) {
        final = new StoreRequestError(
          `${error.message} (gave up after ${n} attempts in ${formatDuration(monotonic() - started)})`,
          {
            retryable: true,
            ...(error.status !== undefined ? { status: error.status } : {}),
            ...(error.serverCode !== undefined ? { serverCode: error.serverCode } : {}),
            reason: error.reason,
            clockSkew: error.clockSkew,
            cause: error,
          },
        );
      }
      this.tracker.failed({
        url: this.describe(),
        kind,
        operation,
        attempt: n,
        maxAttempts: this.maxAttempts,
        error,
        reason: failureReason(error),
        willRetry,
        delayMs: willRetry ? delayMs : 0,
        elapsedMs: Math.round(monotonic() - started),
      });
      if (!willRetry) throw final;
      if (free) skewRetries++;
      mayHaveReachedServer = true;
      this.counters.retry();
      await this.pause(delayMs, signal);
    }
  }

  /** Backoff that ends early when the caller aborts or the store closes. */
  private async pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (ms <= 0) return;
    const both = new AbortController();
    const stop = () => both.abort();
    signal?.addEventListener("abort", stop, { once: true });
    this.onClose.add(stop);
    if (signal?.aborted || this.closed) stop();
    try {
      await abortableDelay(ms, both.signal);
    } catch (error) {
      if (signal?.aborted) throw new StoreAbortedError(undefined, { cause: signal.reason });
      if (this.closed) throw new StoreClosedError(this.describe());
      throw error;
    } finally {
      signal?.removeEventListener("abort", stop);
      this.onClose.delete(stop);
    }
  }

  private attemptOnce<T>(
    n: number,
    signal: AbortSignal | undefined,
    attempt: (context: AttemptContext) => Promise<T>,
    operation: string,
    limits: AttemptLimits,
  ): Promise<T> {
    const controller = new AbortController();
    const id = this.tracker.started();
    const began = monotonic();
    let own = limits.own;
    let deadline = limits.deadline;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timeout: AttemptTimeout | undefined;
    let onAbort: (() => void) | undefined;
    let onClose: (() => void) | undefined;
    let arm: () => void = () => {};
    let sized = false;
    const expectBytes = (bytes: number) => {
      if (sized || !(bytes > 0)) return;
      sized = true;
      const extra = limits.extend(bytes);
      if (extra <= 0) return;
      own += extra;
      deadline += extra;
      arm();
    };
    // Racing the attempt against its signal means a transport that ignores the
    // signal still cannot hang the caller.
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => {
        controller.abort(signal?.reason);
        reject(new StoreAbortedError(undefined, { cause: signal?.reason }));
      };
      onClose = () => {
        const closed = new StoreClosedError(this.describe());
        controller.abort(closed);
        reject(closed);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.onClose.add(onClose);
      // (Re)starts the timer for what is left of the attempt's limit.
      arm = () => {
        clearTimeout(timer);
        const byDeadline = deadline - began < own;
        const limit = Math.min(own, deadline - began);
        if (!Number.isFinite(limit)) return;
        timer = setTimeout(
          () => {
            const ms = limit;
            const error = new StoreRequestError(
              `${operation} in ${this.describe()} timed out after ${formatDuration(ms)}`,
              {
                retryable: true,
                serverCode: "Timeout",
                reason: `timeout after ${formatDuration(ms)}`,
              },
            );
            timeout = new AttemptTimeout(error, byDeadline);
            controller.abort(error);
            reject(error);
          },
          Math.max(0, limit - (monotonic() - began)),
        );
      };
      arm();
    });
    stopped.catch(() => {});
    return Promise.race([attempt({ signal: controller.signal, attempt: n, expectBytes }), stopped])
      .catch((error: unknown) => {
        // Whatever the transport threw after our timer aborted it, the cause is the timeout.
        throw timeout ?? error;
      })
      .finally(() => {
        clearTimeout(timer);
        this.tracker.ended(id);
        if (onAbort) signal?.removeEventListener("abort", onAbort);
        if (onClose) this.onClose.delete(onClose);
      });
  }
}

/** The time limits of one attempt (ms since its start for `own`; monotonic time for `deadline`). */
interface AttemptLimits {
  /** The attempt's own limit, in ms. */
  own: number;
  /** When the operation's deadline passes (monotonic ms). */
  deadline: number;
  /** Grows the operation's budget for `bytes` of body; returns the ms added. */
  extend: (bytes: number) => number;
}

/** Internal marker: the attempt timer fired (distinct from whatever the transport threw). */
class AttemptTimeout {
  constructor(
    readonly error: StoreRequestError,
    /** The operation's deadline, not the attempt's own limit, ran out. */
    readonly byDeadline: boolean,
  ) {}
}
