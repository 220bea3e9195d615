/**
 * Read-your-writes positions from a Replicator running in this process.
 *
 * Right after a commit, the replicator's published TXID `after` bounds where
 * the write will appear: in `after + AFTER_BOUND` at the latest (`after + 1`
 * may be uploading with the next buffer capturing meanwhile; a write captured
 * after that buffer is taken goes in the one after). The exact TXID is found without forcing
 * an extra upload in the common case: wait for the replicator's next publish
 * (its own schedule); if that TXID may not hold the write, `sync()` settles it
 * (`sync()` covers every transaction committed before the call, and costs no
 * request when nothing new is committed).
 *
 * However many writes wait, one resolution serves them all: one pair of
 * event listeners, and at most one `sync()` per publish, answering for every
 * write committed before it started. While writes keep coming, not even
 * that: the replicator publishes them on its own schedule, and each publish
 * answers for the writes AFTER_BOUND TXIDs back. So a burst of writes costs a sync
 * or two when it ends, not one per write.
 */
import type { Replicator } from "../replicator/replicator.js";
import { AFTER_BOUND, type WritePosition } from "../router/write-position.js";

/** Options of {@link ReplicatorPositions}. */
export interface ReplicatorPositionsOptions {
  /** How long to wait for the replicator's next publish before asking it to sync (ms, default 1500). */
  waitMs?: number;
}

/**
 * After a publish, how long a write may take to follow before the waiters
 * left are settled by a `sync()` (ms). A write marked after the publish
 * proves more will be published without one.
 */
const GRACE_MS = 20;

/** A `sync()` answer: every write committed before its start is in TXID <= `txid`. */
interface Known {
  txid: number;
  startSeq: number;
  startedAt: number;
}

/** A position waiting for its TXID. */
interface Waiter {
  after: number;
  resolve: (txid: number | undefined) => void;
}

/** Marks and resolves positions against one replicator. */
export class ReplicatorPositions {
  readonly #replicator: Replicator;
  readonly #waitMs: number;
  readonly #seqOf = new WeakMap<WritePosition, number>();
  #seq = 0;
  /** The `after` of the newest mark: the published TXID when the latest write committed. */
  #lastMarkAfter = -1;
  /** Called by the next mark (see `#nextMark`). */
  #onMark: (() => void) | undefined;
  #known: Known | undefined;
  #waiters: Waiter[] = [];
  #running = false;

  constructor(replicator: Replicator, options: ReplicatorPositionsOptions = {}) {
    this.#replicator = replicator;
    this.#waitMs = options.waitMs ?? 1500;
  }

  /** The position of a write that committed just now. */
  mark(): WritePosition {
    const seq = ++this.#seq;
    const position: WritePosition = { after: this.#replicator.position.txid, at: Date.now(), seq };
    this.#seqOf.set(position, seq);
    this.#lastMarkAfter = position.after!;
    this.#onMark?.();
    return position;
  }

  /** The exact TXID holding every write committed up to `position` (see the file comment). */
  resolve(position: WritePosition): Promise<number | undefined> {
    if (position.txid !== undefined) return Promise.resolve(position.txid);
    const after = position.after;
    if (after === undefined) return Promise.resolve(undefined);
    if (this.#replicator.position.txid >= after + AFTER_BOUND) {
      return Promise.resolve(after + AFTER_BOUND);
    }
    // A sync that started after this write committed already answered for it.
    const known = this.#known;
    if (known && this.#startedAfter(known, position)) return Promise.resolve(known.txid);
    return new Promise((resolve) => {
      this.#waiters.push({ after, resolve });
      if (!this.#running) void this.#run();
    });
  }

  /** Whether a sync that started at (`startSeq`, `startedAt`) began after `position`'s commit. */
  #startedAfter(start: Known, position: WritePosition): boolean {
    const seq = this.#seqOf.get(position);
    // Positions marked here compare exactly; those from bookmarks by wall time.
    return seq !== undefined ? start.startSeq > seq : start.startedAt > position.at;
  }

  /** The one resolution loop: runs while positions wait. */
  async #run(): Promise<void> {
    this.#running = true;
    const r = this.#replicator;
    let seen = r.position.txid;
    try {
      while (this.#waiters.length > 0) {
        // A publish may have happened while this loop was busy (its event then unheard).
        const published = r.position.txid > seen || (await this.#nextPublish());
        // Published far enough: `after + AFTER_BOUND` holds the write.
        const txid = r.position.txid;
        seen = txid;
        this.#settle((w) => (txid >= w.after + AFTER_BOUND ? w.after + AFTER_BOUND : null));
        if (this.#waiters.length === 0) break;
        // A write committed since that publish (marked seeing it) is on its
        // way: the replicator's next publish (`txid + 1`) answers for every
        // waiter left but the newest, without an upload of ours. Writes
        // flowing now are likely to be followed by another within moments.
        if (published && (this.#lastMarkAfter >= txid || (await this.#nextMark(GRACE_MS)))) {
          continue;
        }
        // Every waiter committed before this sync starts (each was marked after its commit).
        const covered = this.#waiters;
        this.#waiters = [];
        const start = { startSeq: ++this.#seq, startedAt: Date.now() };
        let synced: number | undefined;
        try {
          synced = (await r.sync()).txid;
          if (!this.#known || this.#known.startSeq < start.startSeq) {
            this.#known = { txid: synced, ...start };
          }
        } catch {
          // Unresolved (the replicator fails or closed): callers keep the safe bound.
        }
        for (const w of covered) w.resolve(synced);
      }
    } finally {
      this.#running = false;
    }
  }

  /** Resolves the waiters `answer` has a TXID for; the others keep waiting. */
  #settle(answer: (w: Waiter) => number | null): void {
    const waiting: Waiter[] = [];
    for (const w of this.#waiters) {
      const txid = answer(w);
      if (txid === null) waiting.push(w);
      else w.resolve(txid);
    }
    this.#waiters = waiting;
  }

  /** Resolves true at the next mark, false after `ms`. */
  #nextMark(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (marked: boolean) => {
        clearTimeout(timer);
        this.#onMark = undefined;
        resolve(marked);
      };
      this.#onMark = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      timer.unref();
    });
  }

  /** Resolves at the replicator's next publish (true), or after `waitMs` (false). */
  #nextPublish(): Promise<boolean> {
    const r = this.#replicator;
    return new Promise((resolve) => {
      const done = (published: boolean) => {
        clearTimeout(timer);
        r.off("sync", onPublish);
        r.off("snapshot", onPublish);
        resolve(published);
      };
      const onPublish = () => done(true);
      const timer = setTimeout(() => done(false), this.#waitMs);
      timer.unref();
      r.on("sync", onPublish);
      r.on("snapshot", onPublish);
    });
  }
}
