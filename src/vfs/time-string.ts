/**
 * Strict reading of a time given as text, shared by every reader-side entry
 * point (`openReplica({ at })`, time travel, the CLI). Deterministic: every
 * form is absolute or relative to an explicit `now`, never to the local time
 * zone, and the whole input must match (no loose `Date.parse` forms).
 *
 * Accepted: "N <unit>(s) ago" with units second..week (N may be a decimal:
 * "1.5 hours ago"; "a"/"an" for one: "an hour ago") and ISO 8601 date-times
 * with a zone ("2025-01-31T12:00:00Z", "2025-01-31T13:00:00.5+01:00").
 */

/** Why a time string was refused; callers turn it into their own typed error. */
export interface TimeStringProblem {
  /**
   * `unreadable`: no accepted form at all; `invalid`: an accepted form used
   * wrongly (no zone, too far back); `impossible`: a date or time that does not exist.
   */
  problem: "unreadable" | "invalid" | "impossible";
  message: string;
}

/** Largest |ms| a JavaScript Date can hold. */
export const MAX_TIME_MS = 8.64e15;

const UNIT_MS: Record<string, number> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
};

const RELATIVE = /^(?:(\d{1,12})(?:\.(\d{1,6}))?|(an?))\s+(second|minute|hour|day|week)s?\s+ago$/i;

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** Quotes user input for a message, shortened so a huge input cannot flood logs. */
export function quoteTimeString(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
}

function invalid(message: string): TimeStringProblem {
  return { problem: "invalid", message };
}

function impossible(message: string): TimeStringProblem {
  return { problem: "impossible", message };
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return [31, isLeapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
}

function readIso(text: string, m: RegExpExecArray): number | TimeStringProblem {
  const [, ys, mos, ds, hs, mis, ss, frac, zone] = m;
  const q = quoteTimeString(text);
  if (zone === undefined) {
    return invalid(
      `${q} has no time zone: add Z or an offset like +01:00 (local time is never assumed)`,
    );
  }
  const y = Number(ys);
  const mo = Number(mos);
  const d = Number(ds);
  const h = Number(hs);
  const mi = Number(mis);
  const s = ss === undefined ? 0 : Number(ss);
  if (mo < 1 || mo > 12) return impossible(`${q}: there is no month ${mo}`);
  const days = daysInMonth(y, mo);
  if (d < 1 || d > days) {
    return impossible(
      d < 1 ? `${q}: there is no day 0` : `${q}: ${MONTHS[mo - 1]} ${y} has ${days} days`,
    );
  }
  if (h > 23) return impossible(`${q}: hours run from 00 to 23`);
  if (mi > 59) return impossible(`${q}: minutes run from 00 to 59`);
  if (s > 59) return impossible(`${q}: seconds run from 00 to 59`);
  let offsetMinutes = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (oh > 23 || om > 59) return impossible(`${q}: no zone is ${zone} from UTC`);
    offsetMinutes = sign * (oh * 60 + om);
  }
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, "0"));
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, ms);
  return date.getTime() - offsetMinutes * 60_000;
}

/**
 * Reads `text` as a time (ms since epoch), relative forms counted back from
 * `now`. Returns the problem instead of throwing, so each caller reports it
 * with its own typed error. Never checks against the future: callers decide.
 */
export function readTimeString(text: string, now: number): number | TimeStringProblem {
  const rel = RELATIVE.exec(text);
  if (rel) {
    const [, whole, frac, article, unit] = rel;
    const amount = article !== undefined ? 1 : Number(`${whole}.${frac ?? "0"}`);
    const ms = Math.round(amount * UNIT_MS[unit!.toLowerCase()]!);
    const t = now - ms;
    if (!Number.isFinite(t) || Math.abs(t) > MAX_TIME_MS) {
      return invalid(`${quoteTimeString(text)} is too far back`);
    }
    return t;
  }
  const iso = ISO.exec(text);
  if (iso) return readIso(text, iso);
  if (DATE_ONLY.test(text)) {
    return invalid(
      `${quoteTimeString(text)} is a date without a time and zone: use e.g. ${text}T00:00:00Z`,
    );
  }
  return {
    problem: "unreadable",
    message:
      `cannot read ${quoteTimeString(text)} as a time: use "N minutes|hours|days|weeks ago" ` +
      "or an ISO 8601 time with a zone (2025-01-31T12:00:00Z)",
  };
}
