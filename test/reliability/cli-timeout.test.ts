/**
 * The one-shot commands as users run them (a child process, stdio not a
 * TTY) against an S3 endpoint that accepts connections and never answers:
 * each fails in about its `--timeout` with a typed error, printing retry
 * progress on stderr as attempts fail, and leaves no output file or stray
 * process. Also: the same commands answer through a healthy endpoint, and
 * through a server whose clock is 400 days ahead of this host's.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { type FaultProxy, startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const s3 = inject("s3");
const bin = new URL("../../bin/pagecast.js", import.meta.url).pathname;
const built = existsSync(new URL("../../dist/cli/main.js", import.meta.url));
const prefix = `cli-timeout-${Date.now().toString(36)}`;
const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  AWS_REGION: s3.region,
  AWS_EC2_METADATA_DISABLED: "true",
  NODE_NO_WARNINGS: "1",
};

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI as a child process; kills it (and fails) after `limitMs`. */
function cli(args: string[], limitMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [bin, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    const killer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pagecast ${args[0]} still running after ${limitMs} ms: ${stderr}`));
    }, limitMs);
    child.on("close", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

let work: { dir: string; cleanup: () => void };
let blackhole: FaultProxy;
let skewed: FaultProxy;
let dbPath: string;
const url = (endpoint: string) =>
  `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}`;

beforeAll(async () => {
  work = tempDir("pagecast-cli-timeout-");
  dbPath = join(work.dir, "app.db");
  const app = openApp(dbPath);
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('hello')");
  const store = new S3Store({
    bucket: s3.bucket,
    prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const replicator = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
  await replicator.sync();
  await replicator.close();
  await store.close();
  app.close();
  blackhole = await startFaultProxy(s3.endpoint);
  blackhole.blackhole = true;
  // A server clock 400 days ahead: this host's signatures are refused until corrected.
  skewed = await startFaultProxy({ target: s3.endpoint, clock: { offsetMs: 400 * 86_400_000 } });
});

afterAll(async () => {
  await blackhole?.close();
  await skewed?.close();
  work?.cleanup();
});

describe.skipIf(!built).concurrent("one-shot commands against a hung endpoint", () => {
  test("query with the default --timeout: retry progress on stderr, STORE_TIMEOUT after about 30 s", async () => {
    const r = await cli(["query", url(blackhole.endpoint), "SELECT v FROM t"], 60_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /pagecast: S3 get "pagecast-head.json" failed \(timeout: no data for 10 s\), retrying 2\/5/,
    );
    expect(r.stderr).toMatch(/retrying 3\/5/);
    // The request's own deadline, or (when a loaded machine started it late) the command's.
    expect(r.stderr).toMatch(/no answer within 30 s.*\[(STORE_TIMEOUT|CLI_TIMEOUT)\]/);
    expect(r.ms).toBeGreaterThanOrEqual(29_000);
    expect(r.ms).toBeLessThan(45_000);
    console.log(
      `pagecast query, dead endpoint, default --timeout: exit 1 after ${(r.ms / 1000).toFixed(1)} s`,
    );
  });

  test.each([
    ["ltx list", ["ltx", "list"]],
    ["status", ["status"]],
    ["query", ["query", "SELECT 1"]],
  ])("%s --timeout 5s fails in about 5 s with a typed error", async (_name, command) => {
    const args =
      command[0] === "query"
        ? ["query", url(blackhole.endpoint), command[1]!, "--timeout", "5s"]
        : [...command, url(blackhole.endpoint), "--timeout", "5s"];
    const r = await cli(args, 40_000);
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(
      /no answer within 5 s.*\[(STORE_TIMEOUT|CLI_TIMEOUT)\]/,
    );
    expect(r.ms).toBeLessThan(5_000 + 20_000);
  });

  test("restore --timeout 5s fails in about 5 s and leaves no file behind", async () => {
    const out = join(work.dir, "restored.db");
    const r = await cli(["restore", url(blackhole.endpoint), out, "--timeout", "5s"], 40_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no answer within 5 s.*\[STORE_TIMEOUT\]/);
    expect(r.ms).toBeLessThan(5_000 + 20_000);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work.dir).filter((f) => f.includes("restored"))).toEqual([]);
  });

  test("verify --timeout 5s gives up in about 5 s naming the storage problem", async () => {
    const r = await cli(["verify", dbPath, url(blackhole.endpoint), "--timeout", "5s"], 40_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/marker not visible after 5 s/);
    expect(r.stderr).toMatch(/last error: .*(timeout|no answer)/);
    expect(r.ms).toBeLessThan(5_000 + 20_000);
  });

  test("the same commands answer through a healthy endpoint", async () => {
    const q = await cli(["query", url(s3.endpoint), "SELECT v FROM t", "--timeout", "20s"], 40_000);
    expect(q.stderr).toBe("");
    expect(q.stdout).toBe("v\nhello\n");
    const l = await cli(["ltx", "list", url(s3.endpoint), "--json"], 40_000);
    expect(l.code).toBe(0);
    expect(JSON.parse(l.stdout).length).toBeGreaterThan(0);
    const bad = await cli(["ltx", "list", url(s3.endpoint), "--timeout", "soon"], 40_000);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--timeout must be a duration/);
  });

  test("a server clock 400 days ahead: query and restore correct the offset and answer", async () => {
    const refusedBefore = skewed.skewRefusals;
    const q = await cli(["query", url(skewed.endpoint), "SELECT v FROM t"], 40_000);
    expect(q.stdout).toBe("v\nhello\n");
    expect(q.code).toBe(0);
    // Refused once for the skew (reported like any failed attempt), then corrected.
    expect(q.stderr).toMatch(/RequestTimeTooSkewed/);
    const out = join(work.dir, "skewed.db");
    const r = await cli(["restore", url(skewed.endpoint), out], 40_000);
    expect(r.code).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(skewed.skewRefusals - refusedBefore).toBeGreaterThanOrEqual(2);
  });
});
