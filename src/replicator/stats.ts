/** Counters the replicator exposes through `stats()`. */
import type { StoreCounters } from "../storage/object-store.js";

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
  /** Syncs run (including idle ones) and syncs that published a file. */
  syncs: number;
  publishedSyncs: number;
  snapshots: number;
  /** Continuity breaks by reason. */
  continuityBreaks: Record<string, number>;
  compactions: Record<number, number>;
  checkpoints: { passive: number; truncate: number; busy: number };
  retentionDeletes: number;
  /** LTX bytes uploaded. */
  bytesUploaded: number;
  /** Store request counters (requests by kind, bytes in/out, errors, retries). */
  store: StoreCounters;
  /** Errors seen by background syncs and maintenance. */
  errors: number;
  lastError: string | null;
}
