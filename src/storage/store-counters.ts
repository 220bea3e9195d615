/**
 * The one counter implementation every backend and wrapper shares, so that
 * `counters()` means the same thing everywhere.
 */
import type { RequestKind, StoreCounters } from "./object-store.js";

/** A fresh all-zero `StoreCounters`. */
export function emptyCounters(): StoreCounters {
  return {
    requests: { get: 0, head: 0, put: 0, list: 0, delete: 0 },
    bytesIn: 0,
    bytesOut: 0,
    errors: 0,
    retries: 0,
  };
}

/** Field-by-field sum of two counter snapshots. */
export function addCounters(a: StoreCounters, b: StoreCounters): StoreCounters {
  const sum = emptyCounters();
  for (const kind of Object.keys(sum.requests) as RequestKind[]) {
    sum.requests[kind] = a.requests[kind] + b.requests[kind];
  }
  sum.bytesIn = a.bytesIn + b.bytesIn;
  sum.bytesOut = a.bytesOut + b.bytesOut;
  sum.errors = a.errors + b.errors;
  sum.retries = a.retries + b.retries;
  return sum;
}

/** Mutable counters owned by one store; `snapshot()` hands out copies. */
export class CounterSet {
  private readonly current = emptyCounters();

  /** One request (one attempt) of `kind` was sent. */
  request(kind: RequestKind, count = 1): void {
    this.current.requests[kind] += count;
  }

  /** `n` body bytes were received. */
  received(n: number): void {
    this.current.bytesIn += n;
  }

  /** `n` body bytes were sent. */
  sent(n: number): void {
    this.current.bytesOut += n;
  }

  /** One attempt failed. */
  error(): void {
    this.current.errors += 1;
  }

  /** One attempt is being repeated. */
  retry(): void {
    this.current.retries += 1;
  }

  /** A copy of the counters; later requests do not change it. */
  snapshot(): StoreCounters {
    return addCounters(this.current, emptyCounters());
  }
}
