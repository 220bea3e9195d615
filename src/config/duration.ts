/**
 * Durations as Go writes them (`time.ParseDuration`, which Litestream's
 * config uses): one or more number-unit pairs, `500ms`, `1s`, `1h30m`,
 * `1.5h`, plus a bare `0`. Units: ns, us (µs), ms, s, m, h.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** An example of each accepted form, for error messages. */
export const DURATION_EXAMPLES = "500ms, 1s, 5m, 1h or 1h30m";

/**
 * Milliseconds of a Go-style duration (rounded to a whole ms, at least 1
 * for a non-zero duration), or undefined when `text` is not one. Negative
 * durations are not accepted: nothing pagecast configures runs backwards.
 */
export function parseGoDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === "0") return 0;
  if (s.length === 0 || s.length > 64) return undefined;
  let i = s[0] === "+" ? 1 : 0;
  if (i === s.length) return undefined;
  let ms = 0;
  while (i < s.length) {
    PART.lastIndex = i;
    const m = PART.exec(s);
    if (!m) return undefined;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    i = PART.lastIndex;
  }
  if (!Number.isFinite(ms)) return undefined;
  return ms > 0 ? Math.max(1, Math.round(ms)) : 0;
}

/** `1500` -> `1.5s`, `90000` -> `1m30s`: the shortest Go-style text of a duration in ms. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = ms;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  if (h > 0) parts.push(`${h}h`);
  if (m > 0) parts.push(`${m}m`);
  if (rest > 0) parts.push(`${rest % 1000 === 0 ? rest / 1000 : rest / 1000}s`);
  return parts.join("");
}
