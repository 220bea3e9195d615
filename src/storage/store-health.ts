/**
 * The health bookkeeping every store shares: failed attempts reported to
 * listeners as they happen, and a snapshot (`failingSince`, last error,
 * attempts in flight) that shows an outage from its first failed attempt.
 * Runtime-agnostic.
 */
import type { AttemptFailure, StoreHealth } from "./object-store.js";
import { InvalidStoreArgumentError } from "./store-errors.js";

/** Tracks one store's attempts: successes, failures, and those in flight. */
export class StoreHealthTracker {
  private readonly listeners = new Set<(failure: AttemptFailure) => void>();
  private readonly inFlight = new Map<number, number>();
  private nextId = 0;
  private failingSince: number | null = null;
  private consecutiveFailures = 0;
  private lastError: { message: string; code: string; reason: string; at: number } | null = null;
  private lastSuccessAt: number | null = null;

  /** Registers a listener for failed attempts; returns its remover. */
  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    if (typeof listener !== "function") {
      throw new InvalidStoreArgumentError("onAttemptFailure needs a function");
    }
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** An attempt starts; pass the returned id to {@link ended}. */
  started(): number {
    const id = this.nextId++;
    this.inFlight.set(id, Date.now());
    return id;
  }

  ended(id: number): void {
    this.inFlight.delete(id);
  }

  /** The server answered (a success, or a definite answer such as not found). */
  succeeded(): void {
    this.failingSince = null;
    this.consecutiveFailures = 0;
    this.lastSuccessAt = Date.now();
  }

  /** An attempt failed: recorded, then every listener is told (a throwing listener is ignored). */
  failed(failure: AttemptFailure): void {
    const at = Date.now();
    this.failingSince ??= at;
    this.consecutiveFailures++;
    this.lastError = {
      message: failure.error.message,
      code: failure.error.code,
      reason: failure.reason,
      at,
    };
    for (const listener of this.listeners) {
      try {
        listener(failure);
      } catch {
        // A broken listener must not change what the request does.
      }
    }
  }

  /** A snapshot of the store's health. */
  snapshot(): StoreHealth {
    let oldest: number | null = null;
    for (const started of this.inFlight.values()) {
      if (oldest === null || started < oldest) oldest = started;
    }
    return {
      failingSince: this.failingSince === null ? null : new Date(this.failingSince),
      consecutiveFailures: this.consecutiveFailures,
      lastError: this.lastError && { ...this.lastError, at: new Date(this.lastError.at) },
      lastSuccessAt: this.lastSuccessAt === null ? null : new Date(this.lastSuccessAt),
      inFlight: this.inFlight.size,
      oldestInFlightSince: oldest === null ? null : new Date(oldest),
    };
  }
}
