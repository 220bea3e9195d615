/**
 * Per-proxy request accounting: counts by kind, bytes both ways, and the
 * sequential round trips of a measurement window.
 *
 * Round trips: every request gets a depth when it arrives,
 *   depth = 1 + max(depth of the requests of this window that had completed
 *               before it arrived)   (0 when none had),
 * where "completed" means the proxy handed over the response's last byte
 * (so a dependent request always arrives after its dependency completed).
 * The longest chain of requests that waited on each other is the largest
 * depth among the requests that completed before the measured operation
 * returned. Requests in flight together share a depth, so a wave of parallel
 * range GETs counts once; a request issued only after another's answer counts
 * one more. Because the proxy cannot see causality, a request that merely
 * happened to start after an unrelated one completed is counted as chained:
 * the figure is the number of latency-bound waves on the wire, an upper bound
 * of the causal chain, and with a fixed per-request delay d the wall time is
 * at least depth x d.
 */

/** Absolute milliseconds comparable across processes on one machine. */
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

/** Billing class at AWS S3 list prices: GET-class, PUT/LIST-class, or free. */
export function billingClass(kind) {
  if (kind.startsWith("GET") || kind === "HEAD") return "get";
  if (kind.startsWith("DELETE")) return "free";
  return "put";
}

const MAX_RECORDS = 200_000;

export class RequestLedger {
  #epoch = 0;
  #records = [];
  #dropped = 0;
  #maxCompletedDepth = 0;
  #inflight = 0;

  /** Starts a new window: forgets every request (in-flight ones no longer count). */
  reset() {
    this.#epoch++;
    this.#records = [];
    this.#dropped = 0;
    this.#maxCompletedDepth = 0;
  }

  /** Requests currently in flight (any window). */
  get inflight() {
    return this.#inflight;
  }

  /** Registers a request arriving now; returns its record (call `complete` on it). */
  begin(kind, method, target) {
    this.#inflight++;
    const rec = {
      epoch: this.#epoch,
      kind,
      method,
      target,
      start: nowMs(),
      end: undefined,
      depth: this.#maxCompletedDepth + 1,
      up: 0,
      down: 0,
      status: 0,
    };
    if (this.#records.length < MAX_RECORDS) this.#records.push(rec);
    else this.#dropped++;
    return rec;
  }

  /** Marks a request finished (response fully written, or failed). */
  complete(rec, status) {
    if (rec.end !== undefined) return;
    this.#inflight--;
    rec.end = nowMs();
    rec.status = status;
    if (rec.epoch === this.#epoch && rec.depth > this.#maxCompletedDepth) {
      this.#maxCompletedDepth = rec.depth;
    }
  }

  /**
   * Figures of the current window. `marks` are absolute times (see `nowMs`):
   * for each, the round trips of requests completed by then and the requests
   * started by then.
   */
  summary(marks = []) {
    const recs = this.#records;
    const byKind = {};
    const billing = { get: 0, put: 0, free: 0 };
    let bytesDown = 0;
    let bytesUp = 0;
    let roundTrips = 0;
    let notModified = 0;
    let errors = 0;
    for (const r of recs) {
      const k = byKind[r.kind] ?? { requests: 0, bytesDown: 0, bytesUp: 0 };
      k.requests++;
      k.bytesDown += r.down;
      k.bytesUp += r.up;
      byKind[r.kind] = k;
      billing[billingClass(r.kind)]++;
      bytesDown += r.down;
      bytesUp += r.up;
      if (r.end !== undefined && r.depth > roundTrips) roundTrips = r.depth;
      if (r.status === 304) notModified++;
      if (r.status >= 500 || r.status === 0) errors += r.end !== undefined ? 1 : 0;
    }
    const atMarks = marks.map((t) => {
      let rt = 0;
      let requests = 0;
      let down = 0;
      for (const r of recs) {
        if (r.start <= t) {
          requests++;
          down += r.down;
        }
        if (r.end !== undefined && r.end <= t && r.depth > rt) rt = r.depth;
      }
      return { at: t, roundTrips: rt, requests, bytesDown: down };
    });
    return {
      requests: recs.length + this.#dropped,
      byKind,
      billing,
      bytesDown,
      bytesUp,
      roundTrips,
      notModified,
      errors,
      inflight: this.#inflight,
      marks: atMarks,
    };
  }

  /** The window's requests (bounded), oldest first, for detailed reports. */
  log(limit = 2000) {
    return this.#records.slice(0, limit).map((r) => ({
      kind: r.kind,
      target: r.target,
      start: r.start,
      end: r.end,
      depth: r.depth,
      status: r.status,
      down: r.down,
      up: r.up,
    }));
  }
}
