/**
 * The writer's own health: whether the replica it publishes can be trusted to
 * equal the database. A divergence (the divergence check found a page that
 * differs, frames were lost to a WAL restarted behind the writer's back, the
 * files were swapped under it) is counted, logged as an error and published
 * in the head object's `writer` field (so `pagecast status`, in another
 * process, sees it) until the snapshot that repairs it is published.
 */
import type { HeadWriterHealth } from "../layout/index.js";
import type { ReplicatorLogger } from "./logger.js";

/** The writer's divergence record (see the module comment). */
export class WriterHealth {
  readonly #log: ReplicatorLogger;
  /** Divergences detected since this writer started. */
  divergences = 0;
  /** The last one, if any. */
  last: { at: number; reason: string } | undefined;
  /** Set from detection until the repairing snapshot is published. */
  #open = false;
  /** Changes of health so far, and how many of them a written head shows. */
  #changes = 0;
  #shown = 0;

  constructor(log: ReplicatorLogger) {
    this.#log = log;
  }

  /** The head must be rewritten to show a change of health. */
  get changed(): boolean {
    return this.#changes !== this.#shown;
  }

  /**
   * The change {@link headField} reflects now, for {@link shown} once that
   * head is written: a change made while the write was in flight (a
   * divergence the capture side found meanwhile) still asks for another head.
   */
  get mark(): number {
    return this.#changes;
  }

  /** A head showing the health as of `mark` was written. */
  shown(mark: number): void {
    this.#shown = Math.max(this.#shown, mark);
  }

  /** True while a detected divergence is not repaired yet. */
  get diverged(): boolean {
    return this.#open;
  }

  /** Records a divergence (logged as an error). */
  note(reason: string, txid: number): void {
    this.divergences++;
    this.last = { at: Date.now(), reason };
    this.#log.error("replica diverged from the database; a snapshot follows", { reason, txid });
    this.#open = true;
    this.#changes++;
  }

  /** A snapshot taken after the last divergence was published. */
  repaired(txid: number): void {
    if (!this.#open) return;
    this.#open = false;
    this.#changes++;
    this.#log.info("replica repaired by a snapshot", { txid });
  }

  /** The head's `writer` field: absent until something happened (heads stay as older writers wrote them). */
  headField(): HeadWriterHealth | undefined {
    if (!this.last) return undefined;
    return {
      health: this.#open ? "diverged" : "ok",
      divergences: this.divergences,
      lastDivergenceAt: this.last.at,
      lastDivergence: this.last.reason.slice(0, 200),
    };
  }
}
