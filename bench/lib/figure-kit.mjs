/** Helpers shared by the figure modules: formatting and verdicts. */

export function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "n/a";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "n/a";
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function fmtRatio(r, digits = 2) {
  if (r === null || r === undefined || !Number.isFinite(r)) return "n/a";
  return `${r.toFixed(digits)}x`;
}

/** "2.5x fewer RT" (pagecast needs fewer) or "1.6x more RT" (it needs more) than the peer. */
export function fewerText(peerRt, pagecastRt, digits = 2) {
  const r = safeRatio(peerRt, pagecastRt);
  if (r === null) return "";
  if (r === 1) return "same RT";
  return r > 1 ? `${fmtRatio(r, digits)} fewer RT` : `${fmtRatio(1 / r, digits)} more RT`;
}

export function safeRatio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** A summary-table row. `verdict`: met | missed | info | n/a. */
export function row(fields) {
  return {
    fig: fields.fig,
    label: fields.label,
    pagecast: fields.pagecast ?? "n/a",
    peer: fields.peer ?? "",
    ratio: fields.ratio ?? "",
    goal: fields.goal ?? "",
    verdict: fields.verdict ?? "info",
    note: fields.note ?? "",
  };
}

/** A row saying a figure could not be produced, and why. */
export function unavailableRow(fig, label, goal, err) {
  const kind =
    err?.kind === "missing" ? "missing API" : err?.kind === "timeout" ? "timed out" : "broken";
  const message = (err instanceof Error ? err.message : String(err)).split("\n")[0].slice(0, 300);
  return row({
    fig,
    label,
    pagecast: `not measured (${kind})`,
    goal,
    verdict: "n/a",
    note: message,
  });
}

export function verdict(ok) {
  if (ok === null || ok === undefined) return "n/a";
  return ok ? "met" : "missed";
}

/** Describes an error for the JSON report. */
export function errorInfo(err) {
  return {
    kind: err?.kind ?? "error",
    message: err instanceof Error ? err.message : String(err),
    code: err?.code,
    stack: err instanceof Error ? err.stack?.split("\n").slice(0, 6).join("\n") : undefined,
  };
}
