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
import { EventEmitter } from "node:events";
import { listAllLevels } from "../layout/index.js";
import {
  type MetricLabels,
  type MetricsOptions,
  type MetricsText,
  metricsText,
  WRITE_METRICS,
} from "../metrics/prometheus-text.js";
import { writeReplicatorMetrics } from "../metrics/replicator-metrics.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openNodeStore } from "../storage/open-node-store.js";
import { Capture } from "./capture.js";
import { HeadWriter } from "./head-writer.js";
import { WriterHealth } from "./health.js";
import { Lane } from "./lane.js";
import { Lease } from "./lease.js";
import { type ReplicatorLogger, silentLogger } from "./logger.js";
import { Maintenance } from "./maintenance.js";
import { type ReplicatorOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { errorText, Publisher } from "./publisher.js";
import { Publishing, randomId } from "./publishing.js";
import { LeaseLostError, ReplicatorError } from "./replicator-error.js";
import { ensureDatabase, resumeOrSnapshot, trustedListing } from "./resume.js";
import { collectStats, type ReplicaPosition, type ReplicatorStats } from "./stats.js";

export type { ReplicatorOptions } from "./options.js";

/** Events: `sync` (position), `snapshot` ({txid, reason, level9}: a continuity break's TXID, `level9` when a level-9 snapshot came with it; periodic ones: reason "periodic"), `compaction` ({level, minTXID, maxTXID}), `checkpoint` ({mode}), `error` (Error; only when a listener exists). */
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
  readonly #publishing: Publishing;
  readonly #captureLane = new Lane();
  readonly #publishLane = new Lane();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #pumpQueued = false;
  #closing: Promise<void> | undefined;
  #closed = false;
  #stats = {
    syncs: 0,
    publishedSyncs: 0,
    syncDuration: { count: 0, totalMs: 0, lastMs: null as number | null },
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
        ltxCompat: o.ltxCompat,
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
          // A new starting point for the plan: a level-9 file, whatever the level-0 one holds.
          this.#capture.requestSnapshot(reason, { level9: true });
        },
        error: (err) => this.#recordError(err),
      },
      randomId(),
    );
    this.#pub.pageSize = this.#capture.pageSize;
    this.#publishing = new Publishing({
      capture: this.#capture,
      pub: this.#pub,
      health: this.#health,
      captureLane: this.#captureLane,
      log: this.#log,
      trackChecksums: o.trackChecksums,
      snapshotInterval: o.snapshotInterval,
      ltxCompat: o.ltxCompat,
      counters: this.#stats,
    });
    this.#maint = new Maintenance(
      {
        store,
        lease,
        log: this.#log,
        intervals: o.compaction,
        retention: o.retention,
        retentionGrace: o.retentionGrace,
        startedAt: Date.now(),
        ltxCompat: o.ltxCompat,
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
    // A writer keeps the AWS SDK even with static credentials (a daemon: its
    // load time does not matter; fetch is for readers' cold starts).
    const store = options.store ?? (await openNodeStore(options.url!, { s3Transport: "aws-sdk" }));
    const log = options.logger ?? silentLogger;
    let lease: Lease | undefined;
    let r: Replicator | undefined;
    try {
      await ensureDatabase(o.db, store, options.autoRestore === true, log);
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
      const resumed = await resumeOrSnapshot({
        store,
        capture: r.#capture,
        pub: r.#pub,
        head: existingHead,
        listing,
        trackChecksums: o.trackChecksums,
        log,
      });
      r.#publishing.lastSnapshotAt = resumed.lastSnapshotAt;
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
        // Swapped files first: they explain a page that differs.
        this.#capture.checkFiles();
        if (this.#o.trackChecksums && this.#o.verifyPages > 0) {
          this.#capture.verify(this.#pub.checksums, this.#o.verifyPages);
        }
        this.#capture.scan({ failing });
        // On its own cadence, whatever the uploads do: the WAL stays bounded.
        this.#capture.checkpointIfDue(failing);
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
        if (!this.#pub.outage.due(Date.now())) return;
        const published = this.#pub.published;
        const started = performance.now();
        const failure = await this.#pub.tryStorage(() => this.#publishing.publishAll());
        if (this.#pub.published > published) this.#published(started);
        if (failure !== undefined) throw this.#publishing.unavailable(failure, this.#store.url);
        this.#stats.lastSyncAt = Date.now();
        await this.#publishing.periodicSnapshot();
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
    let started = performance.now();
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
        started = performance.now();
        return this.#pub.tryStorage(() => this.#publishing.publishAll());
      });
      if (failure !== undefined) {
        // Keep the WAL bounded anyway (the buffer holds what it checkpoints).
        await this.#captureLane.run(() => this.#capture.checkpointIfDue(true));
        throw this.#publishing.unavailable(failure, this.#store.url);
      }
      this.#stats.lastSyncAt = Date.now();
      // This call's transactions are durable; a later failure is only recorded.
      const later = await this.#publishLane.run(() =>
        this.#pub.tryStorage(() => this.#publishing.periodicSnapshot()),
      );
      if (later !== undefined)
        this.#recordError(this.#publishing.unavailable(later, this.#store.url));
      return { txid: this.#pub.txid, timestamp: this.#pub.txTime };
    } finally {
      if (this.#pub.published > published) this.#published(started);
    }
  }

  /** A sync that published, whose upload started at `started` (performance.now()). */
  #published(started: number): void {
    const ms = performance.now() - started;
    const d = this.#stats.syncDuration;
    this.#stats.publishedSyncs++;
    d.count++;
    d.totalMs += ms;
    d.lastMs = ms;
  }

  /** Runs every due compaction and retention now (for tests and tools). */
  compactNow(): Promise<void> {
    return this.#publishLane.run(async () => {
      this.#assertUsable();
      await this.#publishing.publishAll();
      for (const level of [1, 2, 3] as const) await this.#maint.compact(level);
      if (this.#o.retention > 0) await this.#maint.enforceRetention();
    });
  }

  /** Current counters. */
  stats(): ReplicatorStats {
    return collectStats({
      writerId: this.#writerId,
      capture: this.#capture,
      pub: this.#pub,
      health: this.#health,
      maint: this.#maint,
      store: this.#store,
      counters: this.#stats,
      pending: this.#publishing.pendingTransactions(),
    });
  }

  /**
   * The replicator's figures as Prometheus text (`pagecast_txid`,
   * `pagecast_health{state}`, syncs, uploads, checkpoints, outage...),
   * labelled with `db` and the replica's `url`; see the README's metrics
   * table. `metricsText([...])` combines several sources.
   */
  metrics(options: MetricsOptions = {}): string {
    return metricsText(this, options);
  }

  /** @internal Adds this replicator's samples (see {@link metricsText}). */
  [WRITE_METRICS](out: MetricsText, labels: MetricLabels): void {
    writeReplicatorMetrics(out, this.stats(), { ...labels, db: this.#o.db, url: this.#store.url });
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
          const f = await this.#pub.tryStorage(() => this.#publishing.publishAll());
          if (f !== undefined) throw this.#publishing.unavailable(f, this.#store.url);
          this.#stats.lastSyncAt = Date.now();
          await this.#captureLane.run(() => this.#capture.finalCheckpoint());
        } catch (err) {
          failure = err;
        }
        // The changes are still in the database file: the next start publishes them.
        if (this.#publishing.hasPending()) {
          this.#log.warn("closing with changes not published; the next start publishes them", {
            transactions: this.#publishing.pendingTransactions(),
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
