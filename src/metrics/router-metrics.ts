/**
 * A router's metrics (`db.$metrics()`): reads per target, writes, fallbacks
 * by reason, and every replica's own metrics (labelled `url` and `replica`,
 * its index in `replicas`, since a router may hold two replicas of one URL).
 */
import type { RouterStatus } from "../router/router.js";
import type { MetricLabels, MetricsText } from "./prometheus-text.js";
import { writeReplicaMetrics } from "./replica-metrics.js";

/** Adds the samples of a router's status. */
export function writeRouterMetrics(
  out: MetricsText,
  status: RouterStatus,
  labels: MetricLabels,
): void {
  const c = (name: string, help: string, value: number, extra: MetricLabels = {}) =>
    out.add(name, "counter", help, { ...labels, ...extra }, value);
  c("pagecast_router_reads_total", "Reads routed, by target.", status.reads.primary, {
    target: "primary",
  });
  c("pagecast_router_reads_total", "Reads routed, by target.", status.reads.replicas, {
    target: "replica",
  });
  c(
    "pagecast_router_writes_total",
    "Statements that may write (run on the primary).",
    status.writes,
  );
  c("pagecast_router_batches_total", "Batches (run on the primary).", status.batches);
  c(
    "pagecast_router_transactions_total",
    "Transactions (run on the primary).",
    status.transactions,
  );
  for (const [reason, n] of Object.entries(status.fallbacks.reasons)) {
    c(
      "pagecast_router_fallbacks_total",
      "Reads that could have gone to a replica but went to the primary, by reason.",
      n,
      { reason },
    );
  }
  status.replicas.forEach((r, i) => {
    const l = { ...labels, url: r.name, replica: String(i) };
    out.add(
      "pagecast_router_replica_reads_total",
      "counter",
      "Reads sent to the replica.",
      l,
      r.reads,
    );
    out.add(
      "pagecast_router_replica_errors_total",
      "counter",
      "Connection-level failures of reads sent to the replica.",
      l,
      r.errors,
    );
    out.add(
      "pagecast_router_replica_cooling_down",
      "gauge",
      "1 while the router skips the replica after a failure.",
      l,
      r.coolingDown ? 1 : 0,
    );
    writeReplicaMetrics(out, r.status, l);
  });
}
