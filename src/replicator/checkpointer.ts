/**
 * Controlled checkpoints. PASSIVE once the WAL passes a page threshold,
 * TRUNCATE past a larger one (and on close); never RESTART, which stalls
 * writers. The protocol keeps continuity provable:
 *
 * 1. take the write lock, replicate the WAL to its end (nothing can commit
 *    now), note `data_version`, end the pin;
 * 2. PASSIVE runs while we still hold the lock; TRUNCATE needs writers gone,
 *    so the lock is dropped first;
 * 3. re-take the lock, compare `data_version` (did anybody else commit or
 *    checkpoint in between?), make a one-frame "bump" write and pin again.
 *
 * If nobody else committed or checkpointed in that window (`data_version`
 * unchanged), any WAL restart since the seal was ours or our bump's, so
 * everything the old WAL held had been replicated and replication continues
 * from the new WAL's start. (The new salts prove nothing by themselves: a
 * connection that never restarted a WAL writes random salts into a truncated
 * one.) Otherwise the next sync publishes a snapshot.
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
  /** True when no other connection committed between sealing and re-pinning. */
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
  try {
    try {
      if (!seal()) return undefined;
      oldSalt1 = currentSalt1();
      before = conns.dataVersion();
      conns.releasePin();
      if (mode === "PASSIVE") result = conns.checkpoint("PASSIVE");
    } finally {
      conns.unlock();
    }
    if (mode === "TRUNCATE") result = conns.checkpoint("TRUNCATE");
  } finally {
    // Always pin again, even after an error: an unpinned WAL can be restarted under us.
    if (!conns.pinned) {
      const locked = conns.lock();
      const after = conns.dataVersion();
      if (locked) conns.bumpAndUnlock();
      conns.takePin();
      clean = locked && after === before;
    }
  }
  return { result, expectation: { oldSalt1, clean } };
}
