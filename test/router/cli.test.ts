/** `pagecast status` and `pagecast verify`. */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, test } from "vitest";
import type { CliIo } from "../../src/cli/cli-io.js";
import { status } from "../../src/cli/status.js";
import { verify } from "../../src/cli/verify.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { primaryFile, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function io(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    isTTY,
    env: {},
    signal: new AbortController().signal,
  };
  return { cli, out: () => out.join(""), err: () => err.join("") };
}

async function primaryWithReplicator(syncInterval = 50) {
  const { dir, cleanup } = tempDir("pagecast-cli-");
  cleanups.push(cleanup);
  const db = join(dir, "app.db");
  primaryFile(dir, "app.db").close();
  const url = pathToFileURL(join(dir, "replica")).href;
  const replicator = await Replicator.start({ db, url, syncInterval, compaction: false });
  cleanups.push(() => replicator.close());
  return { dir, db, url, replicator };
}

describe("pagecast verify", () => {
  test("succeeds against a running replicator and prints the lag", async () => {
    const env = await primaryWithReplicator();
    const a = io();
    expect(await verify([env.db, env.url, "--timeout", "20s"], a.cli)).toBe(0);
    expect(a.out()).toMatch(/^ok: marker visible on file:\/\/.* after \d+\.\d\d s \(TXID \d+\)\n$/);
    const b = io();
    expect(await verify([env.db, env.url, "--json"], b.cli)).toBe(0);
    const result = JSON.parse(b.out());
    expect(result).toMatchObject({ ok: true, lagMs: expect.any(Number), txid: expect.any(Number) });
    expect(result.txid).toBeGreaterThan(1);
  });

  test("fails with a non-zero exit when no replicator runs", async () => {
    const env = await primaryWithReplicator();
    await env.replicator.close();
    const a = io();
    expect(await verify([env.db, env.url, "--timeout", "1s"], a.cli)).toBe(1);
    expect(a.err()).toMatch(/marker not visible after 1 s: the replica is at TXID \d+/);
    expect(a.err()).toMatch(/Is a replicator running/);

    // Nothing at the URL at all.
    const empty = pathToFileURL(join(env.dir, "nothing-here")).href;
    const b = io();
    expect(await verify([env.db, empty, "--timeout", "500ms", "--json"], b.cli)).toBe(1);
    expect(JSON.parse(b.out())).toMatchObject({ ok: false, txid: null });

    await expect(verify([join(env.dir, "missing.db"), env.url], io().cli)).rejects.toMatchObject({
      code: "VERIFY_DB_MISSING",
    });
    await expect(verify([env.db], io().cli)).rejects.toMatchObject({ code: "CLI_USAGE" });
    await expect(verify([env.db, env.url, "--timeout", "soon"], io().cli)).rejects.toMatchObject({
      code: "CLI_USAGE",
    });
  });
});

describe("pagecast status", () => {
  test("a table per replica, colored health on a terminal, JSON for scripts", async () => {
    const env = await primaryWithReplicator(0);
    await env.replicator.sync();
    const empty = pathToFileURL(join(env.dir, "nothing-here")).href;

    const a = io();
    expect(await status([env.url], a.cli)).toBe(0);
    const lines = a.out().trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^URL\s+TXID\s+LAST COMMIT\s+LAG\s+HEALTH\s+CACHE\s+REQUESTS\s+ERROR$/,
    );
    expect(lines[1]).toContain(env.url);
    expect(lines[1]).toMatch(/\shealthy\s/);
    expect(lines[1]).toMatch(/ago\)/);
    expect(lines[1]).not.toContain("\x1b[");

    const b = io(true);
    expect(await status([env.url, empty], b.cli)).toBe(1);
    expect(b.out()).toContain("\x1b[32mhealthy\x1b[0m");
    expect(b.out()).toMatch(/error.*REPLICA_EMPTY|error.*\[/);

    const c = io();
    expect(await status([env.url, empty, "--json"], c.cli)).toBe(1);
    const parsed = JSON.parse(c.out());
    expect(parsed).toHaveLength(2);
    expect(parsed[0].status).toMatchObject({
      txid: env.replicator.position.txid,
      health: "healthy",
      discovery: "head",
    });
    expect(parsed[1].error.message).toBeTypeOf("string");
    await expect(status([], io().cli)).rejects.toMatchObject({ code: "CLI_USAGE" });
  });
});
