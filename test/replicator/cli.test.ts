/**
 * The CLI commands owned by the replicator: `replicate` (runs until the
 * signal aborts, then a final sync), `restore` (with --txid, --timestamp and
 * on a replica without head object, as Litestream writes them), `ltx list`,
 * and `ltx verify` over every file the replicator wrote.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, test } from "vitest";
import type { CliIo } from "../../src/cli/cli-io.js";
import { ltxList } from "../../src/cli/ltx-list.js";
import { ltxVerify } from "../../src/cli/ltx-verify.js";
import { replicate } from "../../src/cli/replicate.js";
import { restore } from "../../src/cli/restore.js";
import { HEAD_OBJECT_KEY } from "../../src/layout/index.js";
import { restore as restoreReplica } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function io(controller = new AbortController()) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    isTTY: false,
    env: {},
    signal: controller.signal,
  };
  return { io: value, out, err, controller };
}

/** The LTX files of a file replica: Litestream's layout, `ltx/<level>/<min>-<max>.ltx`. */
function ltxFiles(root: string): string[] {
  const files: string[] = [];
  for (const level of readdirSync(join(root, "ltx"))) {
    for (const name of readdirSync(join(root, "ltx", level))) {
      files.push(join(root, "ltx", level, name));
    }
  }
  return files;
}

/** Waits until the replica in `root` restores to `expected` (a {@link dump}). */
async function untilPublished(root: string, expected: string, scratch: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  const store = new FileStore({ root });
  try {
    for (let i = 0; ; i++) {
      const out = `${scratch}-${i}.db`;
      // Nothing to restore until the first snapshot is published.
      const failed = await restoreReplica(store, out).then(
        () => undefined,
        (err: unknown) => err,
      );
      if (!failed && dumpFile(out) === expected) return;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for the replica (last restore: ${failed ?? "older"})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await store.close();
  }
}

describe("replicator CLI", () => {
  test("replicate, ltx list, ltx verify, restore --txid/--timestamp, restore without head", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const replicaDir = join(dir, "replica");
    const url = pathToFileURL(replicaDir).href;

    const run = io();
    const running = replicate(
      [dbPath, url, "--sync-interval", "20ms", "--l1-interval", "100ms"],
      run.io,
    );
    // Waits for conditions, not fixed sleeps (a slow start or a late tick on
    // a loaded machine outlasts any): 'one' is committed after the first
    // snapshot, so the time restored to is reached through a level-0 file.
    await untilPublished(replicaDir, dump(app), join(dir, "probe-start"));
    app.prepare("INSERT INTO t (v) VALUES ('one')").run();
    const afterOne = dump(app);
    // A file's time is when the replicator captured it: 'one' is published
    // before the time restored to, and 'two' committed after it.
    await untilPublished(replicaDir, afterOne, join(dir, "probe-one"));
    const tOne = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    app.prepare("INSERT INTO t (v) VALUES ('two')").run();
    run.controller.abort();
    expect(await running).toBe(0);
    expect(run.err.join("")).toMatch(/stopped at TXID \d+/);

    const list = io();
    expect(await ltxList([url], list.io)).toBe(0);
    const listing = list.out.join("");
    expect(listing).toContain("# level 0");
    expect(listing).toContain("# level 9 (snapshots)");
    const json = io();
    expect(await ltxList([url, "--json"], json.io)).toBe(0);
    const files = JSON.parse(json.out.join("")) as { level: number; maxTXID: number }[];
    const maxTXID = Math.max(...files.map((f) => f.maxTXID));

    const verify = io();
    const paths = ltxFiles(replicaDir);
    expect(paths.length).toBe(files.length);
    expect(await ltxVerify(paths, verify.io)).toBe(0);

    const latest = join(dir, "latest.db");
    const res = io();
    expect(await restore([url, latest], res.io)).toBe(0);
    expect(res.out.join("")).toContain(`restored TXID ${maxTXID}`);
    expect(dumpFile(latest)).toBe(dump(app));

    const past = join(dir, "past.db");
    expect(await restore([url, past, "--timestamp", new Date(tOne).toISOString()], io().io)).toBe(
      0,
    );
    expect(dumpFile(past)).toBe(afterOne);

    const byTxid = join(dir, "txid.db");
    expect(await restore([url, byTxid, "--txid", "1"], io().io)).toBe(0);

    // A replica as Litestream writes it has no head object: LIST-based planning.
    const store = new FileStore({ root: replicaDir });
    await store.deleteMany([HEAD_OBJECT_KEY]);
    await store.close();
    const noHead = join(dir, "nohead.db");
    const nh = io();
    expect(await restore([url, noHead], nh.io)).toBe(0);
    expect(dumpFile(noHead)).toBe(dump(app));

    const exists = io();
    await expect(restore([url, noHead], exists.io)).rejects.toMatchObject({
      code: "RESTORE_OUTPUT_EXISTS",
    });
    await expect(
      restore([url, join(dir, "x.db"), "--txid", "1", "--timestamp", "0"], io().io),
    ).rejects.toMatchObject({
      code: "CLI_USAGE",
    });
  });
});
