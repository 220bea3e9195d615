/**
 * Parsing of the moment to travel to. Deterministic: every form is absolute
 * or relative to an explicit `now`, never to the local time zone, and the
 * whole input must match (no "3 hours ago, roughly").
 *
 * Accepted: "N <unit>(s) ago" with units second..week (N may be a decimal:
 * "1.5 hours ago"; "a"/"an" for one: "an hour ago"); ISO 8601 date-times with
 * a zone ("2025-01-31T12:00:00Z", "2025-01-31T13:00:00.5+01:00"); a `Date`;
 * epoch milliseconds; `{ txid }`.
 */
import { TimeTravelError } from "./time-travel-error.js";

/** The moment to travel to. */
export type When = string | Date | number | { txid: number };

/** A parsed moment: an exact TXID, or a time (ms since epoch). */
export type ParsedWhen = { txid: number } | { timestamp: number };

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

/** Largest |ms| a JavaScript Date can hold. */
const MAX_TIME = 8.64e15;

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
}

function invalid(message: string): TimeTravelError {
  return new TimeTravelError("TIME_TRAVEL_INVALID_TIME", message);
}

function impossible(message: string): TimeTravelError {
  return new TimeTravelError("TIME_TRAVEL_IMPOSSIBLE_DATE", message);
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return [31, isLeapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
}

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

function parseIso(text: string, m: RegExpExecArray): number {
  const [, ys, mos, ds, hs, mis, ss, frac, zone] = m;
  if (zone === undefined) {
    throw invalid(
      `${quote(text)} has no time zone: add Z or an offset like +01:00 (local time is never assumed)`,
    );
  }
  const y = Number(ys);
  const mo = Number(mos);
  const d = Number(ds);
  const h = Number(hs);
  const mi = Number(mis);
  const s = ss === undefined ? 0 : Number(ss);
  if (mo < 1 || mo > 12) throw impossible(`${quote(text)}: there is no month ${mo}`);
  const days = daysInMonth(y, mo);
  if (d < 1 || d > days) {
    throw impossible(
      d < 1
        ? `${quote(text)}: there is no day 0`
        : `${quote(text)}: ${MONTHS[mo - 1]} ${y} has ${days} days`,
    );
  }
  if (h > 23) throw impossible(`${quote(text)}: hours run from 00 to 23`);
  if (mi > 59) throw impossible(`${quote(text)}: minutes run from 00 to 59`);
  if (s > 59) throw impossible(`${quote(text)}: seconds run from 00 to 59`);
  let offsetMinutes = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (oh > 23 || om > 59) throw impossible(`${quote(text)}: no zone is ${zone} from UTC`);
    offsetMinutes = sign * (oh * 60 + om);
  }
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, "0"));
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, ms);
  return date.getTime() - offsetMinutes * 60_000;
}

function parseText(text: string, now: number): number {
  const rel = RELATIVE.exec(text);
  if (rel) {
    const [, whole, frac, article, unit] = rel;
    const amount = article !== undefined ? 1 : Number(`${whole}.${frac ?? "0"}`);
    const ms = Math.round(amount * UNIT_MS[unit!.toLowerCase()]!);
    const t = now - ms;
    if (!Number.isFinite(t) || Math.abs(t) > MAX_TIME)
      throw invalid(`${quote(text)} is too far back`);
    return t;
  }
  const iso = ISO.exec(text);
  if (iso) return parseIso(text, iso);
  if (DATE_ONLY.test(text)) {
    throw invalid(`${quote(text)} is a date without a time and zone: use e.g. ${text}T00:00:00Z`);
  }
  throw invalid(
    `cannot read ${quote(text)} as a time: use "N minutes|hours|days|weeks ago", ` +
      "an ISO 8601 time with a zone (2025-01-31T12:00:00Z), a Date, epoch milliseconds or { txid }",
  );
}

/**
 * Parses `when` relative to `now` (ms since epoch). Throws `TimeTravelError`
 * (`TIME_TRAVEL_INVALID_TIME`, `TIME_TRAVEL_IMPOSSIBLE_DATE`,
 * `TIME_TRAVEL_FUTURE`) for anything else.
 */
export function parseWhen(when: When, now: number): ParsedWhen {
  let t: number;
  if (typeof when === "string") {
    t = parseText(when, now);
  } else if (when instanceof Date) {
    t = when.getTime();
    if (Number.isNaN(t)) throw invalid("the Date is invalid");
  } else if (typeof when === "number") {
    if (!Number.isSafeInteger(when) || when < 0 || when > MAX_TIME) {
      throw invalid("epoch milliseconds must be a whole number from 0 to 8.64e15");
    }
    t = when;
  } else if (typeof when === "object" && when !== null && "txid" in when) {
    const txid = (when as { txid: unknown }).txid;
    if (typeof txid !== "number" || !Number.isSafeInteger(txid) || txid < 1) {
      throw invalid("{ txid } needs a whole number >= 1");
    }
    return { txid };
  } else {
    throw invalid("`when` must be a string, a Date, epoch milliseconds or { txid }");
  }
  if (t > now) {
    throw new TimeTravelError(
      "TIME_TRAVEL_FUTURE",
      `${new Date(t).toISOString()} is in the future (now is ${new Date(now).toISOString()})`,
    );
  }
  return { timestamp: t };
}
