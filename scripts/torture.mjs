#!/usr/bin/env node
/**
 * `npm run torture`: the long versions of the reliability, fuzz and security
 * suites (issue 7). CI runs the same files with short defaults.
 *
 *   node scripts/torture.mjs [--cases 100000] [--rounds 400] [--seeds 1,2,3,4,5]
 *                            [--kills 210] [--seconds 600]
 *                            [--only fuzz|faults|security|crash|multiprocess]
 *
 * - fuzz: every fuzz suite (test/fuzz/** and test/format/fuzz.test.ts) with
 *   PAGECAST_FUZZ_CASES cases per property (default 100,000).
 * - faults: the replica under injected faults and corruption, once per seed,
 *   with PAGECAST_FAULT_ROUNDS rounds (default 400; the replica behind the
 *   HTTP fault proxy runs a quarter of them, or PAGECAST_PROXY_ROUNDS).
 * - security: the security suite once (set PAGECAST_RGW_ENDPOINT to include
 *   the wrong-secret checks against a real S3).
 * - crash: the crash torture (test/reliability/crash-torture.test.ts) once,
 *   with PAGECAST_CRASH_KILLS SIGKILLs of the writer (default 210, 30 per
 *   target phase) and the first seed; the writer child runs dist/ (built by
 *   `npm run torture`) or PAGECAST_DIST. The faults runs leave it out.
 *
 * - multiprocess: the multi-process torture (issue 11,
 *   test/replicator/multi-process-torture.test.ts) for --seconds (default 600):
 *   the replicator as the CLI daemon and inside an app process, SIGKILLed and
 *   restarted, writers in other processes; markers missed must be 0.
 *
 * Prints the counts the issue's closing note asks for (faults injected, fuzz
 * cases, wrong answers) and exits non-zero when any run failed. Each run's
 * vitest output goes to .tmp/torture/<name>.log.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    cases: { type: "string", default: "100000" },
    rounds: { type: "string", default: "400" },
    seeds: { type: "string", default: "1,2,3,4,5" },
    kills: { type: "string", default: "210" },
    seconds: { type: "string", default: "600" },
    only: { type: "string" },
  },
});

const cases = Number(values.cases);
const rounds = Number(values.rounds);
const seeds = values.seeds.split(",").map((s) => Number(s.trim()));
const kills = Number(values.kills);
const seconds = Number(values.seconds);
if (
  !(cases >= 1) ||
  !(rounds >= 1) ||
  !(kills >= 1) ||
  !(seconds >= 10) ||
  seeds.some((s) => !Number.isSafeInteger(s))
) {
  console.error(
    "usage: node scripts/torture.mjs [--cases N] [--rounds N] [--seeds a,b,c] [--kills N] [--seconds N] [--only fuzz|faults|security|crash|multiprocess]",
  );
  process.exit(2);
}

const logDir = join(".tmp", "torture");
mkdirSync(logDir, { recursive: true });

const CRASH_TEST = "test/reliability/crash-torture.test.ts";
const MP_TEST = "test/replicator/multi-process-torture.test.ts";

/** One vitest invocation. */
function vitest(name, files, env, extraArgs = []) {
  return new Promise((resolve) => {
    const started = Date.now();
    const log = join(logDir, `${name}.log`);
    const args = [
      "vitest",
      "run",
      ...files,
      ...extraArgs,
      "--reporter=default",
      `--outputFile.json=${join(logDir, `${name}.json`)}`,
    ];
    const child = spawn("npx", args, {
      env: { ...process.env, ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("close", (code) => {
      // Colors off for parsing, whatever the reporter decided.
      out = out.replace(/\x1b\[[0-9;]*m/g, "");
      writeFileSync(log, out);
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      console.log(`${code === 0 ? "ok  " : "FAIL"} ${name} (${seconds} s) -> ${log}`);
      resolve({ name, code, out });
    });
  });
}

/** Sums the fault counts and differential outcomes the reliability tests print. */
function tallyFaults(outputs) {
  const totals = {};
  let answers = 0;
  let ioErrors = 0;
  for (const out of outputs) {
    for (const line of out.split("\n")) {
      const faults = /faults (\{[^}]*\})/.exec(line);
      if (faults) {
        for (const [k, v] of Object.entries(JSON.parse(faults[1])))
          totals[k] = (totals[k] ?? 0) + v;
      }
      const eq = /(\d+) equal(?: answers)?, (\d+) SQLITE_IOERR/.exec(line);
      if (eq) {
        answers += Number(eq[1]);
        ioErrors += Number(eq[2]);
      }
    }
  }
  return { totals, answers, ioErrors };
}

const results = [];
const want = (part) => values.only === undefined || values.only === part;

if (want("fuzz")) {
  results.push(
    await vitest("fuzz", ["test/fuzz", "test/format/fuzz.test.ts"], {
      PAGECAST_FUZZ_CASES: String(cases),
    }),
  );
}
if (want("faults")) {
  for (const seed of seeds) {
    results.push(
      await vitest(
        `faults-seed-${seed}`,
        ["test/reliability"],
        { PAGECAST_SEED: String(seed), PAGECAST_FAULT_ROUNDS: String(rounds) },
        [`--exclude=${CRASH_TEST}`],
      ),
    );
  }
}
if (want("security")) results.push(await vitest("security", ["test/security"], {}));
if (want("crash")) {
  results.push(
    await vitest("crash", [CRASH_TEST], {
      PAGECAST_CRASH_KILLS: String(kills),
      PAGECAST_SEED: String(seeds[0]),
    }),
  );
}

if (want("multiprocess")) {
  results.push(
    await vitest("multiprocess", [MP_TEST], {
      PAGECAST_MP_SECONDS: String(seconds),
      PAGECAST_SEED: String(seeds[0]),
    }),
  );
}

/** The crash torture's report line (`[crash-torture] {...}`), when it ran. */
function crashReport(outputs) {
  for (const out of outputs) {
    const m = /\[crash-torture\] (\{.*\})/.exec(out);
    if (m) return JSON.parse(m[1]);
  }
  return undefined;
}

const faults = tallyFaults(results.map((r) => r.out));
const injected = Object.values(faults.totals).reduce((a, b) => a + b, 0);
const failed = results.filter((r) => r.code !== 0);
const crash = crashReport(results.map((r) => r.out));
const mp = (() => {
  for (const r of results) {
    const m = /\[mp-torture\] (\{.*\})/.exec(r.out);
    if (m) return JSON.parse(m[1]);
  }
  return undefined;
})();
const summary = {
  fuzzCasesPerProperty: want("fuzz") ? cases : 0,
  faultRounds: want("faults") ? rounds : 0,
  seeds: want("faults") ? seeds : [],
  faultsInjected: injected,
  faultsByKind: faults.totals,
  differentialAnswersEqual: faults.answers,
  differentialIoErrors: faults.ioErrors,
  crashKills: crash?.kills ?? 0,
  crashKillsByPhase: crash?.killsByPhase ?? {},
  crashRestores: crash ? crash.restores + crash.archiveRestores : 0,
  crashVersionsServed: crash?.versionsServed ?? 0,
  crashWrongAnswers: crash ? crash.wrongAnswers : 0,
  multiProcess: mp ?? null,
  wrongAnswers: failed.some((r) => /WRONG ANSWER/.test(r.out)) ? "SEE LOGS" : 0,
  failedRuns: failed.map((r) => r.name),
};
writeFileSync(join(logDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
// The CLI fuzz and the fault runs print their own counts; keep them in the summary log too.
for (const r of results) {
  for (const line of r.out.split("\n"))
    if (/^\[(replica-faults|fault-proxy|cli-fuzz|crash-torture|mp-torture)/.test(line))
      console.log(line);
}
process.exit(failed.length === 0 ? 0 : 1);
