/**
 * The Replicator: Litestream-style continuous replication of a live SQLite
 * database to an object store, as LTX files in Litestream 0.5's layout plus a
 * head object and a writer lease.
 *
 * A thin orchestrator over four parts, each in its own file:
 * - capture.ts: the only code touching the database's files (WAL capture,
 *   snapshot reads, checkpoints, swaps noticed, the divergence check);
 * - publisher.ts: uploads, the head, lease fencing, outage mode;
 * - maintenance.ts: compaction and retention;
 * - resume.ts: where a restart continues.
 *
 * Two lanes keep them apart: capture runs on its own cadence (every sync
 * interval) whatever the uploads do, so a hung upload never blocks capture
 * or checkpoints; uploads run one at a time in the publish lane.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { ltxKey } from "../format/index.js";
import { fileTime, LayoutError, listAllLevels, SNAPSHOT_LEVEL } from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openNodeStore } from "../storage/open-node-store.js";
import { Capture } from "./capture.js";
import type { CaptureBuffer } from "./capture-buffer.js";
import { HeadWriter } from "./head-writer.js";
import { WriterHealth } from "./health.js";
import { Lease } from "./lease.js";
import { type ReplicatorLogger, silentLogger } from "./logger.js";
import { Maintenance } from "./maintenance.js";
import { type ReplicatorOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { errorText, Publisher } from "./publisher.js";
import { LeaseLostError, ReplicatorError } from "./replicator-error.js";
import { restore } from "./restore.js";
import { findResumePoint, trustedListing } from "./resume.js";
import type { ReplicaPosition, ReplicatorStats } from "./stats.js";

export type { ReplicatorOptions } from "./options.js";

function randomId(): string {
  return randomBytes(9).toString("base64url");
}

/** Runs calls one at a time, in order. */
class Lane {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => {});
    return next;
  }
}

/** Events: `sync` (position), `snapshot` ({txid, reason}), `compaction` ({level, minTXID, maxTXID}), `checkpoint` ({mode}), `error` (Error; only when a listener exists). */
export class Replicator extends EventEmitter {
  readonly #o: ResolvedOptions;
  readonly #store: ObjectStore;
  readonly #ownsStore: boolean;
  readonly #lease: Lease;
  readonly #log: ReplicatorLogger;
  readonly #writerId: string;
  readonly #health: WriterHealth;
  readonly #capture: Capture;
  readonly #pub: Publisher;
  readonly #maint: Maintenance;
  readonly #captureLane = new Lane();
  readonly #publishLane = new Lane();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #pumpQueued = false;
  #closing: Promise<void> | undefined;
  #closed = false;
  #lastSnapshotAt = 0;
  #stats = {
    syncs: 0,
    publishedSyncs: 0,
    snapshots: 0,
    continuityBreaks: {} as Record<string, number>,
    checkpoints: { passive: 0, truncate: 0, busy: 0 },
    bufferOverflows: 0,
    errors: 0,
    lastError: null as string | null,
    lastSyncAt: null as number | null,
  };

  private constructor(
    o: ResolvedOptions,
    options: ReplicatorOptions,
    store: ObjectStore,
    ownsStore: boolean,
    lease: Lease,
    head: HeadWriter,
    writerId: string,
  ) {
    super();
    this.#o = o;
    this.#store = store;
    this.#ownsStore = ownsStore;
    this.#lease = lease;
    this.#writerId = writerId;
    this.#log = options.logger ?? silentLogger;
    this.#health = new WriterHealth(this.#log);
    this.#capture = Capture.open(
      {
        path: o.db,
        busyTimeout: o.busyTimeout,
        policy: { passivePages: o.checkpointPages, truncatePages: o.truncatePages },
        bufferBudget: o.outageBufferBytes,
      },
      {
        log: this.#log,
        divergence: (reason) => this.#health.note(reason, this.#pub.txid),
        error: (err) => this.#recordError(err),
        checkpoint: (mode, result, clean) => {
          if (!result) {
            this.#stats.checkpoints.busy++;
            return;
          }
          if (mode === "PASSIVE") this.#stats.checkpoints.passive++;
          else this.#stats.checkpoints.truncate++;
          this.#log.debug("checkpoint", { mode, ...result, clean });
          this.emit("checkpoint", { mode, ...result });
        },
        overflow: () => this.#stats.bufferOverflows++,
      },
    );
    this.#pub = new Publisher(
      {
        store,
        lease,
        head,
        writerId,
        log: this.#log,
        health: this.#health,
        trackChecksums: o.trackChecksums,
        compactionCacheBytes: o.compactionCacheBytes,
        cacheInputs: o.compaction !== undefined,
        syncInterval: o.syncInterval,
        outageRetryMaxDelay: o.outageRetryMaxDelay,
        stallAfter: o.uploadStallTimeout,
        emit: (name, payload) => this.emit(name, payload),
        requestSnapshot: (reason) => {
          if (this.#capture.snapshotReason === undefined) {
            this.#log.warn("publishing a snapshot", { reason });
          }
          this.#capture.requestSnapshot(reason);
        },
        error: (err) => this.#recordError(err),
      },
      randomId(),
    );
    this.#pub.pageSize = this.#capture.pageSize;
    this.#maint = new Maintenance(
      {
        store,
        lease,
        log: this.#log,
        intervals: o.compaction,
        retention: o.retention,
        retentionGrace: o.retentionGrace,
        startedAt: Date.now(),
      },
      this.#pub,
    );
  }

  /**
   * Starts replicating `options.db`: takes the lease (failing with
   * `LeaseHeldError` naming the holder when another replicator is live),
   * continues from the replica's position when the database is still at it
   * (else publishes a snapshot, logging why), then syncs every `syncInterval` ms.
   */
  static async start(options: ReplicatorOptions): Promise<Replicator> {
    const o = resolveOptions(options);
    const ownsStore = !options.store;
    const store = options.store ?? (await openNodeStore(options.url!));
    const log = options.logger ?? silentLogger;
    let lease: Lease | undefined;
    let r: Replicator | undefined;
    try {
      if (!existsSync(o.db)) {
        if (!options.autoRestore) {
          throw new ReplicatorError("DB_MISSING", `database ${o.db} does not exist`);
        }
        try {
          const res = await restore(store, o.db, { logger: log });
          log.info("database restored from replica", { txid: res.txid, path: o.db });
        } catch (err) {
          if (!(err instanceof LayoutError && err.code === "REPLICA_EMPTY")) throw err;
          throw new ReplicatorError(
            "DB_MISSING",
            `database ${o.db} does not exist and the replica ${store.url} is empty`,
          );
        }
      }
      const writerId = options.writerId ?? randomId();
      lease = await Lease.acquire(store, {
        writerId,
        ...(options.leaseTtl !== undefined ? { ttlMs: options.leaseTtl } : {}),
      });
      const head = new HeadWriter(store);
      const existingHead = await head.load();
      const listing = await trustedListing(store, await listAllLevels(store), existingHead, log);
      r = await openRetrying(
        () => new Replicator(o, options, store, ownsStore, lease!, head, writerId),
      );
      r.#pub.adoptListing(listing.files, existingHead);
      r.#pub.txid = listing.txid;
      await r.#resume(existingHead, listing);
      await r.sync();
      r.#startTimer();
      log.info("replicator started", {
        db: o.db,
        replica: store.url,
        txid: r.#pub.txid,
        writer: writerId,
      });
      return r;
    } catch (err) {
      if (r) r.#capture.close();
      await lease?.release().catch(() => {});
      if (ownsStore) await store.close().catch(() => {});
      throw err;
    }
  }

  /** Continues at the replica's position when the database is still there (see resume.ts), else a snapshot is due. */
  async #resume(
    head: Awaited<ReturnType<HeadWriter["load"]>>,
    listing: Awaited<ReturnType<typeof trustedListing>>,
  ): Promise<void> {
    const files = this.#capture.files!;
    const before = files.conns.dataVersion();
    const found = this.#o.trackChecksums
      ? await findResumePoint(this.#store, files, head, listing)
      : { reason: "no replicated position (start)" };
    if ("reason" in found) {
      if (head) this.#log.info("publishing a snapshot at start", { reason: found.reason });
      this.#capture.setSnapshotReason(found.reason);
      this.#capture.pin();
      return;
    }
    const pub = this.#pub;
    this.#capture.adopt(found);
    pub.checksums = found.checksums;
    pub.txid = head!.txid;
    pub.txTime = head!.timestamp;
    pub.commit = head!.commit;
    pub.pageSize = head!.pageSize;
    pub.generation = head!.generation;
    pub.skeleton = head!.skeleton;
    const snapshots = [...pub.files.values()].filter((f) => f.level === SNAPSHOT_LEVEL);
    this.#lastSnapshotAt = Math.max(0, ...snapshots.map((f) => fileTime(f)));
    this.#log.info("resuming from the replica's head without a snapshot", {
      txid: pub.txid,
      matched: found.matched,
    });
    // Capture what was committed while nobody replicated before the bump
    // write of the pin can restart the WAL.
    this.#capture.scan({ pin: false });
    this.#capture.pinAfterResume(before);
  }

  #startTimer(): void {
    if (this.#o.syncInterval <= 0) return;
    this.#timer = setInterval(() => void this.#tick(), this.#o.syncInterval);
    // The timer alone does not keep a process alive; close() does the final sync.
    this.#timer.unref();
  }

  /** Background: capture (and checkpoints) on every interval, then uploads in their own lane. */
  async #tick(): Promise<void> {
    // A slow capture (a big snapshot being read) must not pile up ticks behind it.
    if (this.#closed || this.#closing || this.#pub.fatal || this.#ticking) return;
    this.#ticking = true;
    this.#stats.syncs++;
    try {
      await this.#captureLane.run(() => {
        if (this.#closed) return;
        this.#pub.watch(Date.now());
        const failing = this.#pub.failingSince !== undefined;
        if (this.#o.trackChecksums && this.#o.verifyPages > 0) {
          this.#capture.verify(this.#pub.checksums, this.#o.verifyPages);
        }
        this.#capture.scan({ failing });
        // While storage fails the WAL stays bounded; otherwise checkpoints
        // follow publishing (see #publishAll), unless nothing waits.
        if (failing || (!this.#pumpQueued && !this.#pub.busy && this.#capture.buffer.empty)) {
          this.#capture.checkpointIfDue(failing);
        }
      });
      this.#kick();
    } catch (err) {
      this.#recordError(err);
    } finally {
      this.#ticking = false;
    }
  }

  /** Background uploads (waiting for the backoff during an outage), then maintenance. */
  #kick(): void {
    if (this.#pumpQueued || this.#closing || this.#pub.fatal) return;
    this.#pumpQueued = true;
    this.#publishLane
      .run(async () => {
        this.#pumpQueued = false;
        if (this.#closed || this.#pub.fatal) return;
        if (this.#pub.failingSince !== undefined && Date.now() < this.#pub.retryAt) return;
        const published = this.#pub.published;
        const failure = await this.#pub.tryStorage(() => this.#publishAll());
        if (this.#pub.published > published) this.#stats.publishedSyncs++;
        if (failure !== undefined) throw this.#unavailable(failure);
        this.#stats.lastSyncAt = Date.now();
        await this.#maybePeriodicSnapshot();
        // Compaction and retention wait until storage works again.
        if (this.#pub.failingSince === undefined) await this.#maint.due();
      })
      .catch((err: unknown) => this.#recordError(err));
  }

  #recordError(err: unknown): void {
    this.#stats.errors++;
    this.#stats.lastError = errorText(err);
    if (err instanceof LeaseLostError) this.#pub.fatal ??= err;
    this.#log.error("replication error", { error: errorText(err) });
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  #assertUsable(): void {
    if (this.#pub.fatal) {
      throw new ReplicatorError(
        "REPLICATOR_CLOSED",
        `replicator stopped: ${errorText(this.#pub.fatal)}`,
        { cause: this.#pub.fatal },
      );
    }
    if (this.#closed) throw new ReplicatorError("REPLICATOR_CLOSED", "replicator is closed");
  }

  /**
   * Replicates everything committed before the call and resolves with the
   * published position once it is durable in storage. While storage is
   * unavailable (after the store's own retries) it rejects with a
   * `ReplicatorError` of code `STORAGE_UNAVAILABLE`; the changes stay
   * captured and are published by a later sync.
   */
  async sync(): Promise<ReplicaPosition> {
    try {
      return await this.#sync();
    } catch (err) {
      this.#recordError(err);
      throw err;
    }
  }

  async #sync(): Promise<ReplicaPosition> {
    this.#assertUsable();
    this.#stats.syncs++;
    const published = this.#pub.published;
    try {
      // Everything committed before this call is captured now...
      await this.#captureLane.run(() => {
        this.#assertUsable();
        this.#capture.scan({ failing: this.#pub.failingSince !== undefined });
      });
      const unavailable = this.#capture.unavailable;
      if (unavailable) {
        throw new ReplicatorError(
          "DB_UNAVAILABLE",
          `database ${this.#o.db} cannot be opened since ${new Date(unavailable.since).toISOString()} (${unavailable.reason}); retrying`,
        );
      }
      // ...and durable once this publishes.
      const failure = await this.#publishLane.run(() => {
        this.#assertUsable();
        return this.#pub.tryStorage(() => this.#publishAll());
      });
      if (failure !== undefined) {
        // Keep the WAL bounded anyway (the buffer holds what it checkpoints).
        await this.#captureLane.run(() => this.#capture.checkpointIfDue(true));
        throw this.#unavailable(failure);
      }
      this.#stats.lastSyncAt = Date.now();
      // This call's transactions are durable; a later failure is only recorded.
      const later = await this.#publishLane.run(() =>
        this.#pub.tryStorage(() => this.#maybePeriodicSnapshot()),
      );
      if (later !== undefined) this.#recordError(this.#unavailable(later));
      return { txid: this.#pub.txid, timestamp: this.#pub.txTime };
    } finally {
      if (this.#pub.published > published) this.#stats.publishedSyncs++;
    }
  }

  /**
   * Publishes what waits, oldest first: an upload that failed earlier (the
   * same key and bytes), the head, then a due snapshot or the captured
   * changes as the next L0 file; checkpoints when due once all is published.
   */
  async #publishAll(): Promise<void> {
    const pub = this.#pub;
    const capture = this.#capture;
    for (;;) {
      if (pub.inflight) await pub.upload(pub.inflight);
      if (pub.headDirty || this.#health.changed) await this.#publishHead();
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
      await this.#captureLane.run(() => capture.checkpointIfDue(pub.failingSince !== undefined));
      if (capture.buffer.empty && capture.snapshotReason === undefined) return;
    }
  }

  async #publishHead(): Promise<void> {
    // Nothing published yet: no plan to name (the first snapshot's head comes soon).
    if (this.#pub.txid === 0 || this.#pub.files.size === 0) {
      this.#pub.headDirty = false;
      return;
    }
    await this.#pub.publishHead();
  }

  /** Freezes captured changes into the next L0 file (one TXID, however many captures it merged) and publishes it. */
  async #publishBuffer(buffer: CaptureBuffer): Promise<void> {
    const pub = this.#pub;
    const txid = pub.txid + 1;
    const timestamp = buffer.capturedAt;
    const enc = buffer.encode({
      pageSize: this.#capture.pageSize,
      txid,
      ...(this.#o.trackChecksums ? { checksums: pub.checksums } : {}),
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
    await this.#publishHead();
  }

  /** Publishes a full snapshot at the next TXID (continuity lost, a divergence, or the start). */
  async #snapshot(): Promise<void> {
    const pub = this.#pub;
    const txid = pub.txid + 1;
    const covers = this.#health.divergences;
    this.#log.info("publishing snapshot", { reason: this.#capture.snapshotReason, txid });
    const taken = await this.#captureLane.run(() =>
      this.#capture.readSnapshot(txid, this.#o.trackChecksums ? pub.checksums : undefined),
    );
    const { reason, enc } = taken;
    this.#stats.continuityBreaks[reason] = (this.#stats.continuityBreaks[reason] ?? 0) + 1;
    const timestamp = enc.header.timestamp;
    await pub.upload({
      key: ltxKey(SNAPSHOT_LEVEL, 1, txid),
      enc,
      ...(taken.skeleton ? { skeleton: taken.skeleton } : {}),
      commit: () => {
        pub.txid = txid;
        pub.txTime = timestamp;
        pub.commit = enc.header.commit;
        pub.pageSize = enc.header.pageSize;
        pub.generation = randomId();
        this.#lastSnapshotAt = Date.now();
        this.#stats.snapshots++;
        pub.published++;
        if (this.#health.divergences === covers) this.#health.repaired(txid);
        pub.queueEvent("snapshot", { txid, reason });
        pub.queueEvent("sync", { txid, timestamp });
      },
    });
    await this.#publishHead();
  }

  /** The periodic (24-hour) snapshot of the current TXID, at a position where everything captured is published. */
  async #maybePeriodicSnapshot(): Promise<void> {
    const pub = this.#pub;
    if (pub.txid === 0 || Date.now() - this.#lastSnapshotAt < this.#o.snapshotInterval) return;
    const key = ltxKey(SNAPSHOT_LEVEL, 1, pub.txid);
    if (pub.files.has(key)) {
      this.#lastSnapshotAt = Date.now();
      return;
    }
    const txid = pub.txid;
    const taken = await this.#captureLane.run(() => {
      const c = this.#capture;
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
        this.#lastSnapshotAt = Date.now();
        this.#stats.snapshots++;
        pub.queueEvent("snapshot", { txid, reason: "periodic" });
      },
    });
    await this.#publishHead();
  }

  /** The error `sync()` rejects with while storage is unavailable. */
  #unavailable(cause: unknown): ReplicatorError {
    const waiting =
      this.#capture.snapshotReason !== undefined
        ? "a snapshot is published"
        : `${this.#pendingTransactions()} committed transaction(s) kept in memory are published`;
    return new ReplicatorError(
      "STORAGE_UNAVAILABLE",
      `storage ${this.#store.url} is unavailable (${errorText(cause)}); ${waiting} when it returns`,
      { cause },
    );
  }

  #pendingTransactions(): number {
    return this.#capture.buffer.transactions + (this.#pub.inflight?.transactions ?? 0);
  }

  #hasPending(): boolean {
    return (
      this.#pub.busy || !this.#capture.buffer.empty || this.#capture.snapshotReason !== undefined
    );
  }

  /** Runs every due compaction and retention now (for tests and tools). */
  compactNow(): Promise<void> {
    return this.#publishLane.run(async () => {
      this.#assertUsable();
      await this.#publishAll();
      for (const level of [1, 2, 3] as const) await this.#maint.compact(level);
      if (this.#o.retention > 0) await this.#maint.enforceRetention();
    });
  }

  /** Current counters. */
  stats(): ReplicatorStats {
    const pub = this.#pub;
    const capture = this.#capture;
    const last = this.#health.last;
    return {
      writerId: this.#writerId,
      generation: pub.generation,
      txid: pub.txid,
      lastSyncAt: this.#stats.lastSyncAt,
      commit: pub.commit,
      pageSize: pub.pageSize,
      walBytes: capture.walBytes,
      syncs: this.#stats.syncs,
      publishedSyncs: this.#stats.publishedSyncs,
      snapshots: this.#stats.snapshots,
      continuityBreaks: { ...this.#stats.continuityBreaks },
      compactions: { ...this.#maint.compactions },
      checkpoints: { ...this.#stats.checkpoints },
      retentionDeletes: this.#maint.retentionDeletes,
      bytesUploaded: pub.bytesUploaded,
      pending: {
        transactions: this.#pendingTransactions(),
        bytes: capture.buffer.bytes + (pub.inflight?.enc.size ?? 0),
        snapshotDue: capture.snapshotReason !== undefined,
      },
      storageFailingSince: pub.failingSince ?? null,
      bufferOverflows: this.#stats.bufferOverflows,
      health: this.#health.diverged
        ? "diverged"
        : capture.unavailable
          ? "database-unavailable"
          : pub.failingSince !== undefined
            ? "storage-unavailable"
            : "healthy",
      divergences: this.#health.divergences,
      lastDivergence: last ? { ...last } : null,
      verification: {
        pages: capture.verifier.pages,
        passes: capture.verifier.passes,
        lastPassAt: capture.verifier.lastPassAt,
      },
      store: this.#store.counters(),
      errors: this.#stats.errors,
      lastError: this.#stats.lastError,
    };
  }

  /** The newest published position. */
  get position(): ReplicaPosition {
    return { txid: this.#pub.txid, timestamp: this.#pub.txTime };
  }

  /** The store this replicator writes to. */
  get store(): ObjectStore {
    return this.#store;
  }

  /**
   * Final sync, a TRUNCATE checkpoint, then releases the lease and the
   * connections. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    let failure: unknown;
    await this.#publishLane.run(async () => {
      if (!this.#pub.fatal) {
        try {
          await this.#captureLane.run(() =>
            this.#capture.scan({ failing: this.#pub.failingSince !== undefined }),
          );
          const f = await this.#pub.tryStorage(() => this.#publishAll());
          if (f !== undefined) throw this.#unavailable(f);
          this.#stats.lastSyncAt = Date.now();
          await this.#captureLane.run(() => this.#capture.finalCheckpoint());
        } catch (err) {
          failure = err;
        }
        // The changes are still in the database file: the next start publishes them.
        if (this.#hasPending()) {
          this.#log.warn("closing with changes not published; the next start publishes them", {
            transactions: this.#pendingTransactions(),
          });
        }
      }
      await this.#captureLane.run(() => {
        this.#closed = true;
        this.#capture.close();
      });
      // An upload that never made it: release what holds it (a spool file).
      this.#pub.dispose();
      if (!this.#pub.fatal) await this.#lease.release().catch(() => {});
      if (this.#ownsStore) await this.#store.close().catch(() => {});
    });
    if (failure) throw failure;
  }
}

/** The constructor opens the database: retried for a few seconds while it is busy (another connection mid-transaction). */
async function openRetrying(open: () => Replicator): Promise<Replicator> {
  for (let attempt = 0; ; attempt++) {
    try {
      return open();
    } catch (err) {
      if ((err as { code?: unknown }).code !== "DB_BUSY" || attempt >= 50) throw err;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}
