/**
 * `pagecast replicate -config FILE` as operators run it (a child process,
 * stdio not a TTY), with a Litestream-style YAML file: two explicit
 * databases (one on S3 with Litestream's credential variables, one in
 * rollback-journal mode on a directory), a database whose replica is
 * unreachable (the others must keep replicating), and a `dir` + `pattern`
 * entry with `watch: true` where a database created while running is picked
 * up. Applications write from other processes (Debian's sqlite3). Metrics
 * are scraped over HTTP; every database restores, by its path in the file,
 * equal to its primary.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, inject, test } from "vitest";
import { tempDir } from "../replicator/helpers.js";
import { createBucket, rgwServer } from "../support/s3-server.js";
import { built, cleanEnv, type Daemon, runCli, startCli } from "./cli-process.js";

const s3 = inject("s3");
/** Real S3 (Ceph RGW) when PAGECAST_RGW_ENDPOINT is set: one more database, its credentials in the file. */
const rgw = rgwServer();
const sqlite = (db: string, sql: string) => execFileSync("/usr/bin/sqlite3", [db, sql]).toString();
const dump = (db: string) => sqlite(db, ".dump");

/** `pagecast_txid` per `db` label in a scrape. */
function txids(scrape: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of scrape.matchAll(/^pagecast_txid\{db="([^"]+)",url="[^"]*"\} (\d+)$/gm)) {
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function scrape(base: string, path = "/metrics"): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Polls the metrics until `ok` holds for the scrape (rejects after `limitMs`). */
async function until(
  base: string,
  ok: (t: Map<string, number>, body: string) => boolean,
  limitMs = 30_000,
): Promise<string> {
  const end = Date.now() + limitMs;
  let body = "";
  while (Date.now() < end) {
    body = (await scrape(base)).body;
    if (ok(txids(body), body)) return body;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`metrics never matched:\n${body}`);
}

describe.skipIf(!built)("pagecast replicate -config (child processes)", () => {
  const { dir, cleanup } = tempDir("pagecast-config-");
  const prefix = `cfg-${Date.now().toString(36)}`;
  const a = join(dir, "a.db");
  const b = join(dir, "b.db");
  const broken = join(dir, "broken.db");
  const tenants = join(dir, "tenants");
  const one = join(tenants, "one.db");
  const two = join(tenants, "two.db");
  const gone = join(tenants, "gone.db");
  const onRgw = join(dir, "rgw.db");
  const rgwBucket = `pagecast-config-${Date.now().toString(36)}`;
  const config = join(dir, "litestream.yml");
  const env = cleanEnv({
    LITESTREAM_ACCESS_KEY_ID: s3.accessKeyId,
    LITESTREAM_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_ENDPOINT: s3.endpoint,
  });
  let daemon: Daemon | undefined;
  afterAll(async () => {
    await daemon?.stop();
    cleanup();
  });

  test("replicates every database, survives a broken one, picks up new ones, restores by path", async () => {
    mkdirSync(tenants, { recursive: true });
    const create = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v);";
    const rows = (n: number) =>
      `INSERT INTO t(v) SELECT hex(randomblob(200)) FROM generate_series(1, ${n});`;
    sqlite(a, `PRAGMA journal_mode=WAL; ${create} ${rows(300)}`);
    sqlite(b, `${create} ${rows(50)}`); // rollback-journal mode: the replicator switches it
    sqlite(broken, `PRAGMA journal_mode=WAL; ${create}`);
    sqlite(one, `PRAGMA journal_mode=WAL; ${create} ${rows(20)}`);
    sqlite(gone, `PRAGMA journal_mode=WAL; ${create} ${rows(5)}`);
    const rgwEntry: string[] = [];
    if (rgw) {
      await createBucket(rgw.endpoint, rgwBucket, rgw.credentials);
      sqlite(onRgw, `PRAGMA journal_mode=WAL; ${create} ${rows(100)}`);
      rgwEntry.push(
        `  - path: ${onRgw}`,
        "    replica:",
        `      url: s3://${rgwBucket}/app?endpoint=${rgw.endpoint}`,
        `      access-key-id: ${rgw.credentials.accessKeyId}`,
        `      secret-access-key: ${rgw.credentials.secretAccessKey}`,
      );
    }
    const replicated = rgw ? [a, b, one, onRgw] : [a, b, one];
    writeFileSync(
      config,
      [
        'addr: "127.0.0.1:0"',
        "sync-interval: 200ms",
        "dbs:",
        `  - path: ${a}`,
        "    replica:",
        "      type: s3",
        `      bucket: ${s3.bucket}`,
        `      path: ${prefix}/a`,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's own ${VAR} expansion
        "      endpoint: ${S3_ENDPOINT}",
        `      region: ${s3.region}`,
        "      force-path-style: true",
        `  - path: ${b}`,
        "    monitor-interval: 1s",
        "    replica:",
        `      url: file://${dir}/replicas/b`,
        `  - path: ${broken}`,
        "    replica:",
        `      url: s3://${s3.bucket}/broken?endpoint=http://127.0.0.1:1`,
        `  - dir: ${tenants}`,
        '    pattern: "*.db"',
        "    watch: true",
        "    replica:",
        `      url: file://${dir}/replicas/tenants`,
        ...rgwEntry,
        "",
      ].join("\n"),
    );

    daemon = startCli(["replicate", "-config", config], env);
    const [, base] = await daemon.waitFor(/metrics on (http:\/\/\S+)\/metrics/);
    // Litestream's key pagecast does not act on: a warning with its line, not silence.
    expect(daemon.stderr()).toMatch(/warning: .*litestream\.yml:13: .*monitor-interval/);
    const first = await until(base!, (t) =>
      [...replicated, gone].every((p) => (t.get(p) ?? 0) >= 1),
    );
    const before = txids(first);
    expect(daemon.stderr()).toMatch(/switched the database from rollback-journal mode/);

    // Writes from other processes, and a database created while running.
    for (let i = 0; i < 3; i++) {
      sqlite(a, rows(40));
      sqlite(b, rows(10));
      sqlite(one, `UPDATE t SET v = hex(randomblob(100)) WHERE id % 3 = ${i};`);
      if (rgw) sqlite(onRgw, rows(25));
    }
    sqlite(two, `PRAGMA journal_mode=WAL; ${create} ${rows(30)}`);
    // A database deleted from a watched directory stops being replicated.
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${gone}${suffix}`, { force: true });
    const after = await until(
      base!,
      (t, body) =>
        replicated.every((p) => (t.get(p) ?? 0) > before.get(p)!) &&
        (t.get(two) ?? 0) >= 1 &&
        !t.has(gone) &&
        // A start against a refused endpoint fails only after its retries.
        /pagecast_database_failures_total\{db="[^"]*broken\.db"[^}]*\} [1-9]/.test(body),
      90_000,
    );
    // The broken database is retried (between attempts, or starting again),
    // never replicating, and does not hold up the others.
    expect(after).toMatch(
      new RegExp(
        `pagecast_database_state\\{db="${broken}",url="[^"]*",state="(retrying|starting)"\\} 1`,
      ),
    );
    expect(after).not.toMatch(
      new RegExp(`pagecast_database_state\\{db="${broken}",url="[^"]*",state="replicating"\\} 1`),
    );
    expect(after).toMatch(/pagecast_sync_duration_seconds_count\{db="[^"]*a\.db"[^}]*\} [1-9]/);
    expect(after).toMatch(/# TYPE pagecast_checkpoints_total counter/);
    const health = await scrape(base!, "/healthz");
    expect(health.status).toBe(503);
    const report = JSON.parse(health.body) as {
      databases: { db: string; state: string; lastError: string | null }[];
    };
    expect(["retrying", "starting"]).toContain(
      report.databases.find((d) => d.db === broken)?.state,
    );
    expect(report.databases.find((d) => d.db === a)).toMatchObject({ state: "replicating" });

    expect(await daemon.stop()).toBe(0);
    expect(daemon.stderr()).not.toMatch(/Warning|unexpected error/);

    // Every database restores by its path in the file, equal to its primary.
    for (const db of [...replicated, two]) {
      const out = `${db}.restored`;
      const r = await runCli(["restore", "-config", config, "-o", out, db], env);
      expect(r.stderr).not.toMatch(/Warning/);
      expect(r.code, r.stderr).toBe(0);
      expect(dump(out)).toBe(dump(db));
    }
    // An existing database is never replaced without --overwrite...
    const refused = await runCli(["restore", "-config", config, a], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already exist.*--overwrite/);
    // ...and --if-db-not-exists makes that a quiet success (Litestream's flag).
    const skipped = await runCli(["restore", "-config", config, "--if-db-not-exists", a], env);
    expect(skipped.code).toBe(0);
    // status by path, from the same file.
    const status = await runCli(["status", "-config", config, a, one], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(a);
  }, 120_000);

  test("an unknown key fails naming the key and its line", async () => {
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, `dbs:\n  - path: ${a}\n    replcia:\n      url: file:///tmp/x\n`);
    const r = await runCli(["replicate", "--config", bad], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yml:3:.*replcia/);
  });

  test("one database with --metrics-addr: /metrics follows commits, /healthz answers 200", async () => {
    const solo = join(dir, "solo.db");
    sqlite(solo, "PRAGMA journal_mode=WAL; CREATE TABLE t(x);");
    const d = startCli(
      [
        "replicate",
        solo,
        `file://${dir}/replicas/solo`,
        "--metrics-addr",
        "127.0.0.1:0",
        "--sync-interval",
        "100ms",
      ],
      env,
    );
    try {
      const [, base] = await d.waitFor(/metrics on (http:\/\/\S+)\/metrics/);
      const first = await until(base!, (t) => (t.get(solo) ?? 0) >= 1);
      sqlite(solo, "INSERT INTO t VALUES (1);");
      await until(base!, (t) => (t.get(solo) ?? 0) > txids(first).get(solo)!);
      const health = await scrape(base!, "/healthz");
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ healthy: true });
      expect((await scrape(base!, "/nope")).status).toBe(404);
    } finally {
      expect(await d.stop()).toBe(0);
    }
    expect(d.stderr()).not.toMatch(/Warning/);
  });
});
