/** The options of {@link Replicator.start}, their defaults and their validation. */
import { LTX_COMPAT_VALUES, type LtxCompat, resolveLtxCompat } from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { ReplicatorLogger } from "./logger.js";
import { ReplicatorError } from "./replicator-error.js";

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
  /**
   * TRUNCATE checkpoint threshold in WAL pages (default 121359, about 500 MB
   * of 4 KiB pages: Litestream's `truncate-page-n`). PASSIVE checkpoints keep
   * the WAL's size bounded between syncs (SQLite rewrites it from its start);
   * TRUNCATE hands the file's space back and is the brake for a WAL that
   * readers keep from being checkpointed. A lower threshold truncates a busy
   * database's WAL at every sync: SQLite then syncs and re-grows the file on
   * the application's thread (measured: 1-row transactions at 0.85-0.91x
   * their speed without the Replicator at 10000, 1.01-1.02x at the default).
   */
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
  /**
   * Pages of the database compared with the replicated state at each
   * background sync (the divergence check; default 256, 1 MiB at 4 KiB pages;
   * 0 disables it). A mismatch is logged as an error, counted in `stats()`,
   * published in the head and repaired by a snapshot. Needs `trackChecksums`.
   */
  verifyPages?: number;
  /** Budget for keeping uploaded files in memory as compaction inputs, bytes (default 64 MiB). */
  compactionCacheBytes?: number;
  /**
   * While uploads fail, committed changes are captured from the WAL into
   * memory (the newest image of each changed page) so that checkpoints can
   * keep the WAL small; they are published as one L0 file when storage
   * returns. Past this many bytes of page images the buffer is dropped and a
   * snapshot is published on recovery instead (default 64 MiB). The one
   * upload already under way (at most one file) comes on top. While an
   * upload is merely slow, capture stops at this size and the WAL keeps the rest.
   */
  outageBufferBytes?: number;
  /**
   * Longest wait between background upload attempts while storage fails, ms
   * (default 30 000). Waits double from the sync interval up to this; WAL
   * capture and checkpoints go on at every sync interval regardless, and an
   * explicit `sync()` always tries at once.
   */
  outageRetryMaxDelay?: number;
  /**
   * An upload (or head write) still unanswered after this long, ms, plus 1 s
   * per MiB of its size, counts as a storage failure in `stats()` (and
   * `storageFailingSince` is set) while it goes on (default 10 000). A store
   * error on any attempt counts at once.
   */
  uploadStallTimeout?: number;
  /**
   * Page encoding of every LTX file written (level-0 files, compactions,
   * snapshots and their skeletons): `"0.5.2"` (default, LZ4 blocks, read by
   * Litestream 0.5.16+ and every pagecast reader) or `"0.5.1"` (LZ4 frames,
   * for replicas that Litestream 0.5.0-0.5.15 must read). See `LtxCompat`.
   */
  ltxCompat?: LtxCompat;
  logger?: ReplicatorLogger;
  /** Identifier of this writer (default: random). */
  writerId?: string;
}

/** The options with every default applied. */
export interface ResolvedOptions {
  db: string;
  syncInterval: number;
  busyTimeout: number;
  checkpointPages: number;
  truncatePages: number;
  compaction: { 1: number; 2: number; 3: number } | undefined;
  snapshotInterval: number;
  retention: number;
  retentionGrace: number;
  trackChecksums: boolean;
  verifyPages: number;
  compactionCacheBytes: number;
  outageBufferBytes: number;
  outageRetryMaxDelay: number;
  uploadStallTimeout: number;
  ltxCompat: LtxCompat;
}

/** Checks the options (`INVALID_OPTION`) and applies the defaults. */
export function resolveOptions(o: ReplicatorOptions): ResolvedOptions {
  validateOptions(o);
  return {
    db: o.db,
    syncInterval: o.syncInterval ?? 1000,
    busyTimeout: o.busyTimeout ?? 100,
    checkpointPages: o.checkpointPages ?? 1000,
    truncatePages: o.truncatePages ?? 121_359,
    compaction:
      o.compaction === false
        ? undefined
        : {
            1: o.compaction?.l1 ?? 30_000,
            2: o.compaction?.l2 ?? 5 * 60_000,
            3: o.compaction?.l3 ?? 3_600_000,
          },
    snapshotInterval: o.snapshotInterval ?? 24 * 3_600_000,
    retention: o.retention ?? 24 * 3_600_000,
    retentionGrace: o.retentionGrace ?? 5 * 60_000,
    trackChecksums: o.trackChecksums ?? true,
    verifyPages: o.verifyPages ?? 256,
    compactionCacheBytes: o.compactionCacheBytes ?? 64 * 1024 * 1024,
    outageBufferBytes: o.outageBufferBytes ?? 64 * 1024 * 1024,
    outageRetryMaxDelay: o.outageRetryMaxDelay ?? 30_000,
    uploadStallTimeout: o.uploadStallTimeout ?? 10_000,
    ltxCompat: compat(o.ltxCompat),
  };
}

function compat(value: unknown): LtxCompat {
  try {
    return resolveLtxCompat(value);
  } catch {
    throw new ReplicatorError(
      "INVALID_OPTION",
      `options.ltxCompat must be one of ${LTX_COMPAT_VALUES.map((v) => JSON.stringify(v)).join(", ")}`,
    );
  }
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
    "verifyPages",
    "compactionCacheBytes",
    "outageBufferBytes",
    "outageRetryMaxDelay",
    "uploadStallTimeout",
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
