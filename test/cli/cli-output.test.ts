/**
 * A CLI that explains itself, with clean output, as users run it: child
 * processes, stdio not a TTY (a pseudo-terminal through script(1) where
 * color is the question), warnings not silenced.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { tempDir } from "../replicator/helpers.js";
import { bin, built, cleanEnv, runCli } from "./cli-process.js";

const s3 = inject("s3");
const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
  .version as string;

/** One flag's help, on one line (`name` as printed after the first dash). */
function flagHelp(help: string, name: string): string {
  const block = help.split("\n  -").find((b) => b.startsWith(name));
  return (block ?? "").split(/\n\s*/).slice(1).join(" ");
}

describe.skipIf(!built)("pagecast CLI output (child processes)", () => {
  const { dir, cleanup } = tempDir("pagecast-cli-output-");
  const db = join(dir, "app.db");
  const replica = `file://${dir}/replica`;
  const home = join(dir, "home");
  const env = cleanEnv({ HOME: home });
  const s3Env = cleanEnv({
    HOME: home,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  });
  const s3Url = `s3://${s3.bucket}/cli-output-${Date.now().toString(36)}?endpoint=${s3.endpoint}`;

  beforeAll(async () => {
    mkdirSync(home);
    execFileSync("/usr/bin/sqlite3", [
      db,
      "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);" +
        "INSERT INTO t(v) SELECT hex(randomblob(50)) FROM generate_series(1, 2000);",
    ]);
    for (const url of [replica, s3Url]) {
      const r = await Replicator.start(
        url === s3Url
          ? {
              db,
              url,
              store: await (await import("../../src/storage/open-node-store.js")).openNodeStore(
                url,
                {
                  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
                },
              ),
            }
          : { db, url },
      );
      await r.close();
      await r.store.close();
    }
  });
  afterAll(() => cleanup());

  test("--help per command: description, defaults with units, URL forms, credentials", async () => {
    const r = await runCli(["replicate", "--help"], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^pagecast replicate: /);
    expect(flagHelp(r.stdout, "-sync-interval DURATION")).toMatch(/\(default 1s\)$/);
    expect(flagHelp(r.stdout, "-checkpoint-pages N")).toMatch(/\(default 1000 WAL pages\)$/);
    expect(r.stdout).toContain("--metrics-addr ADDR");
    expect(r.stdout).toContain("s3://BUCKET/PREFIX[?endpoint=URL&region=NAME&forcePathStyle=");
    expect(r.stdout).toContain("file:///ABSOLUTE/DIR");
    expect(r.stdout).toContain("LITESTREAM_ACCESS_KEY_ID");
    expect(r.stdout).toContain("AWS_ACCESS_KEY_ID");
    expect(r.stdout).toContain("dbs:");

    const restore = await runCli(["restore", "-h"], env);
    expect(restore.code).toBe(0);
    for (const flag of [
      "-o, --output PATH",
      "--overwrite",
      "--if-replica-exists",
      "--if-db-not-exists",
    ]) {
      expect(restore.stdout).toContain(flag);
    }
    expect(restore.stdout).toContain("2 hours ago");

    const ltx = await runCli(["ltx", "--help"], env);
    expect(ltx.code).toBe(0);
    for (const c of ["list", "encode", "apply", "dump", "verify"])
      expect(ltx.stdout).toContain(`ltx ${c}`);
    const ltxList = await runCli(["ltx", "list", "--help"], env);
    expect(flagHelp(ltxList.stdout, "-timeout DURATION")).toMatch(/\(default 30s\)$/);

    const top = await runCli(["-h"], env);
    expect(top.code).toBe(0);
    for (const c of ["replicate", "restore", "status", "verify", "query", "ltx list"]) {
      expect(top.stdout).toContain(`  ${c}`);
    }
    const v = await runCli(["--version"], env);
    expect(v.stdout.trim()).toBe(`pagecast ${version}`);
  });

  test("restore: -o, --if-replica-exists, --overwrite (Litestream's names)", async () => {
    const empty = `file://${dir}/empty-replica`;
    mkdirSync(`${dir}/empty-replica`);
    const out = join(dir, "restored.db");
    const skipped = await runCli(["restore", "--if-replica-exists", "-o", out, empty], env);
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toContain("--if-replica-exists");
    const missing = await runCli(["restore", "-o", out, empty], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("REPLICA_EMPTY");
    expect((await runCli(["restore", "-o", out, replica], env)).code).toBe(0);
    const again = await runCli(["restore", "-o", out, replica], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--overwrite/);
    const replaced = await runCli(["restore", "--overwrite", "-o", out, replica], env);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(execFileSync("/usr/bin/sqlite3", [out, "SELECT count(*) FROM t"]).toString()).toBe(
      "2000\n",
    );
  });

  test("a usage error names the problem and points at --help; exit 2", async () => {
    const r = await runCli(["restore", "--frobnicate", replica], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option --frobnicate");
    expect(r.stderr).toContain("pagecast restore --help");
  });

  test("no AWS SDK Node-version warning, no stray warnings, on S3 commands", async () => {
    const r = await runCli(["ltx", "list", s3Url], s3Env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^9\s+0000000000000001/m);
    expect(r.stderr).not.toMatch(/Warning|NodeVersionSupport/);
    const st = await runCli(["status", s3Url], s3Env);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stderr).toBe("");
  });

  test("missing S3 credentials: the error names the variables to set, quickly", async () => {
    const r = await runCli(["ltx", "list", s3Url, "--timeout", "20s"], env, 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(r.stderr).toMatch(/LITESTREAM_ACCESS_KEY_ID/);
    expect(r.stderr).not.toMatch(/retrying/);
  });

  test("a reader that goes away (| head -1) ends the command quietly", () => {
    const sql =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000) SELECT x FROM c";
    const r = spawnSync(
      "/bin/bash",
      [
        "-c",
        `"${process.execPath}" "${bin}" query "${replica}" "${sql}" | head -1; exit \${PIPESTATUS[0]}`,
      ],
      { env, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.stdout).toBe("x\n"); // the header line
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("verify polls without piling up abort listeners (no MaxListenersExceededWarning)", async () => {
    // No replicator runs: verify polls until its timeout, many times.
    const r = await runCli(["verify", db, replica, "--timeout", "4s"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/MaxListenersExceededWarning|Warning/);
  });

  test("errors on files name the file", async () => {
    writeFileSync(join(dir, "x.bin"), "this is not a database, just some bytes ".repeat(10));
    const encode = spawnSync(process.execPath, [bin, "ltx", "encode", "./x.bin", "./x.ltx"], {
      cwd: dir,
      env,
      encoding: "utf8",
    });
    expect(encode.status).toBe(1);
    expect(encode.stderr).toContain("not a database: ./x.bin");
    const replicate = spawnSync(
      process.execPath,
      [bin, "replicate", "./x.bin", `file://${dir}/x-replica`],
      { cwd: dir, env, encoding: "utf8", timeout: 30_000 },
    );
    expect(replicate.status).toBe(1);
    expect(replicate.stderr).toMatch(/not a database: .*x\.bin/);
  });

  test("time-string errors suggest a valid example; query --at never says 'cannot restore'", async () => {
    const bad = await runCli(
      ["restore", "--timestamp", "yesterday", replica, join(dir, "o.db")],
      env,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/e\.g\. .*2025-01-31T12:00:00Z/);
    const at = await runCli(["query", replica, "SELECT 1", "--at", "bogus"], env);
    expect(at.code).toBe(2);
    expect(at.stderr).toMatch(/like 2025-01-31T12:00:00Z, "2 hours ago" or txid:N/);
    for (const when of ["10 days ago", "txid:99"]) {
      const old = await runCli(["query", replica, "SELECT count(*) FROM t", "--at", when], env);
      expect(old.code).toBe(1);
      expect(old.stderr).toMatch(/not available/);
      expect(old.stderr).not.toMatch(/cannot restore/);
    }
  });

  test("NO_COLOR turns color off on a terminal", () => {
    const onTty = (extra: string) =>
      spawnSync(
        "/usr/bin/script",
        ["-qec", `${extra} "${process.execPath}" "${bin}" status "${replica}"`, "/dev/null"],
        { env, encoding: "utf8", timeout: 60_000 },
      ).stdout;
    expect(onTty("")).toContain("\x1b[");
    expect(onTty("NO_COLOR=1")).not.toContain("\x1b[");
  });
});
