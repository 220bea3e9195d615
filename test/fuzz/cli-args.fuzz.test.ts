/**
 * Fuzzing the command line (src/cli/main.ts `main(argv, io)`) with random
 * argv built from the real commands, flags, fixture files, memory:// replicas,
 * unreachable stores and random strings. Outcome: exit code 0, 1 or 2, no
 * thrown error, no stack trace on stderr, no hang (each run is bounded), and
 * no file written outside the scratch directory (the process runs in it).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { encodeDatabaseFile } from "../../src/cli/ltx-encode.js";
import { main } from "../../src/cli/main.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { ScriptedWriter } from "../vfs/helpers.js";
import { FUZZ_CASES, fuzzParams, fuzzTimeout } from "./fuzz-config.js";

// Each run may open a replica (a wasm instance): 250 in CI, PAGECAST_FUZZ_CASES in the torture run.
const RUNS = process.env.PAGECAST_FUZZ_CASES ? FUZZ_CASES : 250;
/** Longest a single CLI run may take before it counts as a hang. */
const RUN_LIMIT_MS = 20_000;
const s3 = inject("s3");

let dir = "";
let cwd = "";
let writer: ScriptedWriter | undefined;
const savedEnv = { ...process.env };

beforeAll(async () => {
  cwd = process.cwd();
  dir = mkdtempSync(join(tmpdir(), "pagecast-cli-fuzz-"));
  const db = new Database(join(dir, "app.db"));
  db.exec(
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'), ('b');",
  );
  db.close();
  await encodeDatabaseFile(join(dir, "app.db"), join(dir, "snap.ltx"), { txid: 3 });
  writeFileSync(join(dir, "garbage.ltx"), "LTX1 definitely not an LTX file");
  writeFileSync(join(dir, "empty.ltx"), "");
  mkdirSync(join(dir, "somedir"));
  // A replica the query command can really read.
  writer = new ScriptedWriter(new MemoryStore({ name: "clifuzz" }));
  await writer.commit("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
  await writer.commit("INSERT INTO users (name) VALUES ('ann'), ('bob'), ('cy')");
  // Credentials for any s3:// URL, and no instance-metadata probing (it would stall).
  process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
  process.env.AWS_REGION = s3.region;
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  // Every relative path the fuzzer invents lands in the scratch directory.
  process.chdir(dir);
});

afterAll(() => {
  process.chdir(cwd);
  process.env = savedEnv;
  writer?.close();
  rmSync(dir, { recursive: true, force: true });
});

const word = fc.constantFrom(
  "ltx",
  "encode",
  "apply",
  "dump",
  "verify",
  "list",
  "query",
  "replicate",
  "restore",
  "status",
  "help",
  "--help",
  "-h",
  "--version",
);
const flag = fc.constantFrom(
  "--txid",
  "--txid=0",
  "--txid=18446744073709551616",
  "--at",
  "--at=txid:2",
  "--at=2025-01-01T00:00:00Z",
  "--at=3000-01-01T00:00:00Z",
  "--at=txid:0",
  "--json",
  "--json=1",
  "--timestamp",
  "--timestamp=0",
  "--concurrency=0",
  "--concurrency=100000",
  "--no-integrity-check",
  "-integrity-check",
  "-integrity-check=full",
  "--integrity-check=bogus",
  "--sync-interval=0s",
  "--sync-interval=1e9h",
  "--",
  "-",
  "--unknown",
  "--=",
  "--help",
);
const path = fc.constantFrom(
  "app.db",
  "snap.ltx",
  "garbage.ltx",
  "empty.ltx",
  "somedir",
  "out.db",
  "out.ltx",
  "missing.db",
  "nested/missing/x.ltx",
  "/nonexistent-pagecast-dir/x.db",
  "",
  ".",
);
const url = fc.oneof(
  {
    weight: 40,
    arbitrary: fc.constantFrom(
      "memory://clifuzz",
      "memory://clifuzz/sub",
      "memory://empty-store",
      "memory://bad name",
      "memory://",
      `s3://${s3.bucket}/nothing-here?endpoint=${encodeURIComponent(s3.endpoint)}`,
      "s3://user:secret@bucket/x",
      "file:///nonexistent-pagecast-dir",
      "file://relative",
      "http://example.com",
    ),
  },
  // Unreachable storage: each such run waits out the store's retries (~1 s), so keep it rare.
  {
    weight: 1,
    arbitrary: fc.constant("s3://pagecast-no-such-bucket/x?endpoint=http://127.0.0.1:1"),
  },
);
const sql = fc.constantFrom(
  "SELECT * FROM users",
  "SELECT count(*) FROM users",
  "SELECT 1; SELECT 2",
  "DELETE FROM users",
  "CREATE TABLE x (y)",
  "PRAGMA quick_check",
  "PRAGMA writable_schema=ON",
  "ATTACH 'other.db' AS o",
  "VACUUM INTO 'copy.db'",
  "SELECT * FROM no_such_table",
  "SELEKT",
  "",
  ";",
  "SELECT ?",
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 5000) SELECT sum(x) FROM c",
);
const value = fc.oneof(
  fc.constantFrom(
    "0",
    "1",
    "2",
    "-1",
    "1e99",
    "NaN",
    "txid:1",
    "txid:99999",
    "9007199254740993",
    "2025-02-30T00:00:00Z",
    "3 hours ago",
  ),
  fc
    .string({ maxLength: 16, unit: "binary" })
    // Relative and inside the scratch directory: never an absolute path or a parent directory.
    .map((s) => s.replace(/\.\./g, "_").replace(/^[/\\]+/, "_")),
);
const token = fc.oneof(
  { weight: 3, arbitrary: word },
  { weight: 3, arbitrary: flag },
  { weight: 3, arbitrary: path },
  { weight: 2, arbitrary: url },
  { weight: 2, arbitrary: sql },
  { weight: 2, arbitrary: value },
);

/** Plausible command prefixes, so the fuzzer gets past the command lookup most of the time. */
const argv = fc.oneof(
  fc.array(token, { maxLength: 6 }),
  fc
    .tuple(
      fc.constantFrom(
        ["ltx", "encode"],
        ["ltx", "apply"],
        ["ltx", "dump"],
        ["ltx", "verify"],
        ["ltx", "list"],
        ["query"],
        ["restore"],
        ["status"],
      ),
      fc.array(token, { maxLength: 5 }),
    )
    .map(([head, rest]) => [...head, ...rest]),
  fc.tuple(url, sql, fc.array(flag, { maxLength: 2 })).map(([u, q, f]) => ["query", u, q, ...f]),
);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[]): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const controller = new AbortController();
  // Long-running commands (replicate) stop like on Ctrl-C.
  const stop = setTimeout(() => controller.abort(), 1000);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const code = await Promise.race([
      main(args, {
        stdout: (t) => {
          stdout += t;
        },
        stderr: (t) => {
          stderr += t;
        },
        isTTY: false,
        env: { ...process.env },
        signal: controller.signal,
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`hang: ${JSON.stringify(args)} ran over ${RUN_LIMIT_MS} ms`)),
          RUN_LIMIT_MS,
        );
      }),
    ]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(stop);
    clearTimeout(timer);
  }
}

describe(`fuzz: CLI arguments (${RUNS} runs)`, () => {
  test(
    "exit codes 0/1/2 only, nothing thrown, no stack traces, no hang",
    async () => {
      const codes = new Map<number, number>();
      const untyped: string[] = [];
      await fc.assert(
        fc.asyncProperty(argv, async (args) => {
          const label = JSON.stringify(args);
          const out = await run(args);
          expect([0, 1, 2], label).toContain(out.code);
          expect(out.stderr, label).not.toMatch(/\n\s+at .+:\d+:\d+/);
          if (out.stderr.includes("unexpected error"))
            untyped.push(`${label} -> ${out.stderr.trim()}`);
          codes.set(out.code, (codes.get(out.code) ?? 0) + 1);
        }),
        fuzzParams(RUNS),
      );
      // Everything stayed in the scratch directory (the process ran there).
      const entries = readdirSync(dir);
      expect(entries).toContain("app.db");
      console.info(
        `[cli-fuzz] ${RUNS} runs, exit codes ${JSON.stringify(Object.fromEntries(codes))}; ` +
          `${untyped.length} untyped failures reported as "unexpected error"` +
          (untyped.length ? `, e.g. ${untyped.slice(0, 3).join(" | ")}` : ""),
      );
    },
    fuzzTimeout(60, RUNS),
  );
});
