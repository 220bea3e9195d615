/**
 * The single-writer lease (`pagecast-lease.json`). Taken with a create-only
 * put, or a compare-and-swap once the previous holder's lease has expired (or
 * its process is gone from this host). Renewed by compare-and-swap when a write
 * finds it past half its lifetime, never on a timer, so an idle replicator
 * makes no requests. Losing a CAS means another writer took over.
 */
import { hostname } from "node:os";
import type { ObjectStore } from "../storage/object-store.js";
import { NotFoundError, PreconditionFailedError } from "../storage/store-errors.js";
import { LeaseHeldError, LeaseLostError, ReplicatorError } from "./replicator-error.js";

/** Store key of the lease object, relative to the replica root. */
export const LEASE_KEY = "pagecast-lease.json";
const MAX_LEASE_BYTES = 64 * 1024;

/** The lease document. */
export interface LeaseRecord {
  format: "pagecast-lease";
  version: 1;
  writerId: string;
  hostname: string;
  pid: number;
  acquiredAt: number;
  /** ms since epoch; 0 when released. */
  expiresAt: number;
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
    return doc as unknown as LeaseRecord;
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
  /** Clock (tests). */
  now?: () => number;
}

/** A held lease. */
export class Lease {
  readonly #store: ObjectStore;
  readonly #writerId: string;
  readonly #ttl: number;
  readonly #now: () => number;
  #etag: string;
  #record: LeaseRecord;
  #lost = false;

  private constructor(
    store: ObjectStore,
    opts: Required<LeaseOptions>,
    etag: string,
    record: LeaseRecord,
  ) {
    this.#store = store;
    this.#writerId = opts.writerId;
    this.#ttl = opts.ttlMs;
    this.#now = opts.now;
    this.#etag = etag;
    this.#record = record;
  }

  /**
   * Takes the lease or throws `LeaseHeldError` naming the live holder. A lease
   * left by a process on this host that no longer exists is taken over at once,
   * so a crashed replicator restarts without waiting for expiry.
   */
  static async acquire(store: ObjectStore, options: LeaseOptions): Promise<Lease> {
    const opts: Required<LeaseOptions> = {
      writerId: options.writerId,
      ttlMs: options.ttlMs ?? 5 * 60_000,
      now: options.now ?? Date.now,
    };
    if (!(opts.ttlMs > 0))
      throw new ReplicatorError("INVALID_OPTION", "lease TTL must be positive");
    const host = hostname();
    for (let attempt = 0; attempt < 3; attempt++) {
      let current: { etag: string; record: LeaseRecord | undefined } | undefined;
      try {
        const res = await store.get(LEASE_KEY);
        if (!res.notModified) current = { etag: res.meta.etag, record: parseLease(res.body) };
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      const now = opts.now();
      const record: LeaseRecord = {
        format: "pagecast-lease",
        version: 1,
        writerId: opts.writerId,
        hostname: host,
        pid: process.pid,
        acquiredAt: now,
        expiresAt: now + opts.ttlMs,
      };
      if (current?.record) {
        const held = current.record;
        const expired = held.expiresAt <= now;
        const deadHere =
          held.hostname === host && held.pid !== process.pid && !processAlive(held.pid);
        if (!expired && !deadHere && held.writerId !== opts.writerId) {
          throw new LeaseHeldError({
            writerId: held.writerId,
            hostname: held.hostname,
            pid: held.pid,
            expiresAt: held.expiresAt,
          });
        }
      }
      try {
        const body = new TextEncoder().encode(JSON.stringify(record));
        const put = await store.put(
          LEASE_KEY,
          body,
          current
            ? { ifMatch: current.etag, contentType: "application/json" }
            : { ifNoneMatch: "*", contentType: "application/json" },
        );
        return new Lease(store, opts, put.etag, record);
      } catch (err) {
        // Someone else moved first: look again (they may hold it, or have released it).
        if (err instanceof PreconditionFailedError) continue;
        throw err;
      }
    }
    throw new ReplicatorError(
      "LEASE_CONTENDED",
      `could not take the lease on ${store.url}: it keeps changing`,
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
   * Called before each write: renews (one CAS put) when past half the lifetime.
   * Throws `LeaseLostError` if another writer took the lease.
   */
  async ensure(): Promise<void> {
    if (this.#lost)
      throw new LeaseLostError(`lease on ${this.#store.url} was lost to another writer`);
    const now = this.#now();
    if (this.#record.expiresAt - now > this.#ttl / 2) return;
    await this.#write({ ...this.#record, expiresAt: now + this.#ttl });
  }

  /** Marks the lease expired (CAS) so the next writer can start at once. Errors are swallowed by callers. */
  async release(): Promise<void> {
    if (this.#lost) return;
    await this.#write({ ...this.#record, expiresAt: 0 });
  }

  async #write(record: LeaseRecord, retried = false): Promise<void> {
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
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        // The stored lease may still be ours: a retried put, or an earlier
        // renewal whose answer was lost, may have landed. Only this writer
        // writes its id: then adopt that lease (and its ETag), and renew once more.
        const res = await this.#store.get(LEASE_KEY).catch((e: unknown) => {
          if (e instanceof NotFoundError) return undefined;
          throw e;
        });
        const stored = res && !res.notModified ? parseLease(res.body) : undefined;
        if (
          res?.meta &&
          stored?.writerId === record.writerId &&
          stored.hostname === record.hostname &&
          stored.pid === record.pid
        ) {
          this.#etag = res.meta.etag;
          this.#record = stored;
          if (stored.expiresAt === record.expiresAt || retried) return;
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
