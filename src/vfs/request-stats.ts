/**
 * Per-replica accounting of storage requests by purpose, so `status()` can say
 * what the reader costs (a poll, an index read, a page range...).
 */
import type {
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  StoreCounters,
} from "../storage/object-store.js";
import { ReplicaError } from "./replica-error.js";

/** Why the reader made a request. */
export type ReplicaRequestKind =
  /** First (unconditional) GET of the head object. */
  | "head"
  /** Conditional GET of the head object (one per poll). */
  | "poll"
  /** LIST of a level (Litestream layout, re-planning, pinned `at`). */
  | "list"
  /** Page-index read of an LTX file. */
  | "index"
  /** LTX header read. */
  | "header"
  /** Range GET of page frames. */
  | "page"
  /** Range GET of a bulk fetch (a B-tree's leaves, see `bulk-fetch.ts`). */
  | "bulk"
  /** Range GET of hydration (the whole database, in the background). */
  | "hydrate"
  /** GET of a snapshot's B-tree skeleton (while opening). */
  | "skeleton";

/** Requests and bytes received for one kind. */
export interface RequestTally {
  requests: number;
  bytes: number;
  errors: number;
}

const KINDS: ReplicaRequestKind[] = [
  "head",
  "poll",
  "list",
  "index",
  "header",
  "page",
  "bulk",
  "hydrate",
  "skeleton",
];

/** Mutable tallies by kind. */
export class RequestStats {
  readonly #tallies = new Map<ReplicaRequestKind, RequestTally>(
    KINDS.map((k) => [k, { requests: 0, bytes: 0, errors: 0 }]),
  );

  /** Records one request. */
  record(kind: ReplicaRequestKind, bytes: number, failed = false): void {
    const t = this.#tallies.get(kind)!;
    t.requests++;
    t.bytes += bytes;
    if (failed) t.errors++;
  }

  /** A copy of every tally. */
  snapshot(): Record<ReplicaRequestKind, RequestTally> {
    const out = {} as Record<ReplicaRequestKind, RequestTally>;
    for (const [k, t] of this.#tallies) out[k] = { ...t };
    return out;
  }
}

/**
 * A read-only view of a store that books every request under one kind. Writes
 * are refused: the reader never writes.
 */
export class TalliedStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly stats: RequestStats,
    private readonly kind: ReplicaRequestKind,
  ) {}

  get url(): string {
    return this.inner.url;
  }

  async get(key: string, options?: GetOptions): Promise<GetResult> {
    try {
      const res = await this.inner.get(key, options);
      // Counted from the pieces when there are some: `body` would join them.
      let bytes = 0;
      if (res.pieces) for (const p of res.pieces) bytes += p.byteLength;
      else if (!res.notModified) bytes = res.body.byteLength;
      this.stats.record(this.kind, bytes);
      return res;
    } catch (err) {
      this.stats.record(this.kind, 0, true);
      throw err;
    }
  }

  async head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectMeta | undefined> {
    try {
      const res = await this.inner.head(key, options);
      this.stats.record(this.kind, 0);
      return res;
    } catch (err) {
      this.stats.record(this.kind, 0, true);
      throw err;
    }
  }

  async list(options?: ListOptions): Promise<ListPage> {
    try {
      const res = await this.inner.list(options);
      this.stats.record(this.kind, 0);
      return res;
    } catch (err) {
      this.stats.record(this.kind, 0, true);
      throw err;
    }
  }

  put(key: string, _body: Uint8Array, _options?: PutOptions): Promise<PutResult> {
    return Promise.reject(readOnly(key));
  }

  deleteMany(keys: string[]): Promise<void> {
    return Promise.reject(readOnly(keys[0] ?? ""));
  }

  counters(): StoreCounters {
    return this.inner.counters();
  }

  /** The underlying store belongs to the replica, which closes it. */
  async close(): Promise<void> {}
}

function readOnly(key: string): ReplicaError {
  return new ReplicaError("REPLICA_READ_ONLY", `the replica reader never writes (${key})`);
}
