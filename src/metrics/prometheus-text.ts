/**
 * Prometheus' text exposition format (version 0.0.4), runtime-agnostic: a
 * Worker or a Lambda exports a replica's metrics with it as well as the
 * `pagecast replicate` daemon does. Families are rendered once each (HELP,
 * TYPE, then every sample), whatever the number of sources that add to them.
 */

/** Label names and values of one sample. */
export type MetricLabels = Readonly<Record<string, string>>;

/** The metric types pagecast uses. */
export type MetricType = "gauge" | "counter" | "summary";

/** The `Content-Type` of {@link MetricsText.text}. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: MetricLabels): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL.test(k)) throw new TypeError(`invalid metric label name ${JSON.stringify(k)}`);
    parts.push(`${k}="${escapeLabel(v)}"`);
  }
  return parts.length ? `{${parts.join(",")}}` : "";
}

interface Family {
  help: string;
  type: MetricType;
  lines: string[];
}

/** Samples grouped by family, rendered as Prometheus text. */
export class MetricsText {
  readonly #families = new Map<string, Family>();

  /**
   * Adds one sample of family `name`. `suffix` names a summary's parts
   * (`_sum`, `_count`). Non-finite values render as NaN / +Inf.
   */
  add(
    name: string,
    type: MetricType,
    help: string,
    labels: MetricLabels,
    value: number,
    suffix = "",
  ): this {
    if (!NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
    let family = this.#families.get(name);
    if (!family) {
      family = { help, type, lines: [] };
      this.#families.set(name, family);
    }
    family.lines.push(`${name}${suffix}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** The exposition text (empty when nothing was added). */
  text(): string {
    let out = "";
    for (const [name, f] of this.#families) {
      out += `# HELP ${name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`;
      out += `# TYPE ${name} ${f.type}\n`;
      for (const line of f.lines) out += `${line}\n`;
    }
    return out;
  }
}

/** The method every metrics source implements (a symbol, so it never clashes with user fields). */
export const WRITE_METRICS: unique symbol = Symbol.for("pagecast.writeMetrics") as never;

/** Something that adds its metrics to a {@link MetricsText} (replicas, routers, replicators). */
export interface MetricsSource {
  [WRITE_METRICS](out: MetricsText, labels: MetricLabels): void;
}

/** Options of `metrics()` methods and {@link metricsText}. */
export interface MetricsOptions {
  /** Labels added to every sample (e.g. `{ app: "api", region: "eu" }`). */
  labels?: Record<string, string>;
}

/**
 * The Prometheus text of several sources at once (replicas, routers,
 * replicators): each family appears once, so the result is one valid
 * exposition (concatenating `metrics()` outputs repeats HELP lines).
 */
export function metricsText(
  sources: MetricsSource | readonly MetricsSource[],
  options: MetricsOptions = {},
): string {
  const out = new MetricsText();
  const list = Array.isArray(sources) ? sources : [sources as MetricsSource];
  for (const s of list) {
    if (typeof (s as Partial<MetricsSource> | null)?.[WRITE_METRICS] !== "function") {
      throw new TypeError("metricsText takes replicas, routers and replicators");
    }
    s[WRITE_METRICS](out, options.labels ?? {});
  }
  return out.text();
}
