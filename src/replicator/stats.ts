/** Counters the replicator exposes through `stats()`. */
import type { ObjectStore, StoreCounters } from "../storage/object-store.js";
import type { Capture } from "./capture.js";
import type { WriterHealth } from "./health.js";
import type { Maintenance } from "./maintenance.js";
import type { Publisher } from "./publisher.js";

/** A replicated position: the newest published TXID and its commit time. */
export interface ReplicaPosition {
  txid: number;
  /** Commit time of `txid` as recorded in its LTX header (ms since epoch). */
  timestamp: number;
}

/** Snapshot of the replicator's counters. */
export interface ReplicatorStats {
  writerId: string;
  generation: string;
  /** Newest published TXID (0 before the first snapshot). */
  txid: number;
  /** Time of the last sync that completed (ms since epoch), or null. */
  lastSyncAt: number | null;
  /** Database size in pages at `txid`. */
  commit: number;
  pageSize: number;
  /** Current WAL file size in bytes (as of the last sync). */
  walBytes: number;
  /** Syncs run (background, explicit and final; including idle and failed ones). */
  syncs: number;
  /** Syncs that published at least one L0 file or snapshot (never more than `syncs`). */
  publishedSyncs: number;
  /**
   * Time the publishing syncs spent making their changes durable (the
   * uploads of the files and the head): `count` of them (= publishedSyncs),
   * `totalMs` together, `lastMs` the latest (null before the first).
   */
  syncDuration: { count: number; totalMs: number; lastMs: number | null };
  snapshots: number;
  /** Continuity breaks by reason. */
  continuityBreaks: Record<string, number>;
  compactions: Record<number, number>;
  checkpoints: { passive: number; truncate: number; busy: number };
  retentionDeletes: number;
  /** LTX bytes uploaded. */
  bytesUploaded: number;
  /**
   * Committed changes captured but not in storage yet: normally empty between
   * syncs; while storage fails, what is kept in memory for it.
   */
  pending: {
    /** SQLite transactions captured and not yet published (0 when a snapshot will cover them). */
    transactions: number;
    /** Bytes held for them (page images, plus the encoded upload that waits). */
    bytes: number;
    /** A snapshot is due (continuity lost, or the outage buffer overflowed). */
    snapshotDue: boolean;
  };
  /** Since when uploads fail (ms since epoch), or null while storage works. */
  storageFailingSince: number | null;
  /** Times the outage buffer passed `outageBufferBytes` and was dropped for a snapshot. */
  bufferOverflows: number;

  /**
   * The writer's own health: `healthy`; `diverged` (a divergence was
   * detected and the snapshot repairing it is not published yet);
   * `storage-unavailable` (uploads fail or stall: changes are kept until
   * storage returns); `database-unavailable` (the database file cannot be
   * opened, e.g. after it was swapped; retried every sync).
   */
  health: "healthy" | "diverged" | "storage-unavailable" | "database-unavailable";
  /**
   * Times the writer found that the replica could not be continued from the
   * database: the divergence check found a page that differs, WAL frames
   * were lost before they were captured, or the files were swapped behind
   * the writer. Each was logged as an error and repaired by a snapshot.
   */
  divergences: number;
  /** The last divergence, if any: when (ms since epoch) and why. */
  lastDivergence: { at: number; reason: string } | null;
  /** The divergence check: pages compared, complete passes, end of the last pass (ms since epoch). */
  verification: { pages: number; passes: number; lastPassAt: number | null };
  /** Store request counters (requests by kind, bytes in/out, errors, retries). */
  store: StoreCounters;
  /** Errors seen by background syncs and maintenance. */
  errors: number;
  lastError: string | null;
}

/** The parts of a replicator {@link collectStats} reads. */
export interface StatsSources {
  writerId: string;
  capture: Capture;
  pub: Publisher;
  health: WriterHealth;
  maint: Maintenance;
  store: ObjectStore;
  counters: {
    syncs: number;
    publishedSyncs: number;
    syncDuration: { count: number; totalMs: number; lastMs: number | null };
    snapshots: number;
    continuityBreaks: Record<string, number>;
    checkpoints: { passive: number; truncate: number; busy: number };
    bufferOverflows: number;
    errors: number;
    lastError: string | null;
    lastSyncAt: number | null;
  };
  /** Transactions captured and not published yet. */
  pending: number;
}

/** A snapshot of a replicator's counters. */
export function collectStats(s: StatsSources): ReplicatorStats {
  const { pub, capture, counters: c } = s;
  const last = s.health.last;
  return {
    writerId: s.writerId,
    generation: pub.generation,
    txid: pub.txid,
    lastSyncAt: c.lastSyncAt,
    commit: pub.commit,
    pageSize: pub.pageSize,
    walBytes: capture.walBytes,
    syncs: c.syncs,
    publishedSyncs: c.publishedSyncs,
    syncDuration: { ...c.syncDuration },
    snapshots: c.snapshots,
    continuityBreaks: { ...c.continuityBreaks },
    compactions: { ...s.maint.compactions },
    checkpoints: { ...c.checkpoints },
    retentionDeletes: s.maint.retentionDeletes,
    bytesUploaded: pub.bytesUploaded,
    pending: {
      transactions: s.pending,
      bytes: capture.buffer.bytes + (pub.inflight?.enc.size ?? 0),
      snapshotDue: capture.snapshotReason !== undefined,
    },
    storageFailingSince: pub.failingSince ?? null,
    bufferOverflows: c.bufferOverflows,
    health: s.health.diverged
      ? "diverged"
      : capture.unavailable
        ? "database-unavailable"
        : pub.failingSince !== undefined
          ? "storage-unavailable"
          : "healthy",
    divergences: s.health.divergences,
    lastDivergence: last ? { ...last } : null,
    verification: {
      pages: capture.verifier.pages,
      passes: capture.verifier.passes,
      lastPassAt: capture.verifier.lastPassAt,
    },
    store: s.store.counters(),
    errors: c.errors,
    lastError: c.lastError,
  };
}
