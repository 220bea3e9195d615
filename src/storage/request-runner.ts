/**
 * The shared request loop of every backend: counts each attempt, bounds it
 * with a timeout, maps failures to typed errors, and retries the retryable
 * ones with exponential backoff and full jitter. Backends only say how to do
 * one attempt and how to classify what it throws.
 */
import { PagecastError } from "../errors.js";
import type { RequestKind } from "./object-store.js";
import { CounterSet } from "./store-counters.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
  StoreRequestError,
} from "./store-errors.js";

/** How a store retries. Every field is optional. */
export interface RetryOptions {
  /** Attempts per request including the first (default 5; 1 disables retries). */
  maxAttempts?: number;
  /** Backoff cap of the first retry in ms (default 100); doubles per retry. */
  baseDelayMs?: number;
  /** Upper bound of any backoff in ms (default 10 000). */
  maxDelayMs?: number;
  /**
   * Time limit of one attempt in ms, body transfer included (default 120 000;
   * 0 disables). An attempt that runs out fails as a retryable timeout.
   */
  attemptTimeoutMs?: number;
  /** Source of jitter in [0, 1) (default `Math.random`; tests pin it). */
  random?: () => number;
}

/** What one attempt gets from the runner. */
export interface AttemptContext {
  /** Fires when the caller aborts or the attempt times out; pass it to the transport. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
}

/** Turns whatever an attempt threw into a typed error (retryable or not). */
export type ErrorMapper = (error: unknown) => PagecastError;

const DEFAULTS = {
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  attemptTimeoutMs: 120_000,
};

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) {
    throw new InvalidStoreArgumentError(`retry option ${name} must be a number >= ${min}`);
  }
  return value;
}

/** Errors that are answers rather than failures: they are not counted as errors. */
function isAnswer(error: unknown): boolean {
  return (
    error instanceof NotFoundError ||
    error instanceof PreconditionFailedError ||
    error instanceof InvalidStoreArgumentError
  );
}

function defaultMapper(error: unknown): PagecastError {
  if (error instanceof PagecastError) return error;
  return new StoreRequestError("store request failed", { retryable: false, cause: error });
}

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

/** Runs a store's requests; owns its counters and its closed state. */
export class RequestRunner {
  /** Counters of every attempt made through this runner. */
  readonly counters = new CounterSet();
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly random: () => number;
  private closed = false;

  /** `describe` names the store in errors (a credential-free URL). */
  constructor(
    private readonly describe: () => string,
    options: RetryOptions = {},
  ) {
    this.maxAttempts = Math.floor(
      checkCount("maxAttempts", options.maxAttempts ?? DEFAULTS.maxAttempts, 1),
    );
    this.baseDelayMs = checkCount("baseDelayMs", options.baseDelayMs ?? DEFAULTS.baseDelayMs, 0);
    this.maxDelayMs = checkCount("maxDelayMs", options.maxDelayMs ?? DEFAULTS.maxDelayMs, 0);
    this.attemptTimeoutMs = checkCount(
      "attemptTimeoutMs",
      options.attemptTimeoutMs ?? DEFAULTS.attemptTimeoutMs,
      0,
    );
    this.random = options.random ?? Math.random;
  }

  /** Makes every later `run` fail with `StoreClosedError`. */
  close(): void {
    this.closed = true;
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

  /**
   * Runs `attempt` until it succeeds, fails with a non-retryable error, or the
   * attempts are used up. Each attempt counts as one request of `kind`.
   */
  async run<T>(
    kind: RequestKind,
    signal: AbortSignal | undefined,
    attempt: (context: AttemptContext) => Promise<T>,
    mapError: ErrorMapper = defaultMapper,
  ): Promise<T> {
    let mayHaveReachedServer = false;
    for (let n = 1; ; n++) {
      this.check(signal);
      this.counters.request(kind);
      let error: PagecastError;
      try {
        return await this.attemptOnce(n, signal, attempt);
      } catch (raw) {
        error = raw instanceof AttemptTimeout ? raw.error : mapError(raw);
        if (signal?.aborted && !(error instanceof StoreAbortedError)) {
          error = new StoreAbortedError(undefined, { cause: signal.reason });
        }
      }
      if (!isAnswer(error)) this.counters.error();
      if (error instanceof PreconditionFailedError && mayHaveReachedServer && !error.ambiguous) {
        error = new PreconditionFailedError(error.key, { ambiguous: true, cause: error.cause });
      }
      if (!(error instanceof StoreRequestError && error.retryable) || n >= this.maxAttempts) {
        throw error;
      }
      mayHaveReachedServer = true;
      this.counters.retry();
      await abortableDelay(this.backoffMs(n), signal);
    }
  }

  private attemptOnce<T>(
    n: number,
    signal: AbortSignal | undefined,
    attempt: (context: AttemptContext) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timeout: StoreRequestError | undefined;
    let onAbort: (() => void) | undefined;
    // Racing the attempt against its signal means a transport that ignores the
    // signal still cannot hang the caller.
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => {
        controller.abort(signal?.reason);
        reject(new StoreAbortedError(undefined, { cause: signal?.reason }));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (this.attemptTimeoutMs > 0) {
        const ms = this.attemptTimeoutMs;
        timer = setTimeout(() => {
          timeout = new StoreRequestError(
            `request to ${this.describe()} timed out after ${ms} ms`,
            {
              retryable: true,
              serverCode: "Timeout",
            },
          );
          controller.abort(timeout);
          reject(timeout);
        }, ms);
      }
    });
    stopped.catch(() => {});
    return Promise.race([attempt({ signal: controller.signal, attempt: n }), stopped])
      .catch((error: unknown) => {
        // Whatever the transport threw after our timer aborted it, the cause is the timeout.
        throw timeout ? new AttemptTimeout(timeout) : error;
      })
      .finally(() => {
        clearTimeout(timer);
        if (onAbort) signal?.removeEventListener("abort", onAbort);
      });
  }
}

/** Internal marker: the attempt timer fired (distinct from whatever the transport threw). */
class AttemptTimeout {
  constructor(readonly error: StoreRequestError) {}
}
