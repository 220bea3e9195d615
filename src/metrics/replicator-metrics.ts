/**
 * A writer's metrics (`replicator.metrics()`, and every database of
 * `pagecast replicate` on `/metrics`), labelled with the database path
 * (`db`) and the replica's `url`.
 */
import type { ReplicatorStats } from "../replicator/stats.js";
import type { MetricLabels, MetricsText } from "./prometheus-text.js";

/** Writer health states (`pagecast_health{state}`). */
export const WRITER_STATES = [
  "healthy",
  "diverged",
  "storage-unavailable",
  "database-unavailable",
] as const;

/** Adds the samples of one replicator's `stats()`. */
export function writeReplicatorMetrics(
  out: MetricsText,
  s: ReplicatorStats,
  labels: MetricLabels,
  now = Date.now(),
): void {
  const g = (name: string, help: string, value: number, extra: MetricLabels = {}) =>
    out.add(name, "gauge", help, { ...labels, ...extra }, value);
  const c = (name: string, help: string, value: number, extra: MetricLabels = {}) =>
    out.add(name, "counter", help, { ...labels, ...extra }, value);

  for (const state of WRITER_STATES) {
    g("pagecast_health", "1 for the current health state.", s.health === state ? 1 : 0, { state });
  }
  g("pagecast_txid", "Newest TXID published to the replica (0 before the first snapshot).", s.txid);
  g("pagecast_db_size_bytes", "Database size at that TXID, bytes.", s.commit * s.pageSize);
  g("pagecast_wal_size_bytes", "WAL file size as of the last sync, bytes.", s.walBytes);
  if (s.lastSyncAt !== null) {
    g(
      "pagecast_last_sync_timestamp_seconds",
      "When the last sync completed (Unix seconds).",
      s.lastSyncAt / 1000,
    );
  }
  c("pagecast_syncs_total", "Syncs run (background, explicit and final, idle ones too).", s.syncs);
  c(
    "pagecast_published_syncs_total",
    "Syncs that published at least one LTX file.",
    s.publishedSyncs,
  );
  out.add(
    "pagecast_sync_duration_seconds",
    "summary",
    "Time the syncs that published spent making their changes durable (uploads of the files and the head).",
    labels,
    s.syncDuration.totalMs / 1000,
    "_sum",
  );
  out.add(
    "pagecast_sync_duration_seconds",
    "summary",
    "Time the syncs that published spent making their changes durable (uploads of the files and the head).",
    labels,
    s.syncDuration.count,
    "_count",
  );
  c("pagecast_snapshots_total", "Snapshots published.", s.snapshots);
  for (const [level, n] of Object.entries(s.compactions)) {
    c("pagecast_compactions_total", "Compactions, by level.", n, { level });
  }
  for (const mode of ["passive", "truncate", "busy"] as const) {
    c(
      "pagecast_checkpoints_total",
      "Checkpoints, by mode (busy: skipped because the database was busy).",
      s.checkpoints[mode],
      { mode },
    );
  }
  c("pagecast_retention_deletes_total", "Files deleted by retention.", s.retentionDeletes);
  c("pagecast_uploaded_bytes_total", "LTX bytes uploaded.", s.bytesUploaded);
  for (const [kind, n] of Object.entries(s.store.requests)) {
    c("pagecast_storage_requests_total", "Storage requests (attempts), by kind.", n, { kind });
  }
  c("pagecast_storage_bytes_total", "Bytes exchanged with storage.", s.store.bytesOut, {
    direction: "out",
  });
  c("pagecast_storage_bytes_total", "Bytes exchanged with storage.", s.store.bytesIn, {
    direction: "in",
  });
  c("pagecast_storage_errors_total", "Failed storage attempts.", s.store.errors);
  c(
    "pagecast_storage_retries_total",
    "Storage attempts repeated after a failure.",
    s.store.retries,
  );
  g(
    "pagecast_storage_failing",
    "1 while uploads fail or stall (an outage: changes are kept until storage returns).",
    s.storageFailingSince === null ? 0 : 1,
  );
  g(
    "pagecast_storage_failing_seconds",
    "How long the current outage has lasted, seconds (0 while storage works).",
    s.storageFailingSince === null ? 0 : Math.max(0, now - s.storageFailingSince) / 1000,
  );
  g(
    "pagecast_pending_transactions",
    "Committed transactions captured and not yet in storage.",
    s.pending.transactions,
  );
  g("pagecast_pending_bytes", "Bytes held for them.", s.pending.bytes);
  c(
    "pagecast_outage_buffer_overflows_total",
    "Times the outage buffer overflowed (a snapshot follows recovery).",
    s.bufferOverflows,
  );
  c(
    "pagecast_divergences_total",
    "Times the replica was found not to equal the database (each repaired by a snapshot).",
    s.divergences,
  );
  c("pagecast_errors_total", "Errors of background syncs and maintenance.", s.errors);
}
