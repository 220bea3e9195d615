/**
 * The Replicator: Litestream-style continuous replication of a live SQLite
 * database to an object store, as LTX files in Litestream 0.5's layout plus a
 * head object and a writer lease.
 *
 * Each sync reads the WAL's newly committed frames (under a long-running read
 * transaction that pins the WAL) and publishes them as one L0 file and an
 * updated head: exactly two PUTs. Nothing changed: no requests at all.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { closeSync, existsSync, fstatSync, openSync, type Stats, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import {
  decodeLtx,
  decodeLtxHeader,
  LTX_HEADER_SIZE,
  LtxError,
  lockPgno,
  ltxKey,
  readLtxPageIndex,
  storeRangeReader,
} from "../format/index.js";
import {
  fileTime,
  HEAD_OBJECT_MAX_FILES,
  type HeadFile,
  type HeadObject,
  type HeadSkeleton,
  LayoutError,
  listAllLevels,
  planRestore,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
  skeletonKey,
} from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openNodeStore } from "../storage/open-node-store.js";
import {
  PreconditionFailedError,
  StoreAbortedError,
  StoreRequestError,
} from "../storage/store-errors.js";
import { CaptureBuffer } from "./capture-buffer.js";
import {
  type CheckpointPolicy,
  checkpointModeFor,
  type RestartExpectation,
  restartIsContinuous,
  runCheckpoint,
} from "./checkpointer.js";
import { compactionRuns, mergeLtxFiles } from "./compactor.js";
import { dbSizeInPages, readDbPages } from "./database-file.js";
import { HeadWriter } from "./head-writer.js";
import { Lease } from "./lease.js";
import type { ReplicatorLogger } from "./logger.js";
import { silentLogger } from "./logger.js";
import type { UploadableLtx as EncodedLtx } from "./ltx-builder.js";
import { compareStoredLtx, disposeLtx, putLtx } from "./ltx-upload.js";
import { PageChecksums } from "./page-checksums.js";
import { LeaseLostError, ReplicatorError } from "./replicator-error.js";
import { restore } from "./restore.js";
import { selectExpiredFiles } from "./retention.js";
import { type CapturedSegment, captureSegment } from "./segment-capture.js";
import { type BuiltSkeleton, SkeletonCollector } from "./skeleton.js";
import { buildSnapshot } from "./snapshotter.js";
import { SqliteConnections } from "./sqlite-connections.js";
import type { ReplicaPosition, ReplicatorStats } from "./stats.js";
import {
  initialCursor,
  readCommittedFrames,
  readFramePage,
  readFully,
  readWalHeader,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  type WalCursor,
  type WalHeader,
  type WalSegment,
} from "./wal-reader.js";

/** Options of {@link Replicator.start}. */
export interface ReplicatorOptions {
  /** Path of the SQLite database file. */
  db: string;
  /** Replica location (`s3://bucket/prefix?...`, `file:///abs/dir`, `memory://name`). */
  url?: string;
  /** An already open store (takes precedence over `url`; not closed by `close()`). */
  store?: ObjectStore;
  /** Background sync interval in ms (default 1000). 0 disables background syncs: call `sync()`. */
  syncInterval?: number;
  /**
   * busy_timeout of the replicator's own connections, ms (default 100). Kept
   * short because a synchronous driver waits on the event loop's thread: a
   * busy database makes the replicator skip a checkpoint and retry at the next
   * sync rather than stall the application.
   */
  busyTimeout?: number;
  /** PASSIVE checkpoint threshold in WAL pages (default 1000). */
  checkpointPages?: number;
  /** TRUNCATE checkpoint threshold in WAL pages (default 10000). */
  truncatePages?: number;
  /** Compaction intervals in ms for L1, L2, L3 (defaults 30 s, 5 min, 1 h), or `false` to disable. */
  compaction?: { l1?: number; l2?: number; l3?: number } | false;
  /** Interval between level-9 snapshots, ms (default 24 h). */
  snapshotInterval?: number;
  /** How long files are kept, ms (default 24 h). 0 disables deletion. */
  retention?: number;
  /** Minimum time a file stays after it left the head's plan, ms (default 5 min). */
  retentionGrace?: number;
  /** Lease lifetime, ms (default 5 min). */
  leaseTtl?: number;
  /** Restore the database from the replica first when the file does not exist. */
  autoRestore?: boolean;
  /** Track the database checksum (8 bytes of memory per page) and publish it in the head (default true). */
  trackChecksums?: boolean;
  /** Budget for keeping uploaded files in memory as compaction inputs, bytes (default 64 MiB). */
  compactionCacheBytes?: number;
  /**
   * While uploads fail, committed changes are captured from the WAL into
   * memory (the newest image of each changed page) so that checkpoints can
   * keep the WAL small; they are published as one L0 file when storage
   * returns. Past this many bytes of page images the buffer is dropped and a
   * snapshot is published on recovery instead (default 64 MiB). The one
   * upload already under way (at most one file) comes on top.
   */
  outageBufferBytes?: number;
  /**
   * Longest wait between background upload attempts while storage fails, ms
   * (default 30 000). Waits double from the sync interval up to this; WAL
   * capture and checkpoints go on at every sync interval regardless, and an
   * explicit `sync()` always tries at once.
   */
  outageRetryMaxDelay?: number;
  logger?: ReplicatorLogger;
  /** Identifier of this writer (default: random). */
  writerId?: string;
}

interface KnownFile extends ReplicaFile {
  indexOffset?: number;
  indexSize?: number;
  /** Page 1's frame in the file; `null`: the file has no page 1; absent: unknown. */
  page1?: { offset: number; size: number } | null;
}

interface Inflight {
  key: string;
  enc: EncodedLtx;
  commit: () => void;
  /** SQLite transactions the file publishes (for stats). */
  transactions?: number;
  /** A snapshot's B-tree skeleton, published (best effort) right after it. */
  skeleton?: BuiltSkeleton;
}

/** Failures that mean "storage is unavailable right now" (as opposed to a bug or a lost lease). */
function isStorageFailure(err: unknown): boolean {
  return err instanceof StoreRequestError || err instanceof StoreAbortedError;
}

type Level = 1 | 2 | 3;
const COMPACTION_LEVELS: Level[] = [1, 2, 3];

function randomId(): string {
  return randomBytes(9).toString("base64url");
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Events: `sync` (position), `snapshot` ({txid, reason}), `compaction` ({level, minTXID, maxTXID}), `checkpoint` ({mode}), `error` (Error; only when a listener exists). */
export class Replicator extends EventEmitter {
  readonly #dbPath: string;
  readonly #walPath: string;
  readonly #store: ObjectStore;
  readonly #ownsStore: boolean;
  readonly #lease: Lease;
  readonly #head: HeadWriter;
  readonly #log: ReplicatorLogger;
  readonly #writerId: string;
  readonly #opts: Required<
    Pick<
      ReplicatorOptions,
      | "syncInterval"
      | "busyTimeout"
      | "snapshotInterval"
      | "retention"
      | "retentionGrace"
      | "trackChecksums"
      | "compactionCacheBytes"
      | "outageBufferBytes"
      | "outageRetryMaxDelay"
    >
  >;
  readonly #policy: CheckpointPolicy;
  readonly #compactionIntervals: Record<Level, number> | undefined;
  #checksums = new PageChecksums();
  readonly #files = new Map<string, KnownFile>();
  readonly #cache = new Map<string, Uint8Array>();
  #cacheBytes = 0;
  readonly #leftHeadAt = new Map<string, number>();
  readonly #startedAt = Date.now();

  #conns: SqliteConnections;
  #dbId: { dev: number; ino: number };
  #pageSize: number;
  #generation = randomId();
  #txid = 0;
  #txTime = 0;
  /** Database size in pages at `#txid` (published). */
  #commit = 0;
  /**
   * The capture position: where the next WAL scan starts (`#cursor`, the WAL
   * generation's page frames, the database size). It runs ahead of the
   * published position by whatever `#buffer` and `#inflight` hold.
   */
  #cursor: WalCursor | undefined;
  #scanCommit = 0;
  /** Captured changes not yet frozen into an upload. */
  #buffer = new CaptureBuffer();
  /** L0 files and snapshots published: a sync during which this moved counts as published. */
  #published = 0;
  /** Events of published uploads, emitted once the head names them. */
  readonly #events: [string, unknown][] = [];
  /** Since when uploads fail (outage mode), or undefined while storage works. */
  #failingSince: number | undefined;
  #failures = 0;
  /** Background syncs make no upload attempt before this time (backoff during an outage). */
  #retryAt = 0;
  /** The last head write failed in a way that may have reached storage. */
  #headUncertain = false;
  #walPages = new Map<number, number>();
  #page1: Uint8Array | undefined;
  /** The B-tree skeleton published for the newest snapshot, named by the head. */
  #skeleton: HeadSkeleton | undefined;
  #expect: RestartExpectation | undefined;
  #snapshotReason: string | undefined = "no replicated position (start)";
  #lastSnapshotAt = 0;
  #inflight: Inflight | undefined;
  #headDirty = false;
  #nextCompaction: Record<Level, number> = { 1: 0, 2: 0, 3: 0 };
  #lastRetention = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #tickQueued = false;
  #closed = false;
  #fatal: unknown;
  #walBytes = 0;
  #lastCheckpoint: { salt1: number; frames: number } | undefined;
  #stats = {
    syncs: 0,
    publishedSyncs: 0,
    snapshots: 0,
    continuityBreaks: {} as Record<string, number>,
    compactions: { 1: 0, 2: 0, 3: 0 } as Record<number, number>,
    checkpoints: { passive: 0, truncate: 0, busy: 0 },
    retentionDeletes: 0,
    bytesUploaded: 0,
    bufferOverflows: 0,
    errors: 0,
    lastError: null as string | null,
    lastSyncAt: null as number | null,
  };

  private constructor(
    options: ReplicatorOptions,
    store: ObjectStore,
    ownsStore: boolean,
    lease: Lease,
    head: HeadWriter,
    conns: SqliteConnections,
    dbId: { dev: number; ino: number },
    writerId: string,
  ) {
    super();
    this.#dbPath = options.db;
    this.#walPath = `${options.db}-wal`;
    this.#store = store;
    this.#ownsStore = ownsStore;
    this.#lease = lease;
    this.#head = head;
    this.#conns = conns;
    this.#dbId = dbId;
    this.#pageSize = conns.pageSize;
    this.#writerId = writerId;
    this.#log = options.logger ?? silentLogger;
    this.#opts = {
      syncInterval: options.syncInterval ?? 1000,
      busyTimeout: options.busyTimeout ?? 100,
      snapshotInterval: options.snapshotInterval ?? 24 * 3_600_000,
      retention: options.retention ?? 24 * 3_600_000,
      retentionGrace: options.retentionGrace ?? 5 * 60_000,
      trackChecksums: options.trackChecksums ?? true,
      compactionCacheBytes: options.compactionCacheBytes ?? 64 * 1024 * 1024,
      outageBufferBytes: options.outageBufferBytes ?? 64 * 1024 * 1024,
      outageRetryMaxDelay: options.outageRetryMaxDelay ?? 30_000,
    };

    this.#policy = {
      passivePages: options.checkpointPages ?? 1000,
      truncatePages: options.truncatePages ?? 10_000,
    };
    this.#compactionIntervals =
      options.compaction === false
        ? undefined
        : {
            1: options.compaction?.l1 ?? 30_000,
            2: options.compaction?.l2 ?? 5 * 60_000,
            3: options.compaction?.l3 ?? 3_600_000,
          };
    const now = Date.now();
    if (this.#compactionIntervals) {
      for (const l of COMPACTION_LEVELS)
        this.#nextCompaction[l] = now + this.#compactionIntervals[l];
    }
  }

  /**
   * Starts replicating `options.db`: takes the lease (failing with
   * `LeaseHeldError` naming the holder when another replicator is live),
   * publishes a snapshot, then syncs every `syncInterval` ms.
   */
  static async start(options: ReplicatorOptions): Promise<Replicator> {
    validateOptions(options);
    const ownsStore = !options.store;
    const store = options.store ?? (await openNodeStore(options.url!));
    const log = options.logger ?? silentLogger;
    let lease: Lease | undefined;
    let conns: SqliteConnections | undefined;
    try {
      if (!existsSync(options.db)) {
        if (!options.autoRestore) {
          throw new ReplicatorError("DB_MISSING", `database ${options.db} does not exist`);
        }
        try {
          const r = await restore(store, options.db, { logger: log });
          log.info("database restored from replica", { txid: r.txid, path: options.db });
        } catch (err) {
          if (!(err instanceof LayoutError && err.code === "REPLICA_EMPTY")) throw err;
          throw new ReplicatorError(
            "DB_MISSING",
            `database ${options.db} does not exist and the replica ${store.url} is empty`,
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
      const listed = await listAllLevels(store);
      conns = SqliteConnections.open(options.db, options.busyTimeout ?? 100);
      const st = await stat(options.db);
      const r = new Replicator(
        options,
        store,
        ownsStore,
        lease,
        head,
        conns,
        { dev: st.dev, ino: st.ino },
        writerId,
      );
      r.#adoptListing(listed, existingHead);
      const resumedAt = await r.#tryResume(existingHead, listed);
      if (resumedAt !== undefined) {
        // Publish what was committed while nobody replicated, before the bump
        // write below can restart the WAL.
        await r.#run(() => r.#syncWal({ pin: false }));
        r.#repinAfterResume(resumedAt);
      } else {
        r.#pinSafely();
      }
      await r.sync();
      r.#startTimer();
      log.info("replicator started", {
        db: options.db,
        replica: store.url,
        txid: r.#txid,
        writer: writerId,
      });
      return r;
    } catch (err) {
      conns?.close();
      await lease?.release().catch(() => {});
      if (ownsStore) await store.close().catch(() => {});
      throw err;
    }
  }

  #adoptListing(listed: ReplicaFile[], head: HeadObject | undefined): void {
    const headInfo = new Map<string, HeadFile>((head?.files ?? []).map((f) => [f.key, f]));
    for (const f of listed) {
      const h = headInfo.get(f.key);
      const known: KnownFile = { ...f };
      if (h && h.size === f.size) {
        known.indexOffset = h.indexOffset;
        known.indexSize = h.indexSize;
        known.timestamp = h.timestamp;
      }
      this.#files.set(f.key, known);
      this.#txid = Math.max(this.#txid, f.maxTXID);
    }
    this.#txid = Math.max(this.#txid, head?.txid ?? 0);
  }

  /**
   * Continues from the replica's head without a snapshot when the local
   * database provably is in the head's state: the WAL still holds the
   * generation the last published file was read from, its checksum chain
   * reaches exactly that file's end, and the database checksum computed from
   * the WAL and the database file equals the head's. Returns the
   * `data_version` seen before checking, or undefined to snapshot instead.
   */
  async #tryResume(
    head: HeadObject | undefined,
    listed: ReplicaFile[],
  ): Promise<number | undefined> {
    if (!this.#opts.trackChecksums || !head || head.postApplyChecksum === null) return undefined;
    if (head.pageSize !== this.#pageSize) return undefined;
    // Files newer than the head (an upload whose head write never happened,
    // e.g. a crash in between) are visible to LIST-based readers: start after them.
    if (head.txid !== this.#txid) return undefined;
    const candidates = listed.filter(
      (f) => f.maxTXID === head.txid && (f.level === 0 || f.level === SNAPSHOT_LEVEL),
    );
    const last = candidates.find((f) => f.level === 0) ?? candidates[0];
    if (!last) return undefined;
    const before = this.#conns.dataVersion();
    try {
      const res = await this.#store.get(last.key, {
        range: { offset: 0, length: LTX_HEADER_SIZE },
      });
      if (res.notModified) return undefined;
      const h = decodeLtxHeader(res.body);
      if (h.walSalt1 === 0 && h.walSalt2 === 0) return undefined;
      const end = h.walOffset + h.walSize;
      return this.#withFiles((db, wal) => {
        if (wal === undefined) return undefined;
        const header = readWalHeader(wal);
        if (!header || header.salt1 !== h.walSalt1 || header.salt2 !== h.walSalt2) return undefined;
        if (header.pageSize !== this.#pageSize) return undefined;
        const seg = readCommittedFrames(wal, header, initialCursor(header), { stopAt: end });
        if (seg.end.offset !== end) return undefined;
        const sums = new PageChecksums();
        sums.reset(this.#pageSize);
        const lock = lockPgno(this.#pageSize);
        let page1: Uint8Array | undefined;
        for (let first = 1; first <= head.commit; first += 256) {
          const count = Math.min(256, head.commit - first + 1);
          const batch = readDbPages(db, this.#pageSize, first, count);
          for (let i = 0; i < count; i++) {
            const pgno = first + i;
            if (pgno === lock) continue;
            const frame = seg.pages.get(pgno);
            const page =
              frame !== undefined
                ? readFramePage(wal, frame, pgno, header, this.#pageSize)
                : batch.subarray(i * this.#pageSize, (i + 1) * this.#pageSize);
            if (pgno === 1) page1 = page.slice();
            sums.set(pgno, page);
          }
        }
        if (sums.value !== head.postApplyChecksum) return undefined;
        this.#checksums = sums;
        this.#txid = head.txid;
        this.#txTime = head.timestamp;
        this.#commit = head.commit;
        this.#scanCommit = head.commit;
        this.#cursor = seg.end;
        this.#walPages = seg.pages;
        this.#page1 = page1;
        this.#skeleton = head.skeleton;
        this.#generation = head.generation;
        this.#snapshotReason = undefined;
        this.#expect = undefined;
        const snapshots = [...this.#files.values()].filter((f) => f.level === SNAPSHOT_LEVEL);
        this.#lastSnapshotAt = Math.max(0, ...snapshots.map((f) => fileTime(f)));
        this.#log.info("resuming from the replica's head without a snapshot", { txid: head.txid });
        return before;
      });
    } catch (err) {
      // Anything unexpected: the safe path is a snapshot.
      this.#log.warn("cannot resume from the head; publishing a snapshot", {
        error: errorText(err),
      });
      return undefined;
    }
  }

  /** Pins after a resume; a WAL restart by the bump is continuous only if nobody committed meanwhile. */
  #repinAfterResume(before: number): void {
    // Already pinned (a snapshot was published instead): nothing to re-check.
    if (this.#conns.pinned) return;
    const oldSalt1 = this.#cursor?.salt1 ?? null;
    const locked = this.#conns.lock();
    const after = this.#conns.dataVersion();
    if (locked) this.#conns.bumpAndUnlock();
    this.#conns.takePin();
    this.#expect = { oldSalt1, clean: locked && after === before };
  }

  #startTimer(): void {
    if (this.#opts.syncInterval <= 0) return;
    this.#timer = setInterval(() => {
      // A slow sync must not pile up ticks behind it.
      if (this.#closed || this.#fatal || this.#tickQueued) return;
      this.#tickQueued = true;
      this.#run(() => this.#tick())
        .catch(() => {})
        .finally(() => {
          this.#tickQueued = false;
        });
    }, this.#opts.syncInterval);
    // The timer alone does not keep a process alive; close() does the final sync.
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      await this.#syncLocked({ background: true });
      // Compaction and retention wait until storage works again.
      if (this.#failingSince === undefined) await this.#maintain();
    } catch (err) {
      this.#recordError(err);
    }
  }

  #recordError(err: unknown): void {
    this.#stats.errors++;
    this.#stats.lastError = errorText(err);
    if (err instanceof LeaseLostError) this.#fatal = err;
    this.#log.error("replication error", { error: errorText(err) });
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  /** Serializes every operation touching the WAL, the store or the connections. */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  #assertUsable(): void {
    if (this.#fatal) {
      throw new ReplicatorError(
        "REPLICATOR_CLOSED",
        `replicator stopped: ${errorText(this.#fatal)}`,
        {
          cause: this.#fatal,
        },
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
  sync(): Promise<ReplicaPosition> {
    return this.#run(async () => {
      try {
        return await this.#syncLocked();
      } catch (err) {
        this.#recordError(err);
        throw err;
      }
    });
  }

  /**
   * One sync: capture what was committed, upload it, checkpoint when due. In
   * the background during an outage the upload attempt waits for its backoff,
   * but capture and checkpoints go on, so the WAL stays bounded.
   */
  async #syncLocked(options: { background?: boolean } = {}): Promise<ReplicaPosition> {
    this.#assertUsable();
    this.#stats.syncs++;
    const published = this.#published;
    try {
      // Everything committed before this call is captured now...
      this.#absorb(this.#scan());
      // ...and durable once this flush succeeds.
      const attempt = !options.background || Date.now() >= this.#retryAt;
      const failure = attempt ? await this.#tryStorage(() => this.#flush()) : undefined;
      const flushed = attempt && failure === undefined;
      let later: unknown;
      if (
        flushed &&
        this.#txid > 0 &&
        Date.now() - this.#lastSnapshotAt >= this.#opts.snapshotInterval
      ) {
        later = await this.#tryStorage(() => this.#periodicSnapshot());
      }
      await this.#checkpointIfDue();
      // Publish what the checkpoint sealed, unless storage just failed.
      if (flushed && later === undefined && this.#hasPending()) {
        later = await this.#tryStorage(() => this.#flush());
      }
      if (failure !== undefined) throw this.#unavailable(failure);
      // This call's transactions are durable; a failure after that is only recorded.
      if (later !== undefined) this.#recordError(this.#unavailable(later));
      if (flushed) this.#stats.lastSyncAt = Date.now();
      return { txid: this.#txid, timestamp: this.#txTime };
    } finally {
      if (this.#published > published) this.#stats.publishedSyncs++;
    }
  }

  /** Whether captured changes, an upload, a head write or a snapshot wait for storage. */
  #hasPending(): boolean {
    return (
      this.#inflight !== undefined ||
      this.#headDirty ||
      !this.#buffer.empty ||
      this.#snapshotReason !== undefined
    );
  }

  /** Runs uploads; returns the storage failure they met (entering outage mode), rethrows anything else. */
  async #tryStorage(fn: () => Promise<void>): Promise<unknown> {
    try {
      await fn();
    } catch (err) {
      if (!isStorageFailure(err)) throw err;
      this.#noteFailure(err);
      return err;
    }
    if (this.#failingSince !== undefined) {
      this.#log.info("storage available again; caught up", {
        txid: this.#txid,
        outageMs: Date.now() - this.#failingSince,
      });
      this.#failingSince = undefined;
    }
    this.#failures = 0;
    this.#retryAt = 0;
    return undefined;
  }

  /** Outage mode: background uploads back off exponentially (with jitter) up to `outageRetryMaxDelay`. */
  #noteFailure(err: unknown): void {
    const now = Date.now();
    if (this.#failingSince === undefined) {
      this.#failingSince = now;
      this.#log.warn("storage unavailable; committed changes are kept until it returns", {
        error: errorText(err),
      });
    }
    this.#failures++;
    const cap = Math.min(
      this.#opts.outageRetryMaxDelay,
      Math.max(1, this.#opts.syncInterval) * 2 ** Math.min(this.#failures - 1, 20),
    );
    this.#retryAt = now + cap / 2 + (Math.random() * cap) / 2;
  }

  /** The error `sync()` rejects with while storage is unavailable. */
  #unavailable(cause: unknown): ReplicatorError {
    const waiting =
      this.#snapshotReason !== undefined
        ? "a snapshot is published"
        : `${this.#pendingTransactions()} committed transaction(s) kept in memory are published`;
    return new ReplicatorError(
      "STORAGE_UNAVAILABLE",
      `storage ${this.#store.url} is unavailable (${errorText(cause)}); ${waiting} when it returns`,
      { cause },
    );
  }

  #pendingTransactions(): number {
    return this.#buffer.transactions + (this.#inflight?.transactions ?? 0);
  }

  /** PASSIVE or TRUNCATE checkpoint when the WAL passed a threshold. */
  async #checkpointIfDue(): Promise<void> {
    const frames = this.#cursor
      ? Math.max(
          0,
          (this.#cursor.offset - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + this.#pageSize),
        )
      : 0;
    const mode = checkpointModeFor(frames, this.#policy);
    // After a checkpoint that could not restart the WAL (readers elsewhere), do
    // not retry on every sync: each attempt costs a lock and a bump write.
    const last = this.#lastCheckpoint;
    const retry =
      !last ||
      last.salt1 !== this.#cursor?.salt1 ||
      frames >= last.frames + Math.max(1, Math.floor(this.#policy.passivePages / 2));
    if (mode && retry) {
      this.#lastCheckpoint = { salt1: this.#cursor?.salt1 ?? 0, frames };
      await this.#checkpoint(mode);
    }
  }

  /**
   * Uploads what waits, oldest first: an upload that failed earlier (the
   * same key and bytes: an attempt whose answer was lost may have stored it,
   * and its TXID must never name other content), the head, then a due
   * snapshot or the buffer as the next L0 file.
   */
  async #flush(): Promise<void> {
    if (this.#inflight) await this.#upload(this.#inflight);
    if (this.#headDirty) await this.#publishHead();
    if (this.#snapshotReason !== undefined) {
      // A snapshot reads the database file: only consistent under the pin.
      this.#pinSafely();
      await this.#snapshot(this.#snapshotReason);
    } else if (!this.#buffer.empty) {
      await this.#publishBuffer();
    }
  }

  /** Takes a scan into the capture position: new frames into the buffer, or a snapshot due. */
  #absorb(scan: { reason?: string; captured?: CapturedSegment }): void {
    if (scan.reason !== undefined) {
      // The snapshot reads the whole database: it covers whatever the buffer holds.
      this.#snapshotReason ??= scan.reason;
      this.#buffer = new CaptureBuffer();
      return;
    }
    const captured = scan.captured;
    if (!captured) return;
    this.#buffer.add(captured, Date.now());
    this.#cursor = captured.segment.end;
    this.#scanCommit = captured.segment.commit;
    const page1 = captured.pages.get(1);
    if (page1) this.#page1 = page1;
    if (this.#failingSince !== undefined && this.#buffer.bytes > this.#opts.outageBufferBytes) {
      this.#stats.bufferOverflows++;
      this.#log.warn("storage unavailable too long: buffered changes dropped, a snapshot follows", {
        bytes: this.#buffer.bytes,
        transactions: this.#buffer.transactions,
      });
      this.#buffer = new CaptureBuffer();
      this.#snapshotReason = "storage unavailable too long";
    }
  }

  /** Opens the database and (when present) its WAL for reading, runs `fn`, closes both. */
  #withFiles<T>(fn: (db: number, wal: number | undefined) => T): T {
    const db = openSync(this.#dbPath, "r");
    let wal: number | undefined;
    try {
      try {
        wal = openSync(this.#walPath, "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      return fn(db, wal);
    } finally {
      closeSync(db);
      if (wal !== undefined) closeSync(wal);
    }
  }

  #pinSafely(): void {
    if (this.#conns.pinned) return;
    if (this.#conns.lock()) this.#conns.bumpAndUnlock();
    this.#conns.takePin();
  }

  #checkIdentity(): string | undefined {
    let st: Stats;
    try {
      st = statSync(this.#dbPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new ReplicatorError("DB_MISSING", `database ${this.#dbPath} disappeared`);
      }
      throw err;
    }
    if (st.ino === this.#dbId.ino && st.dev === this.#dbId.dev) return undefined;
    // Our connections still see the old file: reopen them on the new one.
    this.#conns.close();
    this.#conns = SqliteConnections.open(this.#dbPath, this.#opts.busyTimeout);
    this.#dbId = { dev: st.dev, ino: st.ino };
    this.#pageSize = this.#conns.pageSize;
    this.#pinSafely();
    return "database file replaced";
  }

  /**
   * Looks at the WAL (synchronously, so it can run under the write lock):
   * either the new committed frames with the page images their L0 needs, a
   * reason to publish a snapshot instead, or nothing new.
   */
  #scan(options: { pin?: boolean } = {}): { reason?: string; captured?: CapturedSegment } {
    const replaced = this.#checkIdentity();
    if (options.pin !== false) this.#pinSafely();
    return this.#withFiles((db, wal) => {
      const header = wal !== undefined ? readWalHeader(wal) : undefined;
      this.#walBytes = wal !== undefined ? fstatSync(wal).size : 0;
      let reason = replaced ?? this.#snapshotReason;
      if (!reason && header && header.pageSize !== this.#pageSize) reason = "page size changed";
      if (reason) {
        // Nothing to capture (the snapshot reads the database), but follow
        // the WAL so that the checkpoint thresholds see its real length.
        this.#followWal(wal, header);
        return { reason };
      }
      let segment: WalSegment | undefined;
      if (!reason) {
        const cursor = this.#cursor!;
        if (!header || wal === undefined) {
          if (cursor.offset !== WAL_HEADER_SIZE && !this.#expect?.clean) {
            reason = "WAL truncated by another connection";
          }
        } else if (header.salt1 === cursor.salt1 && header.salt2 === cursor.salt2) {
          if (this.#walBytes < cursor.offset) reason = "WAL shrank below the replicated position";
          else segment = readCommittedFrames(wal, header, cursor);
          this.#expect = undefined;
        } else if (restartIsContinuous(this.#expect)) {
          this.#cursor = initialCursor(header);
          this.#walPages = new Map();
          this.#expect = undefined;
          segment = readCommittedFrames(wal, header, this.#cursor);
        } else {
          reason = "WAL restarted by another connection";
          this.#log.debug("unexpected WAL restart", {
            oldSalt1: cursor.salt1,
            newSalt1: header.salt1,
            expected: this.#expect ? "after our checkpoint" : "no",
          });
        }
      }
      if (!reason) reason = this.#checkPage1(db, segment);
      if (reason) return { reason };
      if (!segment || segment.transactions === 0 || wal === undefined) return {};
      for (const [p, o] of segment.pages) this.#walPages.set(p, o);
      return {
        captured: captureSegment({
          db,
          wal,
          segment,
          generationPages: this.#walPages,
          pageSize: this.#pageSize,
          prevCommit: this.#scanCommit,
        }),
      };
    });
  }

  /** With a snapshot due: moves the cursor over the committed frames of the WAL as it is now. */
  #followWal(wal: number | undefined, header: WalHeader | undefined): void {
    if (wal === undefined || !header || header.pageSize !== this.#pageSize) {
      this.#cursor = { salt1: 0, salt2: 0, offset: WAL_HEADER_SIZE, checksum1: 0, checksum2: 0 };
      return;
    }
    const c = this.#cursor;
    const from =
      c && c.salt1 === header.salt1 && c.salt2 === header.salt2 && this.#walBytes >= c.offset
        ? c
        : initialCursor(header);
    this.#cursor = readCommittedFrames(wal, header, from).end;
  }

  /** Reads new committed frames and publishes them (or a snapshot when continuity is lost). */
  async #syncWal(options: { pin?: boolean } = {}): Promise<void> {
    this.#absorb(this.#scan(options));
    await this.#flush();
  }

  /**
   * A database file rewritten in place (restored from a backup, copied over)
   * shows as a page 1 that differs from the newest version we published while
   * the WAL holds no newer one.
   */
  #checkPage1(db: number, segment: WalSegment | undefined): string | undefined {
    if (!this.#page1 || this.#walPages.has(1) || segment?.pages.has(1)) return undefined;
    const buf = new Uint8Array(100);
    readFully(db, buf, 0);
    return sameBytes(buf, this.#page1.subarray(0, 100))
      ? undefined
      : "database file changed outside SQLite";
  }

  /** Freezes the buffer into the next L0 file (one TXID, however many captures it merged) and publishes it. */
  async #publishBuffer(): Promise<void> {
    const buffer = this.#buffer;
    this.#buffer = new CaptureBuffer();
    const txid = this.#txid + 1;
    const timestamp = buffer.capturedAt;
    const enc = buffer.encode({
      pageSize: this.#pageSize,
      txid,
      ...(this.#opts.trackChecksums ? { checksums: this.#checksums } : {}),
    });
    await this.#upload({
      key: ltxKey(0, txid, txid),
      enc,
      transactions: buffer.transactions,
      commit: () => {
        this.#txid = txid;
        this.#txTime = timestamp;
        this.#commit = buffer.commit;
        this.#published++;
        this.#queueEvent("sync", { txid, timestamp });
      },
    });
    await this.#publishHead();
  }

  /** Events of published uploads wait for the head that names them. */
  #queueEvent(name: string, payload: unknown): void {
    this.#events.push([name, payload]);
  }

  /**
   * Create-only upload; the published state advances only once the object is
   * known to be stored. A failed upload stays in `#inflight` and is retried
   * as is before anything else (see `#flush`).
   */
  async #upload(item: Inflight): Promise<void> {
    this.#inflight = item;
    // Fencing: a writer whose lease was taken over (say, during an outage) learns it here, before writing.
    await this.#lease.ensure();
    try {
      await putLtx(this.#store, item.key, item.enc, { ifNoneMatch: "*" });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // The key exists: ours only if an earlier attempt of this very upload landed.
      const stored = await compareStoredLtx(this.#store, item.key, item.enc);
      if (stored !== "same") {
        if (stored === "damaged") {
          // Damaged on the way back (every LTX file carries its checksum): look again later.
          throw new StoreRequestError(
            `reading back ${item.key} from ${this.#store.url} returned a damaged body`,
            { retryable: true, cause: err },
          );
        }
        const lost = new LeaseLostError(
          `${item.key} on ${this.#store.url} was written by another writer; this replicator stops`,
          { cause: err },
        );
        this.#fatal = lost;
        throw lost;
      }
    }
    this.#inflight = undefined;
    disposeLtx(item.enc);
    this.#stats.bytesUploaded += item.enc.size;
    const h = item.enc.header;
    const level = Number.parseInt(item.key.slice(0, 4), 16);
    this.#files.set(item.key, {
      level,
      minTXID: h.minTXID,
      maxTXID: h.maxTXID,
      key: item.key,
      size: item.enc.size,
      lastModified: new Date(),
      timestamp: h.timestamp,
      indexOffset: item.enc.indexOffset,
      indexSize: item.enc.indexSize,
      page1: item.enc.page1 ?? null,
    });
    // Levels 0-2 are the inputs of the next compaction: keep them instead of downloading them again.
    if (level < 3 && this.#compactionIntervals && item.enc.bytes)
      this.#cachePut(item.key, item.enc.bytes);
    item.commit();
    this.#headDirty = true;
    await this.#uploadSkeleton(item.skeleton);
  }

  #cachePut(key: string, bytes: Uint8Array): void {
    if (bytes.length > this.#opts.compactionCacheBytes) return;
    this.#cache.set(key, bytes);
    this.#cacheBytes += bytes.length;
    for (const [k, v] of this.#cache) {
      if (this.#cacheBytes <= this.#opts.compactionCacheBytes) break;
      this.#cache.delete(k);
      this.#cacheBytes -= v.length;
    }
  }

  #cacheTake(key: string): Uint8Array | undefined {
    const v = this.#cache.get(key);
    if (v) {
      this.#cache.delete(key);
      this.#cacheBytes -= v.length;
    }
    return v;
  }

  /** Publishes a full snapshot at the next TXID after a continuity break (or at start). */
  async #snapshot(reason: string): Promise<void> {
    this.#log.info("publishing snapshot", { reason, txid: this.#txid + 1 });
    const txid = this.#txid + 1;
    const taken = await this.#readSnapshot(txid);
    this.#stats.continuityBreaks[reason] = (this.#stats.continuityBreaks[reason] ?? 0) + 1;
    // The capture position moves to the snapshot now: later captures build on
    // it even while its upload waits for storage.
    this.#cursor = taken.cursor;
    this.#walPages = taken.walPages;
    this.#expect = taken.expect;
    this.#page1 = taken.page1;
    this.#scanCommit = taken.enc.header.commit;
    this.#snapshotReason = undefined;
    const timestamp = taken.enc.header.timestamp;
    await this.#upload({
      key: ltxKey(SNAPSHOT_LEVEL, 1, txid),
      enc: taken.enc,
      ...(taken.skeleton ? { skeleton: taken.skeleton } : {}),
      commit: () => {
        this.#txid = txid;
        this.#txTime = timestamp;
        this.#commit = taken.enc.header.commit;
        this.#generation = randomId();
        this.#lastSnapshotAt = Date.now();
        this.#stats.snapshots++;
        this.#published++;
        this.#queueEvent("snapshot", { txid, reason });
        this.#queueEvent("sync", { txid, timestamp });
      },
    });
    await this.#publishHead();
  }

  /**
   * Reads a consistent full image: every committed frame of the current WAL
   * generation over the database file. Retried if the WAL was restarted
   * while reading (possible only when the pin was not effective).
   */
  async #readSnapshot(txid: number): Promise<{
    enc: EncodedLtx;
    cursor: WalCursor;
    walPages: Map<number, number>;
    expect: RestartExpectation | undefined;
    page1: Uint8Array | undefined;
    skeleton: BuiltSkeleton | undefined;
  }> {
    for (let attempt = 0; ; attempt++) {
      const db = openSync(this.#dbPath, "r");
      let wal: number | undefined;
      try {
        try {
          wal = openSync(this.#walPath, "r");
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        const header = wal !== undefined ? readWalHeader(wal) : undefined;
        let segment: WalSegment | undefined;
        if (header && wal !== undefined)
          segment = readCommittedFrames(wal, header, initialCursor(header));
        const commit =
          segment && segment.commit > 0 ? segment.commit : dbSizeInPages(db, this.#pageSize);
        const cursor: WalCursor = segment
          ? segment.end
          : { salt1: 0, salt2: 0, offset: WAL_HEADER_SIZE, checksum1: 0, checksum2: 0 };
        const walPages = segment?.pages ?? new Map<number, number>();
        const checksums = this.#opts.trackChecksums ? this.#checksums : undefined;
        const timestamp = Date.now();
        const collector = new SkeletonCollector({
          pageSize: this.#pageSize,
          commit,
          txid,
          timestamp,
        });
        const enc = await buildSnapshot({
          db,
          wal,
          walPages,
          salts: cursor,
          pageSize: this.#pageSize,
          commit,
          txid,
          timestamp,
          walOffset: WAL_HEADER_SIZE,
          walSize: cursor.offset - WAL_HEADER_SIZE,
          ...(checksums ? { checksums } : {}),
          onPage: (pgno, page) => collector.add(pgno, page),
          spoolDir: dirname(this.#dbPath),
        });
        const after = wal !== undefined ? readWalHeader(wal) : undefined;
        if (!sameGeneration(header, after)) {
          if (attempt >= 3) {
            throw new ReplicatorError(
              "WAL_CHANGED",
              "the WAL kept restarting while a snapshot was read",
            );
          }
          disposeLtx(enc);
          continue;
        }
        const p1 = walPages.get(1);
        const page1 =
          p1 !== undefined && wal !== undefined
            ? readFramePage(wal, p1, 1, cursor, this.#pageSize)
            : readDbPages(db, this.#pageSize, 1, 1);
        // Without a WAL there is no generation to continue yet: accept the first one that appears.
        const expect: RestartExpectation | undefined = header
          ? undefined
          : { oldSalt1: null, clean: true };
        return { enc, cursor, walPages, expect, page1, skeleton: collector.finish() };
      } finally {
        closeSync(db);
        if (wal !== undefined) closeSync(wal);
      }
    }
  }

  /** A snapshot of the current TXID (no new TXID): the 24-hour snapshot. */
  async #periodicSnapshot(): Promise<void> {
    // Only at a position where everything captured is published (it snapshots the current TXID).
    if (this.#hasPending()) return;
    const key = ltxKey(SNAPSHOT_LEVEL, 1, this.#txid);
    if (this.#files.has(key) || !this.#cursor) {
      this.#lastSnapshotAt = Date.now();
      return;
    }
    const cursor = this.#cursor;
    const db = openSync(this.#dbPath, "r");
    let wal: number | undefined;
    let enc: EncodedLtx;
    const collector = new SkeletonCollector({
      pageSize: this.#pageSize,
      commit: this.#commit,
      txid: this.#txid,
      timestamp: this.#txTime,
    });
    try {
      try {
        wal = openSync(this.#walPath, "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      enc = await buildSnapshot({
        db,
        wal,
        walPages: this.#walPages,
        salts: cursor,
        pageSize: this.#pageSize,
        commit: this.#commit,
        txid: this.#txid,
        timestamp: this.#txTime,
        walOffset: WAL_HEADER_SIZE,
        walSize: cursor.offset - WAL_HEADER_SIZE,
        onPage: (pgno, page) => collector.add(pgno, page),
        spoolDir: dirname(this.#dbPath),
      });
      // Frames read above must still belong to the generation the position is in.
      const after = wal !== undefined ? readWalHeader(wal) : undefined;
      if (
        this.#walPages.size > 0 &&
        (!after || after.salt1 !== cursor.salt1 || after.salt2 !== cursor.salt2)
      ) {
        disposeLtx(enc);
        return;
      }
    } finally {
      closeSync(db);
      if (wal !== undefined) closeSync(wal);
    }
    const skeleton = collector.finish();
    const txid = this.#txid;
    await this.#upload({
      key,
      enc,
      ...(skeleton ? { skeleton } : {}),
      commit: () => {
        this.#lastSnapshotAt = Date.now();
        this.#stats.snapshots++;
        this.#queueEvent("snapshot", { txid, reason: "periodic" });
      },
    });
    await this.#publishHead();
  }

  /**
   * Publishes a snapshot's B-tree skeleton (see skeleton.ts). Best effort: a
   * replica without one only opens a little slower.
   */
  async #uploadSkeleton(skeleton: BuiltSkeleton | undefined): Promise<void> {
    if (!skeleton) return;
    try {
      await this.#store.put(skeleton.key, skeleton.enc.bytes);
      this.#stats.bytesUploaded += skeleton.enc.bytes.length;
      this.#skeleton = { key: skeleton.key, size: skeleton.enc.bytes.length, txid: skeleton.txid };
    } catch (err) {
      this.#log.warn("could not publish the snapshot's skeleton", { error: errorText(err) });
    }
  }

  async #headFile(f: KnownFile): Promise<HeadFile> {
    if (f.indexOffset === undefined || f.indexSize === undefined || f.timestamp === undefined) {
      const info = await readLtxPageIndex(storeRangeReader(this.#store, f.key));
      f.indexOffset = info.indexOffset;
      f.indexSize = info.indexSize + 8;
      f.timestamp ??= info.header?.timestamp ?? f.lastModified.getTime();
      f.size = info.fileSize;
    }
    return {
      level: f.level,
      minTXID: f.minTXID,
      maxTXID: f.maxTXID,
      key: f.key,
      size: f.size,
      indexOffset: f.indexOffset,
      indexSize: f.indexSize,
      timestamp: f.timestamp,
    };
  }

  async #publishHead(): Promise<void> {
    const plan = planRestore([...this.#files.values()]);
    if (plan.files.length >= HEAD_OBJECT_MAX_FILES) {
      // A plan this long (no compaction, or compaction lagging) is at the
      // head's limit: a snapshot restarts it at one file. Past the limit the
      // head cannot be written, so it stays dirty until the snapshot's head.
      if (this.#snapshotReason === undefined) {
        this.#log.warn(
          "the restore plan reached the head object's file limit; publishing a snapshot",
          {
            files: plan.files.length,
            limit: HEAD_OBJECT_MAX_FILES,
          },
        );
      }
      this.#snapshotReason ??= "restore plan at the head object's file limit";
      if (plan.files.length > HEAD_OBJECT_MAX_FILES) {
        this.#headDirty = true;
        return;
      }
    }
    const files: HeadFile[] = [];
    for (const f of plan.files) files.push(await this.#headFile(this.#files.get(f.key)!));
    const head: HeadObject = {
      format: "pagecast-head",
      version: 1,
      writerId: this.#writerId,
      generation: this.#generation,
      txid: this.#txid,
      timestamp: this.#txTime,
      pageSize: this.#pageSize,
      commit: this.#commit,
      postApplyChecksum: this.#opts.trackChecksums ? this.#checksums.value : null,
      files,
    };
    // Page 1's newest image, when every file after it is known not to hold one.
    for (let i = plan.files.length - 1; i >= 0; i--) {
      const f = this.#files.get(plan.files[i]!.key);
      if (f?.page1 === undefined) break;
      if (f.page1 === null) continue;
      head.page1 = { key: f.key, offset: f.page1.offset, size: f.page1.size };
      break;
    }
    // Named only while it belongs to the plan's snapshot.
    const skeleton = this.#skeleton;
    if (skeleton && files[0]?.level === SNAPSHOT_LEVEL && files[0].maxTXID === skeleton.txid) {
      head.skeleton = skeleton;
    }
    const previous = this.#head.current;
    this.#headDirty = true;
    await this.#writeHead(head);
    this.#headDirty = false;
    const events = this.#events.splice(0);
    for (const [name, payload] of events) this.emit(name, payload);
    const now = Date.now();
    const keys = new Set(files.map((f) => f.key));
    for (const f of previous?.files ?? []) if (!keys.has(f.key)) this.#leftHeadAt.set(f.key, now);
    for (const k of keys) this.#leftHeadAt.delete(k);
  }

  /**
   * Writes the head (CAS). After a write whose answer was lost, the next CAS
   * fails although nobody else wrote: the stored head then carries our
   * writer id (only this writer uses it), so its ETag is adopted and the
   * write tried once more. A head by another writer stops this one.
   */
  async #writeHead(head: HeadObject): Promise<void> {
    try {
      await this.#head.write(head);
    } catch (err) {
      if (!(err instanceof LeaseLostError) || !this.#headUncertain) {
        if (isStorageFailure(err)) this.#headUncertain = true;
        throw err;
      }
      const stored = await this.#head.load();
      if (!stored) {
        throw new StoreRequestError(`could not read back the head object on ${this.#store.url}`, {
          retryable: true,
          cause: err,
        });
      }
      if (stored.writerId !== this.#writerId) {
        this.#fatal = err;
        throw err;
      }
      await this.#head.write(head);
    }
    this.#headUncertain = false;
  }

  async #checkpoint(mode: "PASSIVE" | "TRUNCATE"): Promise<void> {
    let sealed = false;
    const out = runCheckpoint(
      this.#conns,
      mode,
      () => {
        // Under the write lock nothing new can commit: capture the WAL's tail
        // now (it is uploaded after the lock is released, or kept while
        // storage fails), so the checkpoint loses nothing.
        this.#absorb(this.#scan());
        // With a snapshot due nothing needs capturing: while storage works the
        // snapshot goes first; while it fails, checkpoint anyway to bound the WAL.
        sealed = this.#snapshotReason === undefined || this.#failingSince !== undefined;
        return sealed;
      },
      () => (this.#expect?.oldSalt1 === null ? null : (this.#cursor?.salt1 ?? null)),
    );
    if (out) this.#expect = out.expectation;
    if (!out) {
      if (sealed) this.#stats.checkpoints.busy++;
      return;
    }
    if (mode === "PASSIVE") this.#stats.checkpoints.passive++;
    else this.#stats.checkpoints.truncate++;
    this.#log.debug("checkpoint", { mode, ...out.result, clean: out.expectation.clean });
    this.emit("checkpoint", { mode, ...out.result });
  }

  /** Compaction and retention when due. Only acts on files this writer knows of: no LISTs. */
  async #maintain(): Promise<void> {
    if (!this.#compactionIntervals) return;
    const now = Date.now();
    for (const level of COMPACTION_LEVELS) {
      if (now < this.#nextCompaction[level]) continue;
      this.#nextCompaction[level] = now + this.#compactionIntervals[level];
      await this.#compact(level);
    }
    if (
      this.#opts.retention > 0 &&
      now - this.#lastRetention >= Math.min(this.#compactionIntervals[3], this.#opts.retention)
    ) {
      this.#lastRetention = now;
      await this.#enforceRetention();
    }
  }

  /** Runs every due compaction and retention now (for tests and tools). */
  compactNow(): Promise<void> {
    return this.#run(async () => {
      this.#assertUsable();
      await this.#flush();
      for (const level of COMPACTION_LEVELS) await this.#compact(level);
      if (this.#opts.retention > 0) await this.#enforceRetention();
    });
  }

  async #compact(level: Level): Promise<void> {
    const files = [...this.#files.values()];
    const destMax = Math.max(0, ...files.filter((f) => f.level === level).map((f) => f.maxTXID));
    const runs = compactionRuns(
      files.filter((f) => f.level === level - 1),
      destMax,
    );
    for (const run of runs) {
      const inputs: Uint8Array[] = [];
      // Cached inputs stay cached until the output is stored: a failed attempt needs them again.
      for (const f of run) inputs.push(this.#cache.get(f.key) ?? (await this.#download(f.key)));
      const enc = mergeLtxFiles(inputs);
      const first = run[0]!;
      const last = run[run.length - 1]!;
      await this.#upload({
        key: ltxKey(level, first.minTXID, last.maxTXID),
        enc,
        commit: () => {
          for (const f of run) this.#cacheTake(f.key);
          this.#stats.compactions[level] = (this.#stats.compactions[level] ?? 0) + 1;
          this.#queueEvent("compaction", { level, minTXID: first.minTXID, maxTXID: last.maxTXID });
        },
      });
      await this.#publishHead();
    }
  }

  /**
   * Downloads a compaction input, verified (every LTX file carries its
   * checksum, so a body damaged in transit shows). A few attempts: a run of
   * many inputs must not keep failing on one unlucky request.
   */
  async #download(key: string): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.#store.get(key);
        if (res.notModified) {
          throw new ReplicatorError("INVALID_STATE", `unexpected not-modified for ${key}`);
        }
        decodeLtx(res.body);
        return res.body;
      } catch (err) {
        if (attempt >= 3 || !(isStorageFailure(err) || err instanceof LtxError)) throw err;
      }
    }
  }

  async #enforceRetention(): Promise<void> {
    const headKeys = new Set((this.#head.current?.files ?? []).map((f) => f.key));
    const keys = selectExpiredFiles({
      files: [...this.#files.values()],
      now: Date.now(),
      retentionMs: this.#opts.retention,
      graceMs: this.#opts.retentionGrace,
      headKeys,
      leftHeadAt: this.#leftHeadAt,
      fallbackLeftAt: this.#startedAt,
    });
    if (keys.length === 0) return;
    await this.#lease.ensure();
    await this.#store.deleteMany(keys);
    // A deleted snapshot's skeleton goes with it (absent ones are ignored).
    const skeletons = keys.flatMap((k) => {
      const f = this.#files.get(k);
      return f?.level === SNAPSHOT_LEVEL ? [skeletonKey(f.maxTXID)] : [];
    });
    if (skeletons.length > 0) await this.#store.deleteMany(skeletons);
    for (const k of keys) {
      this.#files.delete(k);
      this.#leftHeadAt.delete(k);
      this.#cacheTake(k);
    }
    this.#stats.retentionDeletes += keys.length;
    this.#log.info("retention deleted files", { count: keys.length });
  }

  /** Current counters. */
  stats(): ReplicatorStats {
    return {
      writerId: this.#writerId,
      generation: this.#generation,
      txid: this.#txid,
      lastSyncAt: this.#stats.lastSyncAt,
      commit: this.#commit,
      pageSize: this.#pageSize,
      walBytes: this.#walBytes,
      syncs: this.#stats.syncs,
      publishedSyncs: this.#stats.publishedSyncs,
      snapshots: this.#stats.snapshots,
      continuityBreaks: { ...this.#stats.continuityBreaks },
      compactions: { ...this.#stats.compactions },
      checkpoints: { ...this.#stats.checkpoints },
      retentionDeletes: this.#stats.retentionDeletes,
      bytesUploaded: this.#stats.bytesUploaded,
      pending: {
        transactions: this.#pendingTransactions(),
        bytes: this.#buffer.bytes + (this.#inflight?.enc.size ?? 0),
        snapshotDue: this.#snapshotReason !== undefined,
      },
      storageFailingSince: this.#failingSince ?? null,
      bufferOverflows: this.#stats.bufferOverflows,
      store: this.#store.counters(),
      errors: this.#stats.errors,
      lastError: this.#stats.lastError,
    };
  }

  /** The newest published position. */
  get position(): ReplicaPosition {
    return { txid: this.#txid, timestamp: this.#txTime };
  }

  /** The store this replicator writes to. */
  get store(): ObjectStore {
    return this.#store;
  }

  /**
   * Final sync, a TRUNCATE checkpoint, then releases the lease and the
   * connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    await this.#run(async () => {
      if (this.#closed) return;
      let failure: unknown;
      if (!this.#fatal) {
        try {
          await this.#syncLocked();
          this.#conns.releasePin();
          this.#conns.checkpoint("TRUNCATE");
        } catch (err) {
          failure = err;
        }
        // The final sync may succeed while a later flush (after its
        // checkpoint) failed: say so either way. The changes are still in the
        // database file: the next start publishes a snapshot.
        if (this.#hasPending()) {
          this.#log.warn("closing with changes not published; the next start publishes them", {
            transactions: this.#pendingTransactions(),
          });
        }
      }
      this.#closed = true;
      this.#conns.close();
      // An upload that never made it: release what holds it (a spool file).
      if (this.#inflight) disposeLtx(this.#inflight.enc);
      this.#buffer = new CaptureBuffer();
      if (!this.#fatal) await this.#lease.release().catch(() => {});
      if (this.#ownsStore) await this.#store.close().catch(() => {});
      if (failure) throw failure;
    });
  }
}

function sameGeneration(a: WalHeader | undefined, b: WalHeader | undefined): boolean {
  if (!a || !b) return a === b;
  return a.salt1 === b.salt1 && a.salt2 === b.salt2;
}

function validateOptions(o: ReplicatorOptions): void {
  if (!o || typeof o.db !== "string" || o.db.length === 0) {
    throw new ReplicatorError("INVALID_OPTION", "options.db must name the database file");
  }
  if (!o.store && typeof o.url !== "string") {
    throw new ReplicatorError("INVALID_OPTION", "options.url or options.store is required");
  }
  const nonNegative: (keyof ReplicatorOptions)[] = [
    "syncInterval",
    "busyTimeout",
    "snapshotInterval",
    "retention",
    "retentionGrace",
    "compactionCacheBytes",
    "outageBufferBytes",
    "outageRetryMaxDelay",
  ];
  for (const k of nonNegative) {
    const v = o[k];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
      throw new ReplicatorError("INVALID_OPTION", `options.${k} must be a non-negative number`);
    }
  }
  for (const k of ["checkpointPages", "truncatePages", "leaseTtl"] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw new ReplicatorError("INVALID_OPTION", `options.${k} must be a positive number`);
    }
  }
}
