import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCli } from "./cli-harness.js";

let dir: string;
let dbPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pagecast-cli-"));
  dbPath = join(dir, "sample.db");
  // A multi-MB database with tables, an index and overflow pages, in rollback mode.
  const db = new Database(dbPath);
  db.pragma("page_size = 4096");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)");
  db.exec("CREATE INDEX t_name ON t(name)");
  const insert = db.prepare("INSERT INTO t (name, blob) VALUES (?, randomblob(?))");
  db.transaction(() => {
    for (let i = 0; i < 20_000; i++) insert.run(`name-${(i * 7919) % 20_000}`, (i % 50) * 20);
    insert.run("big", 200_000);
  })();
  db.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pagecast ltx", () => {
  test("encode then apply yields a byte-identical database that passes integrity_check", async () => {
    const ltx = join(dir, "snap.ltx");
    const enc = await runCli(["ltx", "encode", dbPath, ltx, "--txid", "7"]);
    expect(enc.stderr).toBe("");
    expect(enc.code).toBe(0);
    const original = await readFile(dbPath);
    expect(original.length).toBeGreaterThan(2 * 1024 * 1024);

    const out = join(dir, "restored.db");
    const app = await runCli(["ltx", "apply", out, ltx]);
    expect(app.stderr).toBe("");
    expect(app.code).toBe(0);
    const restored = await readFile(out);
    expect(Buffer.compare(restored, original)).toBe(0);

    const db = new Database(out, { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 20_001 });
    db.close();

    const dump = await runCli(["ltx", "dump", ltx]);
    expect(dump.code).toBe(0);
    const parsed = JSON.parse(dump.stdout);
    expect(parsed.header.minTXID).toBe(1);
    expect(parsed.header.maxTXID).toBe(7);
    expect(parsed.header.pageSize).toBe(4096);
    expect(parsed.header.commit).toBe(original.length / 4096);
    expect(parsed.pages.length).toBe(original.length / 4096);
    expect(parsed.trailer.fileChecksum as string).toMatch(/^[89a-f][0-9a-f]{15}$/);

    const ok = await runCli(["ltx", "verify", ltx]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("ok ");
  });

  test("verify fails with a non-zero exit code on a corrupted file", async () => {
    const ltx = join(dir, "corrupt.ltx");
    await runCli(["ltx", "encode", dbPath, ltx]);
    const bytes = await readFile(ltx);
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0x40;
    await writeFile(ltx, bytes);
    const res = await runCli(["ltx", "verify", ltx]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^FAIL /m);
  });

  test("apply refuses a chain that does not start with a snapshot and leaves no output", async () => {
    const out = join(dir, "never.db");
    const bogus = join(dir, "bogus.ltx");
    await writeFile(bogus, new Uint8Array(200));
    const res = await runCli(["ltx", "apply", out, bogus]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/\[LTX_/);
    expect(existsSync(out)).toBe(false);
  });

  test("usage errors exit 2 and name the problem", async () => {
    expect((await runCli(["ltx", "encode"])).code).toBe(2);
    const bad = await runCli(["ltx", "encode", dbPath, join(dir, "x.ltx"), "--txid", "abc"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--txid");
    expect((await runCli(["ltx", "frobnicate"])).code).toBe(2);
    expect((await runCli(["ltx", "encode", dbPath, join(dir, "y.ltx"), "--bogus"])).code).toBe(2);
  });

  test.skipIf(!existsSync(new URL("../../dist/cli/main.js", import.meta.url)))(
    "the pagecast bin runs",
    async () => {
      const bin = new URL("../../bin/pagecast.js", import.meta.url).pathname;
      const { stdout } = await promisify(execFile)(process.execPath, [bin, "--help"]);
      expect(stdout).toMatch(/^Usage:\n {2}pagecast <command>/m);
      expect(stdout).toContain("  ltx encode  ");
    },
  );
});
