import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { TimeTravelError } from "../../src/time-travel/time-travel-error.js";
import { parseWhen } from "../../src/time-travel/when.js";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0); // 2026-01-15T12:00:00Z

function ts(when: Parameters<typeof parseWhen>[0]): number {
  const r = parseWhen(when, NOW);
  if (!("timestamp" in r)) throw new Error("expected a time");
  return r.timestamp;
}

function code(when: unknown): string {
  try {
    parseWhen(when as never, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(TimeTravelError);
    return (err as TimeTravelError).code;
  }
  return "accepted";
}

describe("parseWhen", () => {
  test("relative times, seconds to weeks", () => {
    expect(ts("30 seconds ago")).toBe(NOW - 30_000);
    expect(ts("1 second ago")).toBe(NOW - 1000);
    expect(ts("a second ago")).toBe(NOW - 1000);
    expect(ts("5 minutes ago")).toBe(NOW - 300_000);
    expect(ts("a minute ago")).toBe(NOW - 60_000);
    expect(ts("an hour ago")).toBe(NOW - 3_600_000);
    expect(ts("1.5 hours ago")).toBe(NOW - 5_400_000);
    expect(ts("24 hours ago")).toBe(NOW - 86_400_000);
    expect(ts("2 days ago")).toBe(NOW - 2 * 86_400_000);
    expect(ts("a day ago")).toBe(NOW - 86_400_000);
    expect(ts("3 weeks ago")).toBe(NOW - 3 * 604_800_000);
    expect(ts("0.25 days ago")).toBe(NOW - 21_600_000);
    expect(ts("2 Hours  Ago")).toBe(NOW - 7_200_000);
    expect(ts("1 hours ago")).toBe(NOW - 3_600_000);
    expect(ts("0 seconds ago")).toBe(NOW);
  });

  test("ISO 8601 with a zone", () => {
    expect(ts("2026-01-15T11:00:00Z")).toBe(NOW - 3_600_000);
    expect(ts("2026-01-15T11:00Z")).toBe(NOW - 3_600_000);
    expect(ts("2026-01-15 11:00:00z")).toBe(NOW - 3_600_000);
    expect(ts("2026-01-15T12:00:00+01:00")).toBe(NOW - 3_600_000);
    expect(ts("2026-01-15T06:30:00-0430")).toBe(NOW - 3_600_000);
    expect(ts("2026-01-15T13:00+02")).toBe(NOW - 3_600_000);
    expect(ts("2026-01-15T11:59:59.25Z")).toBe(NOW - 750);
    expect(ts("2026-01-15T11:59:59,123456789Z")).toBe(NOW - 877);
    expect(ts("2024-02-29T00:00:00Z")).toBe(Date.UTC(2024, 1, 29));
    expect(ts("0099-06-01T00:00:00Z")).toBe(Date.parse("0099-06-01T00:00:00Z"));
  });

  test("Date, epoch milliseconds and TXIDs", () => {
    expect(ts(new Date(NOW - 5))).toBe(NOW - 5);
    expect(ts(NOW - 1000)).toBe(NOW - 1000);
    expect(ts(0)).toBe(0);
    expect(parseWhen({ txid: 42 }, NOW)).toEqual({ txid: 42 });
  });

  test("the future is refused", () => {
    expect(code(new Date(NOW + 1))).toBe("TIME_TRAVEL_FUTURE");
    expect(code(NOW + 60_000)).toBe("TIME_TRAVEL_FUTURE");
    expect(code("2026-01-15T12:00:01Z")).toBe("TIME_TRAVEL_FUTURE");
    expect(code("2026-01-15T12:00:00-01:00")).toBe("TIME_TRAVEL_FUTURE");
    expect(() => parseWhen("2030-01-01T00:00:00Z", NOW)).toThrow(/in the future/);
  });

  test("impossible dates and times are refused", () => {
    expect(code("2025-02-29T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-02-30T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(() => parseWhen("2025-02-30T00:00:00Z", NOW)).toThrow(/February 2025 has 28 days/);
    expect(code("2025-04-31T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-13-01T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-00-10T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-01-00T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-01-01T24:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-01-01T23:60:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-01-01T23:59:60Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-01-01T00:00:00+24:00")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("2025-01-01T00:00:00+01:60")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
    expect(code("1900-02-29T00:00:00Z")).toBe("TIME_TRAVEL_IMPOSSIBLE_DATE");
  });

  test("garbage and ambiguous input is refused", () => {
    for (const bad of [
      "",
      "yesterday",
      "now",
      "an hour from now",
      "3 hours ago, roughly",
      " 3 hours ago",
      "3 hours ago ",
      "3 fortnights ago",
      "-3 hours ago",
      "3hours ago",
      "1e3 seconds ago",
      ".5 hours ago",
      "1.5.2 hours ago",
      "2025-01-15T11:00:00", // no zone: local time is never assumed
      "2025-01-15",
      "2025-1-15T11:00:00Z",
      "15/01/2025",
      "1736938800000",
      "2025-01-15T11:00:00Z trailing",
      "2025-01-15T11:00:00+1",
      "2026-01-15T13+02",
    ]) {
      expect(code(bad), bad).toBe("TIME_TRAVEL_INVALID_TIME");
    }
    expect(() => parseWhen("2025-01-15T11:00:00", NOW)).toThrow(/no time zone/);
    expect(code(new Date(Number.NaN))).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(-1)).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(1.5)).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(Number.POSITIVE_INFINITY)).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(9e15)).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code({ txid: 0 })).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code({ txid: 1.5 })).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code({ txid: "3" })).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(null)).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(undefined)).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code(["1 hour ago"])).toBe("TIME_TRAVEL_INVALID_TIME");
    expect(code("999999999999 weeks ago")).toBe("TIME_TRAVEL_INVALID_TIME");
    // Long inputs are not echoed whole.
    const long = `${"x".repeat(10_000)}`;
    expect(() => parseWhen(long, NOW)).toThrow(/^cannot read "x{61}\.\.\."/);
  });

  test("any input: a time at or before now, or a typed error", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.stringMatching(/^\d{1,14}(\.\d{1,8})? (second|minute|hour|day|week)s? ago$/),
          fc.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})$/),
          fc.integer(),
          fc.double(),
          fc.date({ noInvalidDate: false }),
        ),
        (input) => {
          try {
            const r = parseWhen(input as never, NOW);
            if ("timestamp" in r) {
              expect(Number.isFinite(r.timestamp)).toBe(true);
              expect(r.timestamp).toBeLessThanOrEqual(NOW);
            }
          } catch (err) {
            expect(err).toBeInstanceOf(TimeTravelError);
          }
        },
      ),
      { numRuns: 3000 },
    );
    // Valid ISO strings agree with the platform's parser.
    fc.assert(
      fc.property(fc.date({ min: new Date(0), max: new Date(NOW), noInvalidDate: true }), (d) => {
        expect(ts(d.toISOString())).toBe(d.getTime());
      }),
      { numRuns: 500 },
    );
  });
});
