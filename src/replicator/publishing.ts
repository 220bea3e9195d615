/**
 * What the upload pipeline publishes next, in order (Litestream's replica
 * sync): an upload that failed earlier (retried as is), the head, then a
 * due snapshot (read by the capture side) or the captured changes as the
 * next L0 file; a checkpoint once everything captured is published; and the
 * periodic snapshot. Runs in the replicator's publish lane; every read of the
 * database goes through the capture lane.
 */
import { randomBytes } from "node:crypto";
import { type LtxCompat, ltxKey } from "../format/index.js";
import { SNAPSHOT_LEVEL } from "../layout/index.js";
import type { Capture } from "./capture.js";
import type { CaptureBuffer } from "./capture-buffer.js";
import type { WriterHealth } from "./health.js";
import type { Lane } from "./lane.js";
import type { ReplicatorLogger } from "./logger.js";
import { PageChecksums } from "./page-checksums.js";
import { errorText, type Publisher, type Upload } from "./publisher.js";
import { ReplicatorError } from "./replicator-error.js";

/** A new generation id (every continuity break starts one). */
export function randomId(): string {
  return randomBytes(9).toString("base64url");
}

/** What publishing needs from the replicator. */
export interface PublishingDeps {
  capture: Capture;
  pub: Publisher;
  health: WriterHealth;
  captureLane: Lane;
  log: ReplicatorLogger;
  trackChecksums: boolean;
  snapshotInterval: number;
  /** Page encoding of the level-0 files. */
  ltxCompat: LtxCompat;
  /** The replicator's counters (updated in place). */
  counters: { snapshots: number; continuityBreaks: Record<string, number> };
}

/** The publishing steps (see the module comment). */
export class Publishing {
  readonly #d: PublishingDeps;
  /** When the last snapshot was published (the periodic one is due `snapshotInterval` later). */
  lastSnapshotAt = 0;

  constructor(deps: PublishingDeps) {
    this.#d = deps;
  }

  /**
   * Publishes what waits, oldest first: an upload that failed earlier (the
   * same key and bytes), the head, then a due snapshot or the captured
   * changes as the next L0 file; checkpoints when due once all is published.
   */
  async publishAll(): Promise<void> {
    const pub = this.#d.pub;
    const capture = this.#d.capture;
    for (;;) {
      if (pub.inflight) await pub.upload(pub.inflight);
      if (pub.headDirty || this.#d.health.changed) await this.publishHead();
      if (capture.snapshotReason !== undefined) {
        if (!capture.files) return; // Waits for the database to reopen.
        await this.#snapshot();
        continue;
      }
      const buffer = capture.takeBuffer();
      if (buffer) {
        await this.#publishBuffer(buffer);
        continue;
      }
      // Everything captured is published: a checkpoint loses nothing. Its
      // seal may capture a last tail, published on the next turn.
      await this.#d.captureLane.run(() => capture.checkpointIfDue(pub.failingSince !== undefined));
      if (capture.buffer.empty && capture.snapshotReason === undefined) return;
    }
  }

  async publishHead(): Promise<void> {
    // Nothing published yet: no plan to name (the first snapshot's head comes soon).
    if (this.#d.pub.txid === 0 || this.#d.pub.files.size === 0) {
      this.#d.pub.headDirty = false;
      return;
    }
    await this.#d.pub.publishHead();
  }

  /** Freezes captured changes into the next L0 file (one TXID, however many captures it merged) and publishes it. */
  async #publishBuffer(buffer: CaptureBuffer): Promise<void> {
    const pub = this.#d.pub;
    const txid = pub.txid + 1;
    const timestamp = buffer.capturedAt;
    const enc = buffer.encode({
      pageSize: this.#d.capture.pageSize,
      txid,
      ...(this.#d.trackChecksums ? { checksums: pub.checksums } : {}),
      compat: this.#d.ltxCompat,
    });
    await pub.upload({
      key: ltxKey(0, txid, txid),
      enc,
      transactions: buffer.transactions,
      commit: () => {
        pub.txid = txid;
        pub.txTime = timestamp;
        pub.commit = buffer.commit;
        pub.published++;
        pub.queueEvent("sync", { txid, timestamp });
      },
    });
    await this.publishHead();
  }

  /**
   * Publishes the database as read now at the next TXID (continuity lost, a
   * divergence, the start), keeping every level contiguous the way
   * Litestream does: the TXID goes to level 0 like any other, as a file that
   * brings a reader of the previous TXID to the image (only the pages that
   * differ from the published state when it is known or can be rebuilt from
   * the replica; every page otherwise). A level-9 snapshot of the image
   * follows it when that file holds every page (readers then start from the
   * snapshot instead of reading the whole database twice), when the replica
   * has none yet, or when a new restore starting point was asked for.
   */
  async #snapshot(): Promise<void> {
    const pub = this.#d.pub;
    const txid = pub.txid + 1;
    // Rebuilding the published state may download the replica: before the capture lane is taken.
    const previous = await pub.publishedState();
    const checksums = this.#d.trackChecksums ? new PageChecksums() : undefined;
    let covers = 0;
    const taken = await this.#d.captureLane.run(() => {
      const reading = this.#d.capture.readSnapshot(txid, {
        checksums,
        previous,
        // The head's plan starts from a level-9 snapshot: the first one comes now.
        level9: !pub.hasSnapshot(),
      });
      // Every divergence noticed so far (including by the read's own file check) is covered.
      covers = this.#d.health.divergences;
      return reading;
    });
    if (!taken) return; // The database is unavailable: the snapshot waits for it.
    if (checksums) {
      pub.checksums = checksums;
      pub.checksumsKnown = true;
    }
    const { reason, level0, snapshot } = taken;
    const header = level0.header;
    this.#d.log.info("publishing snapshot", {
      reason,
      txid,
      pages: level0.pageCount,
      ...(snapshot ? { level9: true } : {}),
    });
    this.#d.counters.continuityBreaks[reason] =
      (this.#d.counters.continuityBreaks[reason] ?? 0) + 1;
    const timestamp = header.timestamp;
    const level9: Upload | undefined = snapshot && {
      key: ltxKey(SNAPSHOT_LEVEL, 1, txid),
      enc: snapshot,
      ...(taken.skeleton ? { skeleton: taken.skeleton } : {}),
      commit: () => {
        this.lastSnapshotAt = Date.now();
        this.#d.counters.snapshots++;
      },
    };
    await pub.upload({
      key: ltxKey(0, txid, txid),
      enc: level0,
      ...(taken.full ? { full: true } : {}),
      ...(level9 ? { next: level9 } : {}),
      commit: () => {
        pub.txid = txid;
        pub.txTime = timestamp;
        pub.commit = header.commit;
        pub.pageSize = header.pageSize;
        pub.generation = randomId();
        pub.published++;
        if (this.#d.health.divergences === covers) this.#d.health.repaired(txid);
        pub.queueEvent("snapshot", { txid, reason, level9: level9 !== undefined });
        pub.queueEvent("sync", { txid, timestamp });
      },
    });
    await this.publishHead();
  }

  /** The periodic (24-hour) snapshot of the current TXID, at a position where everything captured is published. */
  async periodicSnapshot(): Promise<void> {
    const pub = this.#d.pub;
    if (pub.txid === 0 || Date.now() - this.lastSnapshotAt < this.#d.snapshotInterval) return;
    const key = ltxKey(SNAPSHOT_LEVEL, 1, pub.txid);
    if (pub.files.has(key)) {
      this.lastSnapshotAt = Date.now();
      return;
    }
    const txid = pub.txid;
    const taken = await this.#d.captureLane.run(() => {
      const c = this.#d.capture;
      // The capture position must be the published one, and current (no pin taken since its scan).
      if (pub.busy || !c.verifiable) return undefined;
      return c.readPositionSnapshot(txid, pub.txTime);
    });
    if (!taken || pub.txid !== txid) return;
    await pub.upload({
      key,
      enc: taken.enc,
      ...(taken.skeleton ? { skeleton: taken.skeleton } : {}),
      commit: () => {
        this.lastSnapshotAt = Date.now();
        this.#d.counters.snapshots++;
        pub.queueEvent("snapshot", { txid, reason: "periodic", level9: true });
      },
    });
    await this.publishHead();
  }

  /** The error `sync()` rejects with while storage is unavailable. */
  unavailable(cause: unknown, url: string): ReplicatorError {
    const waiting =
      this.#d.capture.snapshotReason !== undefined
        ? "a snapshot is published"
        : `${this.pendingTransactions()} committed transaction(s) kept in memory are published`;
    return new ReplicatorError(
      "STORAGE_UNAVAILABLE",
      `storage ${url} is unavailable (${errorText(cause)}); ${waiting} when it returns`,
      { cause },
    );
  }

  /** Committed transactions captured and not published yet. */
  pendingTransactions(): number {
    return this.#d.capture.buffer.transactions + (this.#d.pub.inflight?.transactions ?? 0);
  }

  /** Whether anything captured, an upload, a head write or a snapshot waits. */
  hasPending(): boolean {
    return (
      this.#d.pub.busy ||
      !this.#d.capture.buffer.empty ||
      this.#d.capture.snapshotReason !== undefined
    );
  }
}
