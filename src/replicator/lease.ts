/**
 * The single-writer lease (`pagecast-lease.json`). Taken with a create-only
 * put, or a compare-and-swap once the previous holder's lease has lapsed (or
 * its process is gone from this host). Renewed by compare-and-swap when a
 * write finds it past half its lifetime, never on a timer, so an idle
 * replicator makes no requests. Losing a CAS means another writer took over.
 *
 * Clocks: a lease is never judged by comparing absolute times written on one
 * host with another host's clock (a crashed writer whose clock ran 400 days
 * ahead would lock everyone out; a live one whose clock is behind would be
 * taken over at once). A contender judges the holder's last renewal by
 * - the holder's own clock only when it is on the same host (one clock);
 * - else the storage server's clock: the lease object's `lastModified`, set
 *   by the server, against the server's current time as the store tracks it
 *   (`ObjectStore.serverTime`, S3's `Date`);
 * - else (a store without a server clock, e.g. files shared between hosts)
 *   by watching: the lease lapses once it stayed unchanged for the holder's
 *   lifetime, measured on this host's monotonic clock.
 * The holder schedules renewals on its monotonic clock (and its wall clock,
 * whichever says sooner). The document keeps its original fields, so older
 * writers still read it (they compare `expiresAt` with their clock, as before).
 */
import { hostname } from "node:os";
import type { ObjectMeta, ObjectStore } from "../storage/object-store.js";
import { abortableDelay } from "../storage/request-runner.js";
import {
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
} from "../storage/store-errors.js";
import { LeaseHeldError, LeaseLostError, ReplicatorError } from "./replicator-error.js";

/** Store key of the lease object, relative to the replica root. */
export const LEASE_KEY = "pagecast-lease.json";
/** Largest lease document read (bytes); a larger object is refused unread and replaced. */
export const MAX_LEASE_BYTES = 64 * 1024;

/** The lease document. */
export interface LeaseRecord {
  format: "pagecast-lease";
  version: 1;
  writerId: string;
  hostname: string;
  pid: number;
  /** ms since epoch on the holder's clock. */
  acquiredAt: number;
  /**
   * ms since epoch on the holder's clock; 0 when released. Only meaningful
   * next to a clock of the same host; kept for older readers.
   */
  expiresAt: number;
  /** The holder's lease lifetime in ms (added later; older writers omit it). */
  ttlMs?: number;
  /** When the holder last wrote the lease, on its clock (added later; informational). */
  renewedAt?: number;
}

function parseLease(bytes: Uint8Array): LeaseRecord | undefined {
  if (bytes.length > MAX_LEASE_BYTES) return undefined;
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (
      doc.format !== "pagecast-lease" ||
      doc.version !== 1 ||
      typeof doc.writerId !== "string" ||
      typeof doc.hostname !== "string" ||
      typeof doc.pid !== "number" ||
      typeof doc.acquiredAt !== "number" ||
      typeof doc.expiresAt !== "number"
    ) {
      return undefined;
    }
    const record: LeaseRecord = {
      format: "pagecast-lease",
      version: 1,
      writerId: doc.writerId,
      hostname: doc.hostname,
      pid: doc.pid,
      acquiredAt: doc.acquiredAt,
      expiresAt: doc.expiresAt,
    };
    if (typeof doc.ttlMs === "number" && Number.isFinite(doc.ttlMs) && doc.ttlMs > 0) {
      record.ttlMs = doc.ttlMs;
    }
    if (typeof doc.renewedAt === "number" && Number.isFinite(doc.renewedAt)) {
      record.renewedAt = doc.renewedAt;
    }
    return record;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Options of {@link Lease.acquire}. */
export interface LeaseOptions {
  writerId: string;
  /** Lease lifetime in ms (default 5 minutes). */
  ttlMs?: number;
  /** Wall clock, for the document's times (tests skew it). */
  now?: () => number;
  /** Monotonic clock in ms, for durations (tests). Default `performance.now`. */
  monotonicNow?: () => number;
  /** This host's name as recorded in the lease (default `os.hostname()`; tests play other hosts). */
  hostname?: string;
  /**
   * Slack for clock resolution when judging by the server's clock (S3 times
   * have 1 s resolution), in ms (default 2000).
   */
  clockToleranceMs?: number;
  /** Aborts a wait for a lease that can only be judged by watching it. */
  signal?: AbortSignal;
  /**
   * Called when `acquire` has to watch a lease held on another host because no
   * shared clock can date its last renewal (stores without a server clock):
   * it waits up to `waitMs` for a renewal before taking over.
   */
  onWait?: (info: { holder: LeaseRecord; waitMs: number }) => void;
}

type ResolvedOptions = Required<Omit<LeaseOptions, "signal" | "onWait">> &
  Pick<LeaseOptions, "signal" | "onWait">;

const monotonic = () => performance.now();

/** The stored lease: its ETag, server-side modification time and (when valid) its document. */
interface StoredLease {
  etag: string;
  lastModified: Date | undefined;
  record: LeaseRecord | undefined;
}

/** Reads the lease without ever downloading more than {@link MAX_LEASE_BYTES}. */
async function readLease(store: ObjectStore): Promise<StoredLease | undefined> {
  try {
    const res = await store.get(LEASE_KEY, { maxBytes: MAX_LEASE_BYTES });
    if (res.notModified) return undefined;
    return {
      etag: res.meta.etag,
      lastModified: res.meta.lastModified,
      record: parseLease(res.body),
    };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    if (err instanceof ObjectTooLargeError) {
      // Not a lease anyone wrote: replaced (by compare-and-swap) without being read.
      const meta: ObjectMeta | undefined = err.meta?.etag ? err.meta : await store.head(LEASE_KEY);
      return meta
        ? { etag: meta.etag, lastModified: meta.lastModified, record: undefined }
        : undefined;
    }
    throw err;
  }
}

/** How a contender sees a stored lease. */
type Verdict =
  | { kind: "free" }
  | { kind: "held"; expiresInMs: number | undefined }
  /** No shared clock: watch it for a renewal for `waitMs`. */
  | { kind: "watch"; waitMs: number };

/** A held lease. */
export class Lease {
  readonly #store: ObjectStore;
  readonly #writerId: string;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #monotonic: () => number;
  #etag: string;
  #record: LeaseRecord;
  /** Monotonic time just before the last successful write was sent. */
  #writtenAt: number;
  #lost = false;

  private constructor(
    store: ObjectStore,
    opts: ResolvedOptions,
    etag: string,
    record: LeaseRecord,
    writtenAt: number,
  ) {
    this.#store = store;
    this.#writerId = opts.writerId;
    this.#ttl = opts.ttlMs;
    this.#now = opts.now;
    this.#monotonic = opts.monotonicNow;
    this.#etag = etag;
    this.#record = record;
    this.#writtenAt = writtenAt;
  }

  /**
   * Takes the lease or throws `LeaseHeldError` naming the live holder. A lease
   * left by a process on this host that no longer exists is taken over at once,
   * so a crashed replicator restarts without waiting for expiry. A lease held
   * on another host is judged on the storage server's clock; for stores
   * without one, `acquire` watches it (up to the holder's lifetime) and
   * takes over only if no renewal came.
   */
  static async acquire(store: ObjectStore, options: LeaseOptions): Promise<Lease> {
    const opts: ResolvedOptions = {
      writerId: options.writerId,
      ttlMs: options.ttlMs ?? 5 * 60_000,
      now: options.now ?? Date.now,
      monotonicNow: options.monotonicNow ?? monotonic,
      hostname: options.hostname ?? hostname(),
      clockToleranceMs: options.clockToleranceMs ?? 2_000,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onWait ? { onWait: options.onWait } : {}),
    };
    if (!(opts.ttlMs > 0))
      throw new ReplicatorError("INVALID_OPTION", "lease TTL must be positive");
    if (!(opts.clockToleranceMs >= 0))
      throw new ReplicatorError("INVALID_OPTION", "lease clock tolerance must be >= 0");
    /** A lease version watched for a renewal: its ETag and when it was first seen. */
    let watched: { etag: string; since: number } | undefined;
    let conflicts = 0;
    for (;;) {
      const current = await readLease(store);
      const held = current?.record;
      if (current && held) {
        const verdict = Lease.#judge(store, opts, held, current.lastModified);
        if (verdict.kind === "held") throw Lease.#heldError(held, verdict.expiresInMs);
        if (verdict.kind === "watch") {
          if (watched && watched.etag !== current.etag) {
            // It changed while watched: its holder (or a newer one) is alive.
            throw Lease.#heldError(held, undefined);
          }
          if (!watched) {
            watched = { etag: current.etag, since: opts.monotonicNow() };
            opts.onWait?.({ holder: held, waitMs: verdict.waitMs });
          }
          const left = watched.since + verdict.waitMs - opts.monotonicNow();
          if (left > 0) {
            const step = Math.min(left, Math.max(200, Math.min(5_000, verdict.waitMs / 10)));
            await abortableDelay(step, opts.signal);
            continue;
          }
          // Unchanged for a whole lifetime: its holder is gone.
        }
      }
      const writtenAt = opts.monotonicNow();
      const now = opts.now();
      const record: LeaseRecord = {
        format: "pagecast-lease",
        version: 1,
        writerId: opts.writerId,
        hostname: opts.hostname,
        pid: process.pid,
        acquiredAt: now,
        expiresAt: now + opts.ttlMs,
        ttlMs: opts.ttlMs,
        renewedAt: now,
      };
      try {
        const body = new TextEncoder().encode(JSON.stringify(record));
        const put = await store.put(
          LEASE_KEY,
          body,
          current
            ? { ifMatch: current.etag, contentType: "application/json" }
            : { ifNoneMatch: "*", contentType: "application/json" },
        );
        return new Lease(store, opts, put.etag, record, writtenAt);
      } catch (err) {
        // Someone else moved first: look again (they may hold it, or have released it).
        if (!(err instanceof PreconditionFailedError)) throw err;
        if (++conflicts >= 3) {
          throw new ReplicatorError(
            "LEASE_CONTENDED",
            `could not take the lease on ${store.url}: it keeps changing`,
          );
        }
        watched = undefined;
      }
    }
  }

  /** Whether `held` (stored with server time `lastModified`) still binds this contender. */
  static #judge(
    store: ObjectStore,
    opts: ResolvedOptions,
    held: LeaseRecord,
    lastModified: Date | undefined,
  ): Verdict {
    if (held.expiresAt === 0 || held.writerId === opts.writerId) return { kind: "free" };
    // The holder's lifetime; older documents do not say it, ours is the best guess.
    const ttl = held.ttlMs ?? opts.ttlMs;
    const tolerance = opts.clockToleranceMs;
    if (held.hostname === opts.hostname) {
      if (held.pid !== process.pid && !processAlive(held.pid)) return { kind: "free" };
      // One host, one clock: its absolute times compare with ours.
      const left = held.expiresAt - opts.now();
      return left <= 0 ? { kind: "free" } : { kind: "held", expiresInMs: left };
    }
    const serverNow = store.serverTime?.();
    const modified = lastModified?.getTime();
    if (
      serverNow !== undefined &&
      Number.isFinite(serverNow) &&
      modified !== undefined &&
      Number.isFinite(modified) &&
      modified > 0
    ) {
      // Both times on the storage server's clock: the renewal's age is a duration.
      const age = serverNow - modified;
      if (age >= -tolerance) {
        const left = ttl + tolerance - age;
        return left <= 0 ? { kind: "free" } : { kind: "held", expiresInMs: left };
      }
      // A modification time in the server's future cannot be trusted: watch instead.
    }
    return { kind: "watch", waitMs: ttl + tolerance };
  }

  static #heldError(held: LeaseRecord, expiresInMs: number | undefined): LeaseHeldError {
    return new LeaseHeldError(
      {
        writerId: held.writerId,
        hostname: held.hostname,
        pid: held.pid,
        expiresAt: held.expiresAt,
      },
      expiresInMs === undefined ? {} : { expiresInMs },
    );
  }

  /** The record as last written. */
  get record(): LeaseRecord {
    return this.#record;
  }

  /** True once a renewal found another writer. */
  get lost(): boolean {
    return this.#lost;
  }

  /**
   * Called before each write: renews (one CAS put) when past half the
   * lifetime since the last write, on the monotonic clock or the wall clock,
   * whichever says so first. Throws `LeaseLostError` if another writer took
   * the lease.
   */
  async ensure(): Promise<void> {
    if (this.#lost)
      throw new LeaseLostError(`lease on ${this.#store.url} was lost to another writer`);
    const half = this.#ttl / 2;
    const byMonotonic = this.#monotonic() - this.#writtenAt >= half;
    const byClock = this.#record.expiresAt - this.#now() <= half;
    if (!byMonotonic && !byClock) return;
    const now = this.#now();
    await this.#write({
      ...this.#record,
      expiresAt: now + this.#ttl,
      ttlMs: this.#ttl,
      renewedAt: now,
    });
  }

  /** Marks the lease expired (CAS) so the next writer can start at once. Errors are swallowed by callers. */
  async release(): Promise<void> {
    if (this.#lost) return;
    await this.#write({ ...this.#record, expiresAt: 0, renewedAt: this.#now() });
  }

  async #write(record: LeaseRecord, retried = false): Promise<void> {
    const sentAt = this.#monotonic();
    try {
      const put = await this.#store.put(
        LEASE_KEY,
        new TextEncoder().encode(JSON.stringify(record)),
        {
          ifMatch: this.#etag,
          contentType: "application/json",
        },
      );
      this.#etag = put.etag;
      this.#record = record;
      this.#writtenAt = sentAt;
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        // The stored lease may still be ours: a retried put, or an earlier
        // renewal whose answer was lost, may have landed. Only this writer
        // writes its id: then adopt that lease (and its ETag), and renew once more.
        const stored = await readLease(this.#store);
        const mine = stored?.record;
        if (
          stored &&
          mine?.writerId === record.writerId &&
          mine.hostname === record.hostname &&
          mine.pid === record.pid
        ) {
          this.#etag = stored.etag;
          this.#record = mine;
          if (mine.expiresAt === record.expiresAt) {
            this.#writtenAt = sentAt;
            return;
          }
          if (retried) return;
          return this.#write(record, true);
        }
        this.#lost = true;

        throw new LeaseLostError(`lease on ${this.#store.url} was taken by another writer`, {
          cause: err,
        });
      }
      throw err;
    }
  }
}
