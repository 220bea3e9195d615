/**
 * Read-your-writes positions from a Replicator running in this process.
 *
 * Right after a commit, the replicator's published TXID `after` bounds where
 * the write will appear: in `after + 1` or, if a sync had already read the WAL
 * before the commit, in `after + 2`. The exact TXID is found without forcing
 * an extra upload in the common case: wait for the replicator's next publish
 * (its own schedule); if that TXID may not hold the write, `sync()` settles it
 * (`sync()` covers every transaction committed before the call, and costs no
 * request when nothing new is committed).
 */
import type { Replicator } from "../replicator/replicator.js";
import type { WritePosition } from "../router/write-position.js";

/** Options of {@link ReplicatorPositions}. */
export interface ReplicatorPositionsOptions {
  /** How long to wait for the replicator's next publish before asking it to sync (ms, default 1500). */
  waitMs?: number;
}

interface Resolution {
  /** The `after` the resolution was computed for. */
  after: number;
  /** Mark sequence and wall time when it started: it covers writes committed before. */
  startSeq: number;
  startedAt: number;
  promise: Promise<number>;
}

/** A `sync()` answer: every write committed before its start is in TXID <= `txid`. */
interface Known {
  txid: number;
  startSeq: number;
  startedAt: number;
}

/** Marks and resolves positions against one replicator. */
export class ReplicatorPositions {
  readonly #replicator: Replicator;
  readonly #waitMs: number;
  readonly #seqOf = new WeakMap<WritePosition, number>();
  #seq = 0;
  #latest: Resolution | undefined;
  #known: Known | undefined;

  constructor(replicator: Replicator, options: ReplicatorPositionsOptions = {}) {
    this.#replicator = replicator;
    this.#waitMs = options.waitMs ?? 1500;
  }

  /** The position of a write that committed just now. */
  mark(): WritePosition {
    const position: WritePosition = { after: this.#replicator.position.txid, at: Date.now() };
    this.#seqOf.set(position, ++this.#seq);
    return position;
  }

  /** The exact TXID holding every write committed up to `position` (see the file comment). */
  resolve(position: WritePosition): Promise<number | undefined> {
    if (position.txid !== undefined) return Promise.resolve(position.txid);
    const after = position.after;
    if (after === undefined) return Promise.resolve(undefined);
    if (this.#replicator.position.txid >= after + 2) return Promise.resolve(after + 2);
    // A sync that started after this write committed already answered for it.
    const known = this.#known;
    if (known && this.#startedAfter(known, position)) return Promise.resolve(known.txid);
    // A resolution started after this write committed, for the same or a later
    // bound, answers for it too.
    const latest = this.#latest;
    if (latest && after <= latest.after && this.#startedAfter(latest, position)) {
      return latest.promise;
    }
    const resolution: Resolution = {
      after,
      startSeq: ++this.#seq,
      startedAt: Date.now(),
      promise: this.#run(after),
    };
    this.#latest = resolution;
    resolution.promise.catch(() => {
      if (this.#latest === resolution) this.#latest = undefined;
    });
    return resolution.promise;
  }

  /** Whether something that started at (`startSeq`, `startedAt`) began after `position`'s commit. */
  #startedAfter(start: { startSeq: number; startedAt: number }, position: WritePosition): boolean {
    const seq = this.#seqOf.get(position);
    // Positions marked here compare exactly; those from bookmarks by wall time.
    return seq !== undefined ? start.startSeq > seq : start.startedAt > position.at;
  }

  async #run(after: number): Promise<number> {
    const r = this.#replicator;
    await this.#nextPublish();
    if (r.position.txid >= after + 2) return after + 2;
    const start = { startSeq: ++this.#seq, startedAt: Date.now() };
    const { txid } = await r.sync();
    if (!this.#known || this.#known.startSeq < start.startSeq) this.#known = { txid, ...start };
    return txid;
  }

  #nextPublish(): Promise<void> {
    const r = this.#replicator;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        r.off("sync", done);
        r.off("snapshot", done);
        resolve();
      };
      const timer = setTimeout(done, this.#waitMs);
      timer.unref();
      r.on("sync", done);
      r.on("snapshot", done);
    });
  }
}
