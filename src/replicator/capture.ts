/**
 * The capture side of the writer (Litestream's db.go): the only part that
 * touches the database's files, through {@link DatabaseFiles}. It follows the
 * WAL (committed frames since the capture position become captured page
 * images, held in a {@link CaptureBuffer} until the upload pipeline takes
 * them), notices anything that breaks continuity (a WAL restarted by someone
 * else, files swapped behind the connections, page 1 rewritten outside
 * SQLite) and asks for a snapshot instead, reads snapshots, runs the
 * controlled checkpoints and the rolling divergence check.
 *
 * Everything here is synchronous except snapshot reads: the caller runs
 * those and every other call one at a time (the replicator's capture lane).
 */

import type { LtxCompat } from "../format/index.js";
import { CaptureBuffer } from "./capture-buffer.js";
import {
  type CheckpointPolicy,
  checkpointModeFor,
  repinAndBump,
  runCheckpoint,
} from "./checkpointer.js";
import { DatabaseFiles } from "./database-files.js";
import type { ReplicatorLogger } from "./logger.js";
import type { UploadableLtx } from "./ltx-builder.js";
import type { PageChecksums } from "./page-checksums.js";
import { captureSegment } from "./segment-capture.js";
import type { BuiltSkeleton } from "./skeleton.js";
import { readFullSnapshot, readPositionSnapshot } from "./snapshot-reader.js";
import type { BuiltResync } from "./snapshotter.js";
import type { CheckpointResult } from "./sqlite-connections.js";
import { RollingVerifier } from "./verifier.js";
import { type CapturePosition, CHANGED_OUTSIDE, WalPosition } from "./wal-position.js";
import { readWalHeader } from "./wal-reader.js";

export type { CapturePosition } from "./wal-position.js";

/** What the capture side reports to the rest of the writer. */
export interface CaptureHooks {
  log: ReplicatorLogger;
  /** The replica can no longer be continued from the database (logged as an error by the hook). */
  divergence(reason: string): void;
  /** A failure worth counting (the database could not be opened, ...). */
  error(err: unknown): void;
  /** A checkpoint ran (`result`), or could not take the write lock (undefined). */
  checkpoint(
    mode: "PASSIVE" | "TRUNCATE",
    result: CheckpointResult | undefined,
    clean: boolean,
  ): void;
  /** The outage buffer passed its budget and was dropped for a snapshot. */
  overflow(): void;
}

/** Options of the capture side. */
export interface CaptureOptions {
  path: string;
  busyTimeout: number;
  policy: CheckpointPolicy;
  /** Bytes of captured page images kept while storage fails (see `outageBufferBytes`). */
  bufferBudget: number;
  /** Page encoding of the files read here (snapshots, skeletons). */
  ltxCompat?: LtxCompat;
}

/** The capture side (see the module comment). */
export class Capture {
  readonly #opts: CaptureOptions;
  readonly #hooks: CaptureHooks;
  #files: DatabaseFiles | undefined;
  #pageSize: number;
  readonly #at = new WalPosition();
  #walBytes = 0;
  #lastCheckpoint: { salt1: number; frames: number } | undefined;
  /** The pin was re-taken since the last scan: frames up to it may not be captured yet. */
  #repinned = false;
  /** Set while the database cannot be opened (after a swap, or gone). */
  #unavailable: { since: number; reason: string } | undefined;
  /** The current unavailability was logged. */
  #reported = false;
  #buffer = new CaptureBuffer();
  #snapshotReason: string | undefined = "no replicated position (start)";
  /** The snapshot due must also start a new restore plan (a level-9 file). */
  #snapshotLevel9 = false;
  readonly verifier = new RollingVerifier();

  private constructor(opts: CaptureOptions, hooks: CaptureHooks, files: DatabaseFiles) {
    this.#opts = opts;
    this.#hooks = hooks;
    this.#files = files;
    this.#pageSize = files.pageSize;
    this.#noteSwitch(files);
  }

  /** A database found in rollback-journal mode was switched to WAL: say so (the application sees it too). */
  #noteSwitch(files: DatabaseFiles): void {
    const from = files.conns.switchedFrom;
    if (from === undefined) return;
    this.#hooks.log.info(
      `switched the database from rollback-journal mode (${from}) to WAL mode, which replication needs`,
      { db: this.#opts.path },
    );
  }

  /** Opens the database (see `DatabaseFiles.open`). */
  static open(opts: CaptureOptions, hooks: CaptureHooks): Capture {
    return new Capture(opts, hooks, DatabaseFiles.open(opts.path, opts.busyTimeout));
  }

  get pageSize(): number {
    return this.#pageSize;
  }
  /** The open files, or undefined while the database is unavailable. */
  get files(): DatabaseFiles | undefined {
    return this.#files;
  }
  get unavailable(): { since: number; reason: string } | undefined {
    return this.#unavailable;
  }
  get walBytes(): number {
    return this.#walBytes;
  }
  /** Captured changes not handed to the upload pipeline yet. */
  get buffer(): CaptureBuffer {
    return this.#buffer;
  }
  /** Why a snapshot is due, if one is. */
  get snapshotReason(): string | undefined {
    return this.#snapshotReason;
  }
  /**
   * A snapshot is due; whatever the buffer holds is covered by it. With
   * `level9`, it must also be published as a level-9 snapshot (a new
   * starting point for restore plans), whatever the level-0 file holds.
   */
  requestSnapshot(reason: string, options: { level9?: boolean } = {}): void {
    this.#snapshotReason ??= reason;
    if (options.level9) this.#snapshotLevel9 = true;
    this.#buffer = new CaptureBuffer();
  }

  /** Replaces the snapshot reason (the start's, once resume found out why). */
  setSnapshotReason(reason: string): void {
    this.#snapshotReason = reason;
    this.#buffer = new CaptureBuffer();
  }

  /** Hands the captured changes to the upload pipeline (undefined when there are none or a snapshot is due). */
  takeBuffer(): CaptureBuffer | undefined {
    if (this.#snapshotReason !== undefined || this.#buffer.empty) return undefined;
    const buffer = this.#buffer;
    this.#buffer = new CaptureBuffer();
    return buffer;
  }

  /** Continues from a resumed position (see resume.ts). */
  adopt(at: CapturePosition): void {
    this.#at.adopt(at);
    this.#snapshotReason = undefined;
  }

  /** Takes the pin (with a bump write first, so it holds a real read mark). */
  pin(): void {
    const conns = this.#files?.conns;
    if (!conns || conns.pinned) return;
    // Frames committed while unpinned may be gone: no restart is expected.
    this.#at.expect = undefined;
    if (conns.lock()) conns.bumpAndUnlock();
    conns.takePin();
    this.#repinned = true;
  }

  /**
   * Pins after a resume whose own sync ran unpinned: a WAL restart by the
   * bump is continuous only if nobody committed since `before` (data_version).
   */
  pinAfterResume(before: number): void {
    const conns = this.#files?.conns;
    if (!conns || conns.pinned) return;
    const oldSalt1 = this.#at.cursor?.salt1 ?? null;
    this.#at.expect = undefined;
    const clean = repinAndBump(conns, before);
    this.#repinned = true;
    this.#at.expect = { oldSalt1, clean };
  }

  /** Checks the files behind the connections (reopening them after a swap; see {@link scan}). */
  checkFiles(): void {
    this.#ensureFiles();
  }

  /**
   * One capture: checks the files, then reads the WAL's new committed frames
   * into the buffer, or asks for a snapshot when continuity is lost. With
   * `failing` (storage down) the buffer is bounded by the budget; without it
   * and over the budget (a slow upload) capture waits and the WAL keeps the frames.
   */
  scan(
    options: { failing?: boolean; pin?: boolean; force?: boolean; sealing?: boolean } = {},
  ): void {
    const reopened = options.sealing ? undefined : this.#ensureFiles();
    const files = this.#files;
    if (!files) return;
    if (
      !options.force &&
      !options.failing &&
      this.#buffer.bytes >= this.#opts.bufferBudget &&
      this.#snapshotReason === undefined
    ) {
      return;
    }
    if (options.pin !== false) this.pin();
    const header = readWalHeader(files.wal);
    this.#walBytes = files.walSize();
    let reason = reopened ?? this.#snapshotReason;
    if (!reason && header && header.pageSize !== this.#pageSize) {
      reason = "page size changed";
      this.#hooks.divergence(reason);
    }
    if (reason) {
      // Nothing to capture (the snapshot reads the database), but follow the
      // WAL so that the checkpoint thresholds see its real length.
      this.#at.follow(files, header, this.#walBytes);
      this.requestSnapshot(reason);
      this.#repinned = false;
      return;
    }
    const found = this.#at.readNew(files, header, this.#walBytes, this.#hooks.log);
    if (found === CHANGED_OUTSIDE) {
      // Rewritten in place (a backup copied over it): our connections must
      // not keep locks on it (an application reopening it in rollback mode
      // could never write), so they are closed and reopened.
      this.#swapped(found);
      this.#reopen();
      return;
    }
    if (typeof found === "string") {
      this.#hooks.divergence(found);
      this.requestSnapshot(found);
      return;
    }
    this.#repinned = false;
    if (!found || found.transactions === 0) return;
    const captured = captureSegment({
      db: files.db,
      wal: files.wal,
      segment: found,
      generationPages: this.#at.walPages,
      pageSize: this.#pageSize,
      prevCommit: this.#at.commit,
    });
    this.#buffer.add(captured, Date.now());
    this.#at.advance(found, captured.pages.get(1));
    if (options.failing && this.#buffer.bytes > this.#opts.bufferBudget) {
      this.#hooks.log.warn(
        "storage unavailable too long: buffered changes dropped, a snapshot follows",
        { bytes: this.#buffer.bytes, transactions: this.#buffer.transactions },
      );
      this.#hooks.overflow();
      this.requestSnapshot("storage unavailable too long");
    }
  }

  /**
   * Checks the files behind the connections and reopens them after a swap
   * (connections closed first, then descriptors; see database-files.ts), so
   * the replicator never holds locks on a file that is no longer the
   * application's. Returns the reason when they were reopened.
   */
  #ensureFiles(): string | undefined {
    if (this.#files) {
      const change = this.#files.changed();
      if (!change) return undefined;
      this.#swapped(change.reason);
    }
    return this.#reopen();
  }

  /** The file changed behind the connections: a divergence; close everything (reopened next). */
  #swapped(reason: string): void {
    this.#hooks.divergence(reason);
    this.requestSnapshot(reason);
    this.disconnect();
    this.#unavailable = { since: Date.now(), reason };
    this.#reported = false;
  }

  /** Reopens the files after a swap; returns why they were closed, or undefined while they cannot be opened. */
  #reopen(): string | undefined {
    const lost = this.#unavailable ?? { since: Date.now(), reason: "database reopened" };
    try {
      this.#files = DatabaseFiles.open(this.#opts.path, this.#opts.busyTimeout);
      this.#noteSwitch(this.#files);
    } catch (err) {
      if (!this.#reported) {
        this.#reported = true;
        this.#hooks.log.warn("database unavailable; waiting for it", {
          reason: lost.reason,
          error: (err as Error).message,
        });
        this.#hooks.error(err);
      }
      return undefined;
    }
    this.#hooks.log.info("database reopened", { after: lost.reason });
    this.#unavailable = undefined;
    this.#pageSize = this.#files.pageSize;
    this.#at.reset();
    this.#lastCheckpoint = undefined;
    return lost.reason;
  }

  /** Closes the connections and descriptors (they reopen at the next scan). */
  disconnect(): void {
    const files = this.#files;
    this.#files = undefined;
    files?.close();
  }

  /**
   * PASSIVE or TRUNCATE checkpoint when the WAL passed a threshold. Under the
   * write lock the WAL's tail is captured first (nothing can commit then), so
   * the checkpoint loses nothing (the buffer holds it until it is published).
   * `failing`: storage is down, so checkpoint even with a snapshot due (it
   * reads the whole database later) to keep the WAL bounded.
   */
  checkpointIfDue(failing: boolean): void {
    const files = this.#files;
    if (!files || this.#unavailable) return;
    // A slow (not failing) upload with the buffer at its budget: the WAL keeps the frames.
    if (!failing && this.#buffer.bytes >= this.#opts.bufferBudget) return;
    const frames = this.#at.frames(this.#pageSize);
    const mode = checkpointModeFor(frames, this.#opts.policy);
    // After a checkpoint that could not restart the WAL (readers elsewhere), do
    // not retry on every sync: each attempt costs a lock and a bump write.
    const last = this.#lastCheckpoint;
    const retry =
      !last ||
      last.salt1 !== this.#at.cursor?.salt1 ||
      frames >= last.frames + Math.max(1, Math.floor(this.#opts.policy.passivePages / 2));
    if (!mode || !retry) return;
    this.#lastCheckpoint = { salt1: this.#at.cursor?.salt1 ?? 0, frames };
    let locked = false;
    let out: ReturnType<typeof runCheckpoint>;
    try {
      out = runCheckpoint(
        files.conns,
        mode,
        () => {
          locked = true;
          // A swap since the scan: never checkpoint stale frames into the new file.
          if (files.changed()) return false;
          this.scan({ failing, force: true, pin: false, sealing: true });
          // Reopened by the scan (the file changed): these connections are closed.
          if (this.#files !== files) return false;
          return this.#snapshotReason === undefined || failing;
        },
        () => (this.#at.expect?.oldSalt1 === null ? null : (this.#at.cursor?.salt1 ?? null)),
      );
    } catch (err) {
      // The expectation of a restart holds only while its pin does: after an
      // error the WAL may have been left unpinned, or pinned anew.
      this.#at.expect = undefined;
      throw err;
    }
    if (out) {
      this.#at.expect = out.expectation;
      this.#repinned = true;
      this.#hooks.checkpoint(mode, out.result, out.expectation.clean);
    } else if (!locked) {
      this.#hooks.checkpoint(mode, undefined, false);
    }
  }

  /**
   * Whether the divergence check may run now: the files are open, nothing is
   * captured and unencoded, no snapshot is due, and every frame up to the
   * pin has been captured (so the database file holds nothing newer than
   * the cursor), in the WAL generation of the cursor (a pin on a fully
   * checkpointed WAL lets another connection restart it once, over the
   * frames the position points at, until the next scan follows).
   */
  get verifiable(): boolean {
    if (
      this.#files === undefined ||
      this.#at.cursor === undefined ||
      this.#snapshotReason !== undefined ||
      !this.#buffer.empty ||
      this.#repinned ||
      !this.#files.conns.pinned
    ) {
      return false;
    }
    const header = readWalHeader(this.#files.wal);
    const cursor = this.#at.cursor;
    return header
      ? header.salt1 === cursor.salt1 && header.salt2 === cursor.salt2
      : this.#at.walPages.size === 0;
  }

  /**
   * Compares up to `pages` pages with `checksums` (the state the pipeline
   * encoded, which equals the capture position when {@link verifiable}). A
   * mismatch is a divergence: reported, and a snapshot is due.
   */
  verify(checksums: PageChecksums, pages: number): void {
    if (!this.verifiable) return;
    const files = this.#files!;
    let pgno: number | undefined;
    try {
      pgno = this.verifier.step(
        {
          db: files.db,
          wal: files.wal,
          walPages: this.#at.walPages,
          salts: this.#at.cursor!,
          pageSize: this.#pageSize,
          commit: this.#at.commit,
          checksums,
        },
        pages,
      );
    } catch (err) {
      // Restarted since the check above: the next scan follows, then the check goes on.
      if ((err as { code?: unknown }).code === "WAL_CHANGED") return;
      throw err;
    }
    if (pgno === undefined) return;
    const reason = `replica diverged from the database (page ${pgno})`;
    this.#hooks.divergence(reason);
    this.requestSnapshot(reason);
  }

  /**
   * Reads the snapshot that is due, at TXID `txid` (async: the caller keeps
   * other capture calls out meanwhile), encoded as TXID `txid`'s level-0
   * file and, when `previous` is not usable or a level-9 snapshot was asked
   * for, as a level-9 snapshot too (see `buildResync`). `previous`: the
   * replica's state at `txid - 1`, used when its page size is the database's.
   * The capture position moves to the image.
   */
  async readSnapshot(
    txid: number,
    options: {
      checksums?: PageChecksums | undefined;
      previous?: { checksums: PageChecksums; pageSize: number } | undefined;
      /** Publish a level-9 snapshot too (besides when asked by {@link requestSnapshot}). */
      level9?: boolean;
    },
  ): Promise<(BuiltResync & { skeleton: BuiltSkeleton | undefined; reason: string }) | undefined> {
    // Never through connections whose files were swapped (the pin's bump
    // write would hold locks on the application's new file).
    this.#ensureFiles();
    const files = this.#files;
    if (!files) return undefined;
    const reason = this.#snapshotReason ?? "requested";
    // A snapshot reads the database file: only consistent under the pin.
    this.pin();
    const previous =
      options.previous?.pageSize === files.pageSize ? options.previous.checksums : undefined;
    const taken = await readFullSnapshot(files, txid, {
      checksums: options.checksums,
      previous,
      snapshot: this.#snapshotLevel9 || options.level9 === true,
      compat: this.#opts.ltxCompat,
    });
    this.#at.moveTo(taken);
    this.#snapshotReason = undefined;
    this.#snapshotLevel9 = false;
    this.#repinned = false;
    this.verifier.restart();
    const { level0, full, snapshot, skeleton } = taken;
    return { level0, full, ...(snapshot ? { snapshot } : {}), skeleton, reason };
  }

  /** A snapshot of the capture position itself (the periodic snapshot); see `readPositionSnapshot`. */
  readPositionSnapshot(
    txid: number,
    timestamp: number,
  ): Promise<{ enc: UploadableLtx; skeleton: BuiltSkeleton | undefined } | undefined> {
    const cursor = this.#at.cursor;
    if (!this.#files || !cursor || this.#files.changed()) return Promise.resolve(undefined);
    return readPositionSnapshot(
      this.#files,
      { cursor, walPages: this.#at.walPages, commit: this.#at.commit, txid, timestamp },
      this.#opts.ltxCompat,
    ).catch((err: unknown) => {
      // The WAL moved on under the read: try again at a later sync.
      if ((err as { code?: unknown }).code !== "WAL_CHANGED") throw err;
      this.#hooks.log.debug("periodic snapshot skipped: the WAL changed while it was read");
      return undefined;
    });
  }

  /** The final checkpoint of `close()`: unpinned, TRUNCATE. */
  finalCheckpoint(): void {
    const conns = this.#files?.conns;
    if (!conns) return;
    conns.releasePin();
    conns.checkpoint("TRUNCATE");
  }

  /** Closes the files. */
  close(): void {
    this.disconnect();
    this.#buffer = new CaptureBuffer();
  }
}
