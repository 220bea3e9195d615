/**
 * Picks the replica for a read from each replica's cached status (never a
 * query): healthy means `lagSeconds <= maxLagSeconds` and no recent connection
 * failure; among the healthy ones that already hold the session's writes,
 * the least lag wins and near-ties are spread round-robin. Replicas that lag,
 * or lack a session's write, are asked to poll in the background (rate
 * limited), so a replica that polls lazily and went idle comes back.
 */
import type { RouterReplica } from "./connection.js";
import { type Requirement, replicaSatisfies } from "./write-position.js";

/** Why a read that could have gone to a replica went to the primary. */
export type FallbackReason =
  /** The router has no replicas. */
  | "no-replicas"
  /** Every replica lags more than `maxLagSeconds`, is unknown, or failed recently. */
  | "no-healthy-replica"
  /** Healthy replicas exist, but none holds the session's latest write yet. */
  | "read-your-writes"
  /** The chosen replica failed with a connection-level error. */
  | "replica-error"
  /** The chosen replica refused the statement as a write. */
  | "replica-read-only"
  /**
   * The statement reads something only the primary's connection has (a temp
   * table, an attached database, `last_insert_rowid()`, a PRAGMA function).
   */
  | "primary-only"
  /** The chosen replica lacked a table, column or function the statement names. */
  | "replica-missing-object";

/** A replica with the router's bookkeeping. */
export interface ReplicaEntry {
  readonly replica: RouterReplica;
  /** Position in the router's replica list. */
  readonly index: number;
  reads: number;
  errors: number;
  /** Not chosen before this time (ms) after a connection failure. */
  coolUntil: number;
  lastKick: number;
  /** Polls the router asked for that are in flight (at most two: see `wake`). */
  polls: number;
  lastError: { message: string; code: string | undefined; at: Date } | null;
}

/** Options of {@link ReplicaSelector}. */
export interface SelectorOptions {
  maxLagSeconds: number;
  /** Replicas whose lag is within this many seconds of the least are tied. */
  tieSeconds: number;
  /** How long a replica is skipped after a connection failure (ms). */
  retryAfterMs: number;
  /** Least time between two background polls asked of one replica (ms). */
  pollKickMs: number;
  /** See `SatisfactionInput.assumePublishedWithinMs`. */
  assumePublishedWithinMs: number;
  now: () => number;
}

/** The outcome of a choice. */
export type Choice = { entry: ReplicaEntry } | { reason: FallbackReason };

/** Chooses replicas; one per router. */
export class ReplicaSelector {
  readonly entries: ReplicaEntry[];
  readonly #o: SelectorOptions;
  #turn = 0;

  constructor(replicas: readonly RouterReplica[], options: SelectorOptions) {
    this.#o = options;
    this.entries = replicas.map((replica, index) => ({
      replica,
      index,
      reads: 0,
      errors: 0,
      coolUntil: 0,
      lastKick: Number.NEGATIVE_INFINITY,
      polls: 0,
      lastError: null,
    }));
  }

  /**
   * The replica to read from, or why none qualifies. `requirement`: the
   * session's writes that the replica must already hold (none: any healthy).
   */
  choose(requirement: Requirement | undefined): Choice {
    if (this.entries.length === 0) return { reason: "no-replicas" };
    const now = this.#o.now();
    const max = this.#o.maxLagSeconds;
    let anyHealthy = false;
    let best = Number.POSITIVE_INFINITY;
    const candidates: { entry: ReplicaEntry; lag: number }[] = [];
    for (const entry of this.entries) {
      const st = entry.replica.status();
      const lag = st.lagSeconds;
      // Keep lazily polling replicas fresh before they cross the threshold.
      if (!st.pinned && (lag === null || lag > max / 2)) this.#kick(entry, now);
      if (st.pinned || lag === null || lag > max || now < entry.coolUntil) continue;
      anyHealthy = true;
      if (
        requirement &&
        !replicaSatisfies(requirement, {
          txid: st.txid,
          lagSeconds: lag,
          now,
          assumePublishedWithinMs: this.#o.assumePublishedWithinMs,
        })
      ) {
        this.#kick(entry, now);
        continue;
      }
      candidates.push({ entry, lag });
      if (lag < best) best = lag;
    }
    if (candidates.length === 0) {
      return { reason: anyHealthy ? "read-your-writes" : "no-healthy-replica" };
    }
    const tied = candidates.filter((c) => c.lag <= best + this.#o.tieSeconds);
    const pick = tied[this.#turn++ % tied.length]!;
    if (this.#turn >= Number.MAX_SAFE_INTEGER) this.#turn = 0;
    return { entry: pick.entry };
  }

  /**
   * Any replica for an explicit `$replica` read: the best healthy one
   * regardless of read-your-writes, else the least-lag one with a known
   * position; `undefined` when none has ever loaded.
   */
  chooseAny(): ReplicaEntry | undefined {
    const choice = this.choose(undefined);
    if ("entry" in choice) return choice.entry;
    let pick: ReplicaEntry | undefined;
    let best = Number.POSITIVE_INFINITY;
    for (const entry of this.entries) {
      const st = entry.replica.status();
      if (st.txid === null) continue;
      const lag = st.lagSeconds ?? Number.MAX_VALUE;
      if (lag < best) {
        best = lag;
        pick = entry;
      }
    }
    return pick;
  }

  /** Records a connection failure: the replica sits out `retryAfterMs`. */
  failed(entry: ReplicaEntry, err: unknown): void {
    const now = this.#o.now();
    entry.errors++;
    entry.coolUntil = now + this.#o.retryAfterMs;
    const code = (err as { code?: unknown } | null)?.code;
    entry.lastError = {
      message: err instanceof Error ? err.message : String(err),
      code: typeof code === "string" ? code : undefined,
      at: new Date(now),
    };
  }

  /**
   * Asks every replica that lacks `txid` to poll now, whatever the rate
   * limit: the writer just published a TXID a session waits for, and a
   * replica that polls lazily would otherwise learn of it only at its next
   * query or kick (a session's reads go to the primary meanwhile). Even with
   * a poll in flight: it may have read storage before the publish (a
   * pagecast replica then polls once more after it).
   */
  wake(txid: number): void {
    const now = this.#o.now();
    for (const entry of this.entries) {
      const st = entry.replica.status();
      if (!st.pinned && (st.txid ?? 0) < txid) this.#kick(entry, now, true);
    }
  }

  #kick(entry: ReplicaEntry, now: number, force = false): void {
    const poll = entry.replica.poll;
    if (!poll) return;
    if (force ? entry.polls > 1 : entry.polls > 0 || now - entry.lastKick < this.#o.pollKickMs) {
      return;
    }
    entry.lastKick = now;
    entry.polls++;
    const done = () => {
      entry.polls--;
    };
    try {
      poll.call(entry.replica).then(done, done); // failures are recorded in the replica's status
    } catch {
      // A closed replica may refuse synchronously: it simply stays unhealthy.
      done();
    }
  }
}
