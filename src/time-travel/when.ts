/**
 * Parsing of the moment to travel to. Deterministic: every form is absolute
 * or relative to an explicit `now`, never to the local time zone, and the
 * whole input must match (no "3 hours ago, roughly").
 *
 * Accepted: the strings `readTimeString` reads (src/vfs/time-string.ts:
 * "N <unit>(s) ago", ISO 8601 date-times with a zone); a `Date`; epoch
 * milliseconds; `{ txid }`.
 */
import { MAX_TIME_MS, quoteTimeString, readTimeString } from "../vfs/time-string.js";
import { TimeTravelError } from "./time-travel-error.js";

/** The moment to travel to. */
export type When = string | Date | number | { txid: number };

/** A parsed moment: an exact TXID, or a time (ms since epoch). */
export type ParsedWhen = { txid: number } | { timestamp: number };

function invalid(message: string): TimeTravelError {
  return new TimeTravelError("TIME_TRAVEL_INVALID_TIME", message);
}

function parseText(text: string, now: number): number {
  const t = readTimeString(text, now);
  if (typeof t === "number") return t;
  switch (t.problem) {
    case "impossible":
      throw new TimeTravelError("TIME_TRAVEL_IMPOSSIBLE_DATE", t.message);
    case "invalid":
      throw invalid(t.message);
    default:
      throw invalid(
        `cannot read ${quoteTimeString(text)} as a time: use "N minutes|hours|days|weeks ago", ` +
          "an ISO 8601 time with a zone (2025-01-31T12:00:00Z), a Date, epoch milliseconds or { txid }",
      );
  }
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
    if (!Number.isSafeInteger(when) || when < 0 || when > MAX_TIME_MS) {
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
