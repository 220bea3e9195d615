/**
 * Litestream's YAML config file, as pagecast reads it: the documented
 * subset, environment expansion, and every key accounted for (unknown keys
 * fail with their line, ignored Litestream keys warn with theirs).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { prepareEnvironment } from "../../src/cli/main.js";
import {
  ConfigError,
  configuredDatabase,
  configuredDatabases,
  formatLocation,
  parseConfig,
} from "../../src/config/index.js";
import { tempDir } from "../replicator/helpers.js";

const parse = (text: string, env: Record<string, string> = {}, expandEnv = true) =>
  parseConfig(text, "litestream.yml", { env, expandEnv });

function failure(text: string): ConfigError {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected the config to be refused");
}

describe("config file", () => {
  const { dir, cleanup } = tempDir("pagecast-config-unit-");
  afterAll(() => cleanup());

  test("path and dir entries, url and type: s3 replicas, durations, settings", () => {
    const c = parse(`
addr: ":9090"
access-key-id: AKID
secret-access-key: SECRET
region: eu-west-1
snapshot:
  interval: 1h
  retention: 72h
levels:
  - interval: 10s
  - interval: 1m
logging:
  level: debug
dbs:
  - path: /data/app.db
    min-checkpoint-page-count: 500
    busy-timeout: 2s
    replica:
      type: s3
      bucket: my-bucket
      path: app
      endpoint: minio.local:9000
      force-path-style: true
      sync-interval: 250ms
  - dir: /data/tenants
    pattern: "*.db"
    recursive: true
    watch: true
    replicas:
      - url: file:///backups/tenants
`);
    expect(c.addr).toBe(":9090");
    expect(c.logLevel).toBe("debug");
    expect(c.warnings).toEqual([]);
    const [app, tenants] = c.databases;
    expect(app).toMatchObject({
      kind: "path",
      path: "/data/app.db",
      settings: {
        syncInterval: 250,
        snapshotInterval: 3_600_000,
        retention: 72 * 3_600_000,
        checkpointPages: 500,
        busyTimeout: 2000,
        compaction: { l1: 10_000, l2: 60_000 },
      },
      replica: { credentials: { accessKeyId: "AKID", secretAccessKey: "SECRET" } },
    });
    // Litestream's rule: an endpoint without a scheme on a local host is http.
    expect(formatLocation(app!.replica.location)).toBe(
      "s3://my-bucket/app?endpoint=http%3A%2F%2Fminio.local%3A9000&region=eu-west-1&forcePathStyle=true",
    );
    expect(tenants).toMatchObject({
      kind: "dir",
      dir: "/data/tenants",
      recursive: true,
      watch: true,
    });
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's ${VAR} syntax
  test("$VAR and ${VAR} expand from the environment, unless -no-expand-env", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's ${VAR} syntax
    const text = "dbs:\n  - path: $DATA/app.db\n    replica:\n      url: s3://${BUCKET}/app\n";
    const c = parse(text, { DATA: "/srv", BUCKET: "prod-bucket" });
    expect(c.databases[0]).toMatchObject({ path: "/srv/app.db" });
    expect(formatLocation(c.databases[0]!.replica.location)).toBe("s3://prod-bucket/app");
    expect(() => parse(text, {}, false)).toThrow(ConfigError); // "${BUCKET}" is no bucket name
  });

  test("an unknown key fails naming it, its line and the likely key", () => {
    const err = failure(
      "dbs:\n  - path: /a.db\n    replica:\n      url: file:///b\n      bukcet: x\n",
    );
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.message).toMatch(
      /^litestream\.yml:5: .*unknown key "bukcet".*did you mean "bucket"/,
    );
    const top = failure("dbz:\n  - path: /a.db\n");
    expect(top.message).toMatch(/litestream\.yml:1: .*unknown key "dbz"/);
  });

  test("Litestream keys pagecast does not act on warn with their line; unsafe ones fail", () => {
    const c = parse(
      "dbs:\n  - path: /a.db\n    monitor-interval: 1s\n    replica:\n      url: s3://b/p\n      part-size: 5MB\n",
    );
    expect(c.warnings).toHaveLength(2);
    expect(c.warnings[0]).toMatch(/^litestream\.yml:3: .*monitor-interval/);
    expect(c.warnings[1]).toMatch(/^litestream\.yml:6: .*part-size/);
    const sse = failure(
      "dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/p\n      sse-kms-key-id: k\n",
    );
    expect(sse.message).toMatch(/litestream\.yml:5: .*sse-kms-key-id.*not supported/);
    expect(failure("dbs:\n  - path: /a.db\n").message).toMatch(/needs a replica/);
    expect(
      failure(
        "dbs:\n  - path: /a.db\n    replicas:\n      - url: file:///x\n      - url: file:///y\n",
      ).message,
    ).toMatch(/one replica per database/);
  });

  test("databases by path: path entries, and dir entries by pattern (each under its relative path)", async () => {
    const tenants = join(dir, "tenants");
    mkdirSync(join(tenants, "eu"), { recursive: true });
    const header = Buffer.alloc(100);
    header.write("SQLite format 3\u0000", "latin1");
    writeFileSync(join(tenants, "one.db"), header);
    writeFileSync(join(tenants, "eu", "two.db"), header);
    writeFileSync(join(tenants, "notes.txt"), header);
    writeFileSync(join(tenants, "empty.db"), ""); // no header yet: found by a later scan
    const c = parse(
      `dbs:\n  - path: /srv/app.db\n    replica:\n      url: s3://bucket/app\n` +
        `  - dir: ${tenants}\n    pattern: "*.db"\n    recursive: true\n    replica:\n      url: s3://bucket/tenants\n`,
    );
    const found = await configuredDatabases(c);
    expect(found.map((d) => [d.path, formatLocation(d.replica.location)])).toEqual([
      ["/srv/app.db", "s3://bucket/app"],
      [join(tenants, "eu", "two.db"), "s3://bucket/tenants/eu/two.db"],
      [join(tenants, "one.db"), "s3://bucket/tenants/one.db"],
    ]);
    // restore -config names a database that need not exist yet.
    expect(formatLocation(configuredDatabase(c, join(tenants, "new.db"))!.replica.location)).toBe(
      "s3://bucket/tenants/new.db",
    );
    expect(configuredDatabase(c, join(tenants, "notes.txt"))).toBeUndefined();
  });

  test("LITESTREAM_ACCESS_KEY_ID / _SECRET_ACCESS_KEY stand in for unset AWS variables", () => {
    const env: NodeJS.ProcessEnv = {
      LITESTREAM_ACCESS_KEY_ID: "lk",
      LITESTREAM_SECRET_ACCESS_KEY: "ls",
    };
    prepareEnvironment(env);
    expect(env).toMatchObject({ AWS_ACCESS_KEY_ID: "lk", AWS_SECRET_ACCESS_KEY: "ls" });
    const set: NodeJS.ProcessEnv = { AWS_ACCESS_KEY_ID: "a", LITESTREAM_ACCESS_KEY_ID: "lk" };
    prepareEnvironment(set);
    expect(set.AWS_ACCESS_KEY_ID).toBe("a");
  });
});
