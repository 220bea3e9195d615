/**
 * Outage mode: whether storage fails right now, since when, and when the
 * next background attempt is due (exponential backoff with jitter, up to
 * `outageRetryMaxDelay`). Said on the log when it starts, every 30 s while
 * it lasts (attempts, next retry), and when storage is back.
 */
import { StoreAbortedError, StoreRequestError } from "../storage/store-errors.js";
import type { ReplicatorLogger } from "./logger.js";

/** Failures that mean "storage is unavailable right now" (as opposed to a bug or a lost lease). */
export function isStorageFailure(err: unknown): boolean {
  return err instanceof StoreRequestError || err instanceof StoreAbortedError;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The outage state (see the module comment). */
export class StorageOutage {
  readonly #log: ReplicatorLogger;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  /** Since when storage fails, or undefined while it works. */
  since: number | undefined;
  /** Background attempts wait until then. */
  retryAt = 0;
  #failures = 0;
  #lastLog = 0;

  constructor(log: ReplicatorLogger, baseDelay: number, maxDelay: number) {
    this.#log = log;
    this.#baseDelay = Math.max(1, baseDelay);
    this.#maxDelay = maxDelay;
  }

  /** Whether a background attempt may run now. */
  due(now: number): boolean {
    return this.since === undefined || now >= this.retryAt;
  }

  /**
   * Runs storage work; returns the storage failure it met (entering outage
   * mode), rethrows anything else. Success ends an outage.
   */
  async attempt(fn: () => Promise<void>, position: () => number): Promise<unknown> {
    try {
      await fn();
    } catch (err) {
      if (!isStorageFailure(err)) throw err;
      this.failed(err);
      return err;
    }
    if (this.since !== undefined) {
      this.#log.info("storage available again; caught up", {
        txid: position(),
        outageMs: Date.now() - this.since,
      });
      this.since = undefined;
    }
    this.#failures = 0;
    this.retryAt = 0;
    return undefined;
  }

  /** An attempt failed (after the store's own retries): back off. */
  failed(err: unknown): void {
    const now = Date.now();
    this.#failures++;
    const cap = Math.min(this.#maxDelay, this.#baseDelay * 2 ** Math.min(this.#failures - 1, 20));
    this.retryAt = now + cap / 2 + (Math.random() * cap) / 2;
    this.note(err, now);
  }

  /** Storage is failing (an attempt failed or stalls, even while the store still retries). */
  note(err: unknown, now: number): void {
    if (this.since === undefined) {
      this.since = now;
      this.#lastLog = now;
      this.#log.warn("storage unavailable; committed changes are kept until it returns", {
        error: errorText(err),
      });
    } else if (now - this.#lastLog >= 30_000) {
      this.#lastLog = now;
      this.#log.warn("storage still unavailable; retrying", {
        for: `${Math.round((now - this.since) / 1000)}s`,
        attempts: this.#failures,
        nextRetryInMs: Math.max(0, Math.round(this.retryAt - now)),
        error: errorText(err),
      });
    }
  }
}
