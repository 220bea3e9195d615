/**
 * A reader's metrics (`replica.metrics()`, and each replica of a router's
 * `$metrics()`), named like the writer's (`pagecast_txid`, `pagecast_health`,
 * `pagecast_db_size_bytes`...) and labelled with the replica's `url`, so
 * writer and reader series of one replica join on `url`.
 */
import type { ReplicaStatus } from "../vfs/replica-core.js";
import type { MetricLabels, MetricsText } from "./prometheus-text.js";

/** Reader health states (`pagecast_health{state}`). */
const READER_STATES = ["healthy", "lagging", "stale", "unknown"] as const;

const seconds = (d: Date) => d.getTime() / 1000;

/**
 * Adds a replica's samples. `status` may be partial (a router's custom
 * replica reports only TXID and lag): what is absent is left out.
 */
export function writeReplicaMetrics(
  out: MetricsText,
  status: Partial<ReplicaStatus> & { txid: number | null; lagSeconds: number | null },
  labels: MetricLabels,
): void {
  const l = { ...labels };
  const g = (name: string, help: string, value: number, extra: MetricLabels = {}) =>
    out.add(name, "gauge", help, { ...l, ...extra }, value);
  const c = (name: string, help: string, value: number, extra: MetricLabels = {}) =>
    out.add(name, "counter", help, { ...l, ...extra }, value);

  g("pagecast_txid", "Newest TXID the replica serves (0 before the first).", status.txid ?? 0);
  if (status.commitTime) {
    g(
      "pagecast_commit_timestamp_seconds",
      "Commit time of that TXID (Unix seconds).",
      seconds(status.commitTime),
    );
  }
  if (status.lagSeconds !== null) {
    g(
      "pagecast_lag_seconds",
      "Upper bound on staleness: seconds since the replica last confirmed it held everything published.",
      status.lagSeconds,
    );
  }
  if (status.health) {
    for (const state of READER_STATES) {
      g("pagecast_health", "1 for the current health state.", status.health === state ? 1 : 0, {
        state,
      });
    }
  }
  if (status.pages != null && status.pageSize != null) {
    g(
      "pagecast_db_size_bytes",
      "Database size at the served TXID, bytes.",
      status.pages * status.pageSize,
    );
  }
  if (status.lastPollAt) {
    g(
      "pagecast_last_poll_timestamp_seconds",
      "When the replica last polled storage (Unix seconds).",
      seconds(status.lastPollAt),
    );
  }
  if (status.requests) {
    for (const [kind, t] of Object.entries(status.requests)) {
      c("pagecast_read_requests_total", "Storage requests of the reader, by purpose.", t.requests, {
        kind,
      });
      c(
        "pagecast_read_bytes_total",
        "Bytes the reader received from storage, by purpose.",
        t.bytes,
        { kind },
      );
      c(
        "pagecast_read_errors_total",
        "Failed storage requests of the reader, by purpose.",
        t.errors,
        { kind },
      );
    }
  }
  if (status.cache) {
    c("pagecast_cache_hits_total", "Page cache hits.", status.cache.hits);
    c("pagecast_cache_misses_total", "Page cache misses.", status.cache.misses);
    g("pagecast_cache_pages", "Pages in the page cache.", status.cache.entries);
    g("pagecast_cache_bytes", "Bytes in the page cache.", status.cache.bytes);
    g("pagecast_cache_max_bytes", "Size limit of the page cache, bytes.", status.cache.maxBytes);
  }
  if (status.bulk) {
    c("pagecast_bulk_fetches_total", "Bulk (B-tree-aware) range GETs.", status.bulk.fetches);
    c("pagecast_bulk_pages_total", "Pages fetched in bulk.", status.bulk.pages);
    c("pagecast_bulk_bytes_total", "Bytes fetched in bulk.", status.bulk.bytes);
  }
  if (status.hydration) {
    g("pagecast_hydration_pages", "Pages hydration has fetched.", status.hydration.pages);
    g("pagecast_hydration_total_pages", "Pages hydration aims for.", status.hydration.totalPages);
  }
  if (status.persistentCache) {
    const p = status.persistentCache;
    c("pagecast_persistent_cache_hits_total", "Persistent page cache hits.", p.hits);
    c("pagecast_persistent_cache_misses_total", "Persistent page cache misses.", p.misses);
    c(
      "pagecast_persistent_cache_errors_total",
      "Persistent page cache errors (corrupt entries included).",
      p.errors + p.corrupt,
    );
    if (p.bytes !== undefined)
      g("pagecast_persistent_cache_bytes", "Bytes in the persistent page cache.", p.bytes);
  }
  if (status.storage) {
    g(
      "pagecast_storage_failing",
      "1 while storage attempts fail (from the first failed attempt until one succeeds).",
      status.storage.failingSince ? 1 : 0,
    );
    g("pagecast_storage_in_flight", "Storage requests in flight.", status.storage.inFlight);
  }
}
