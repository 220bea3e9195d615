/**
 * Controlled checkpoints. PASSIVE once the WAL passes a page threshold,
 * TRUNCATE past a larger one (and on close); never RESTART, which stalls
 * writers. The protocol keeps continuity provable:
 *
 * 1. take the write lock, replicate the WAL to its end (nothing can commit
 *    now), note `data_version`, end the pin;
 * 2. PASSIVE runs while we still hold the lock, and the pin is taken again
 *    before the lock is dropped; TRUNCATE needs writers gone, so the lock is
 *    dropped first;
 * 3. re-take the lock and make a one-frame "bump" write, which restarts a
 *    fully checkpointed WAL under our control (after TRUNCATE: compare
 *    `data_version` first, did anybody else commit or checkpoint in between?,
 *    and pin again before the bump's commit releases the lock); then move
 *    the pin to a new read transaction, which holds a read mark on the bump
 *    (see `SqliteConnections.renewPin`).
 *
 * After PASSIVE nobody can commit between the seal and the new pin, and the
 * pin then stops any second WAL restart until the next controlled
 * checkpoint: either it holds a read mark (a restart needs every reader off
 * the WAL) or, when PASSIVE copied the whole WAL back, it reads the database
 * file alone, which stops every checkpointer from copying frames into it,
 * and a WAL can only restart once fully copied back. So the WAL restarts at
 * most once (by our bump, or by another connection's first write, or by
 * its TRUNCATE), and only before anything was appended to it: its new
 * frames continue the replica. Another writer in the window between the
 * unlock and the bump used to make that a continuity break (a snapshot).
 *
 * After TRUNCATE, if nobody else committed or checkpointed in the window
 * (`data_version` unchanged), any WAL restart since the seal was ours or our
 * bump's; otherwise the next sync publishes a snapshot. (The new salts prove
 * nothing by themselves: a connection that never restarted a WAL writes
 * random salts into a truncated one.)
 */
import type { CheckpointResult, SqliteConnections } from "./sqlite-connections.js";

/** Checkpoint thresholds, in WAL frames. */
export interface CheckpointPolicy {
  /** PASSIVE checkpoint once the replicated WAL holds this many frames (default 1000). */
  passivePages: number;
  /** TRUNCATE checkpoint once it holds this many (default 121359, Litestream's). */
  truncatePages: number;
}

/** What the next sync may accept after our checkpoint. */
export interface RestartExpectation {
  /** salt1 of the WAL generation before the checkpoint (`null`: there was no WAL), for diagnostics. */
  oldSalt1: number | null;
  /**
   * True when the WAL may restart (once, before anything is appended to it)
   * without losing frames: pinned again with nobody committing after the
   * seal, or nobody else committed or checkpointed before our bump (see above).
   */
  clean: boolean;
}

/** The checkpoint mode due for a WAL of `frames` replicated frames, if any. */
export function checkpointModeFor(
  frames: number,
  policy: CheckpointPolicy,
): "PASSIVE" | "TRUNCATE" | undefined {
  if (frames >= policy.truncatePages) return "TRUNCATE";
  if (frames >= policy.passivePages) return "PASSIVE";
  return undefined;
}

/** Whether a WAL found restarted may be read from its start without a snapshot. */
export function restartIsContinuous(expect: RestartExpectation | undefined): boolean {
  return expect?.clean === true;
}

/**
 * Runs the protocol above, synchronously from lock to re-pin: while we hold
 * SQLite's write lock we must not yield to the event loop, where an
 * in-process application on a synchronous driver would block on the lock
 * while we wait for it. `seal` captures the WAL up to its end (under the
 * lock) and returns false to call the checkpoint off (e.g. a snapshot is due).
 * Returns undefined when the lock could not be taken or the checkpoint was
 * called off.
 */
export function runCheckpoint(
  conns: SqliteConnections,
  mode: "PASSIVE" | "TRUNCATE",
  seal: () => boolean,
  currentSalt1: () => number | null,
): { result: CheckpointResult; expectation: RestartExpectation } | undefined {
  if (!conns.lock()) return undefined;
  let result: CheckpointResult = { busy: 1, log: -1, checkpointed: -1 };
  let before = Number.NaN;
  let oldSalt1: number | null = null;
  let clean = false;
  let released = false;
  try {
    try {
      if (!seal()) return undefined;
      oldSalt1 = currentSalt1();
      before = conns.dataVersion();
      released = true;
      conns.releasePin();
      if (mode === "PASSIVE") {
        result = conns.checkpoint("PASSIVE");
        // Pinned again before the lock is dropped: no commit in between.
        conns.takePin();
        clean = true;
      }
    } finally {
      conns.unlock();
    }
    if (mode === "TRUNCATE") result = conns.checkpoint("TRUNCATE");
  } finally {
    if (released && !conns.pinned) {
      // Always pin again, even after an error: an unpinned WAL can be
      // checkpointed and restarted under us.
      clean = repinAndBump(conns, before);
    } else if (clean && conns.lock()) {
      conns.bumpAndUnlock();
      conns.renewPin();
    }
  }
  return { result, expectation: { oldSalt1, clean } };
}

/**
 * Pins again after a time unpinned, then makes the bump write. The pin is
 * taken under the write lock, before the bump's commit releases it: in a gap
 * between the two, another commit and a full checkpoint could slip in and a
 * later restart would lose that commit. Returns whether nobody else committed
 * or checkpointed since `before` (`data_version`), i.e. whether a restart
 * may be followed.
 */
export function repinAndBump(conns: SqliteConnections, before: number): boolean {
  const locked = conns.lock();
  let clean: boolean;
  try {
    clean = locked && conns.dataVersion() === before;
    conns.takePin();
  } catch (err) {
    if (locked) conns.unlock();
    throw err;
  }
  if (locked) {
    conns.bumpAndUnlock();
    conns.renewPin();
  }
  return clean;
}
