/**
 * Fuzzing time strings: time travel's `parseWhen` (src/time-travel/when.ts)
 * and the replica's `at` option. Outcome: a parsed moment that is never in
 * the future and never depends on the process time zone, or a typed error.
 */
import fc from "fast-check";
import { afterEach, describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { parseWhen, type When } from "../../src/time-travel/index.js";
import { openReplica } from "../../src/vfs/index.js";
import { readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";
import { assertProperty, expectTyped, FUZZ_CASES, fuzzParams, fuzzTimeout } from "./fuzz-config.js";

const NOW = Date.UTC(2025, 10, 22, 12, 0, 0);
const WHEN_CODES = /^TIME_TRAVEL_(INVALID_TIME|IMPOSSIBLE_DATE|FUTURE)$/;
const ZONES = [
  "UTC",
  "Pacific/Kiritimati",
  "America/St_Johns",
  "Asia/Kathmandu",
  "Pacific/Pago_Pago",
];

const savedTz = process.env.TZ;
afterEach(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const pad = (n: number, w: number) => String(n).padStart(w, "0");

const relative = fc
  .record({
    amount: fc.oneof(
      fc.nat({ max: 10_000 }).map(String),
      fc.constantFrom(
        "a",
        "an",
        "A",
        "1.5",
        "0",
        "0.000001",
        "999999999999",
        "1e3",
        "-1",
        "+1",
        ".5",
        "1.",
        "١",
      ),
    ),
    space: fc.constantFrom(" ", "  ", "\t", "", "\u00a0"),
    unit: fc.constantFrom(
      "second",
      "minute",
      "hour",
      "day",
      "week",
      "month",
      "year",
      "ms",
      "Hours",
      "DAYS",
    ),
    plural: fc.constantFrom("", "s"),
    tail: fc.constantFrom(" ago", " ago ", "ago", " AGO", " from now", ""),
  })
  .map((r) => `${r.amount}${r.space}${r.unit}${r.plural}${r.tail}`);

const iso = fc
  .record({
    y: fc.oneof(
      fc.integer({ min: 1900, max: 2100 }),
      fc.constantFrom(0, 1, 99, 9999, 10000, 275760),
    ),
    mo: fc.integer({ min: 0, max: 13 }),
    d: fc.integer({ min: 0, max: 32 }),
    h: fc.integer({ min: 0, max: 25 }),
    mi: fc.integer({ min: 0, max: 61 }),
    s: fc.option(fc.integer({ min: 0, max: 61 })),
    frac: fc.option(fc.stringMatching(/^[0-9]{1,12}$/)),
    sep: fc.constantFrom("T", "t", " ", "_"),
    zone: fc.constantFrom(
      "Z",
      "z",
      "",
      "+00:00",
      "+01:00",
      "-05:30",
      "+0530",
      "+05",
      "+24:00",
      "-12:60",
      "+14:00",
      "UTC",
    ),
  })
  .map(
    (t) =>
      `${pad(t.y, 4)}-${pad(t.mo, 2)}-${pad(t.d, 2)}${t.sep}${pad(t.h, 2)}:${pad(t.mi, 2)}` +
      `${t.s === null ? "" : `:${pad(t.s, 2)}${t.frac === null ? "" : `.${t.frac}`}`}${t.zone}`,
  );

const when: fc.Arbitrary<When> = fc.oneof(
  { weight: 3, arbitrary: relative },
  { weight: 3, arbitrary: iso },
  { weight: 2, arbitrary: fc.string({ maxLength: 40, unit: "binary" }) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(
        0,
        -1,
        NOW,
        NOW + 1,
        8.64e15,
        8.64e15 + 1,
        Number.NaN,
        Number.POSITIVE_INFINITY,
      ),
    ),
  },
  { weight: 1, arbitrary: fc.date({ noInvalidDate: false }) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.record({ txid: fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 53)) }),
      fc.constantFrom({ txid: "5" }, { txid: null }, {}, [], null) as fc.Arbitrary<When>,
    ),
  },
);

/** The outcome of parsing, comparable across time zones. */
function outcome(w: When): string {
  try {
    const parsed = parseWhen(w, NOW);
    if ("txid" in parsed) {
      expect(Number.isSafeInteger(parsed.txid) && parsed.txid >= 1).toBe(true);
    } else {
      expect(Number.isFinite(parsed.timestamp)).toBe(true);
      expect(parsed.timestamp).toBeLessThanOrEqual(NOW);
      expect(Math.abs(parsed.timestamp)).toBeLessThanOrEqual(8.64e15);
    }
    return JSON.stringify(parsed);
  } catch (err) {
    expectTyped(err, WHEN_CODES, fc.stringify(w));
    return (err as { code: string }).code;
  }
}

describe(`fuzz: time strings (${FUZZ_CASES} cases per property)`, () => {
  test(
    "parseWhen: a past moment or a typed error, identical in every time zone",
    async () => {
      let accepted = 0;
      await assertProperty(
        fc.property(when, (w) => {
          process.env.TZ = "UTC";
          const first = outcome(w);
          for (const zone of ZONES.slice(1)) {
            process.env.TZ = zone;
            expect(outcome(w), `${fc.stringify(w)} in ${zone}`).toBe(first);
          }
          if (!first.startsWith("TIME_TRAVEL")) accepted++;
        }),
      );
      expect(accepted).toBeGreaterThan(FUZZ_CASES / 20);
    },
    fuzzTimeout(2),
  );

  test(
    "ISO times with a zone agree with the ECMAScript parser where it is exact",
    async () => {
      await assertProperty(
        fc.property(
          fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(NOW), noInvalidDate: true }),
          fc.constantFrom("Z", "+00:00", "+02:00", "-07:30"),
          (d, zone) => {
            const minutes =
              zone === "Z"
                ? 0
                : (zone[0] === "-" ? -1 : 1) *
                  (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4)));
            const local = new Date(d.getTime() + minutes * 60_000).toISOString().slice(0, 23);
            const text = `${local}${zone}`;
            expect(parseWhen(text, NOW)).toEqual({ timestamp: Date.parse(text) });
          },
        ),
      );
    },
    fuzzTimeout(1),
  );

  test(
    "replica `at` strings: a pinned replica or a typed error",
    async () => {
      const mem = new MemoryStore();
      const writer = new ScriptedWriter(mem);
      await writer.commit("CREATE TABLE t (x)");
      await writer.commit("INSERT INTO t VALUES (1)");
      const runs = Math.max(20, Math.floor(FUZZ_CASES / 20));
      try {
        await fc.assert(
          fc.asyncProperty(fc.oneof(iso, relative, fc.string({ maxLength: 30 })), async (at) => {
            try {
              const replica = await openReplica({ store: mem, wasm: readSqliteWasm, at });
              expect(replica.status().pinned).toBe(true);
              await replica.close();
            } catch (err) {
              expectTyped(err, /^(REPLICA_INVALID_ARGUMENT|RESTORE_TARGET_UNAVAILABLE)$/, at);
            }
          }),
          fuzzParams(runs),
        );
      } finally {
        writer.close();
      }
    },
    fuzzTimeout(100, Math.max(20, Math.floor(FUZZ_CASES / 20))),
  );

  /*
   * `at` strings (openReplica, CLI --at/--timestamp) are read by the same
   * strict parser as time travel: an ISO date-time without a zone is refused
   * (never read as local time), so the state shown never depends on TZ.
   */
  test("a pinned replica's `at` string does not depend on the time zone", async () => {
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem); // TXID n committed at 2025-01-01T00:00:0n Z
    for (let i = 0; i < 6; i++) await writer.commit(`CREATE TABLE t${i} (x)`);
    const txids: (number | string)[] = [];
    for (const zone of ["UTC", "Pacific/Kiritimati"]) {
      process.env.TZ = zone;
      const r = await openReplica({
        store: mem,
        wasm: readSqliteWasm,
        at: "2025-01-01T00:00:04",
      }).catch((e: { code: string }) => e.code);
      txids.push(typeof r === "string" ? r : (r.status().txid ?? 0));
      if (typeof r !== "string") await r.close();
    }
    writer.close();
    expect(txids[1]).toBe(txids[0]);
  });
});
