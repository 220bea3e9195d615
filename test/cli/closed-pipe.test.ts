/**
 * A reader of the CLI's output that goes away (review by a helper): a
 * supervisor stopping `pagecast replicate ... 2>&1 | logger` with its whole
 * process group, or `pagecast restore ... 2>&1 | head -1`. Any EPIPE made
 * the process exit 0 at its next line: replicate skipped its final sync
 * (the last commit unpublished, the lease kept) and restore wrote no
 * database while reporting success. They now carry on without the output.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { openApp, tempDir } from "../replicator/helpers.js";
import { built, cleanEnv, runCli, startCli } from "./cli-process.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

test.skipIf(!built)(
  "replicate whose stderr reader is gone still makes its final sync on SIGTERM",
  async () => {
    const { dir, cleanup } = tempDir("pagecast-closed-pipe-");
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('first')");
    const url = pathToFileURL(join(dir, "replica")).href;
    // Syncs only when stopped: the last row reaches the replica by the final sync alone.
    const daemon = startCli(["replicate", dbPath, url, "--sync-interval", "1h"], cleanEnv());
    cleanups.push(() => daemon.stop());
    await daemon.waitFor(/replicating /);
    app.prepare("INSERT INTO t (v) VALUES ('last')").run();
    // The log's reader goes away (as a pipe stopped with the daemon's process group).
    daemon.child.stderr.destroy();
    expect(await daemon.stop()).toBe(0);
    const out = join(dir, "restored.db");
    await restore(url, out);
    const restored = openApp(out);
    cleanups.push(() => restored.close());
    expect(restored.prepare("SELECT v FROM t ORDER BY id").pluck().all()).toEqual([
      "first",
      "last",
    ]);
  },
);

test.skipIf(!built)("restore whose output readers are gone still writes the database", async () => {
  const { dir, cleanup } = tempDir("pagecast-closed-pipe-");
  cleanups.push(cleanup);
  const dbPath = join(dir, "app.db");
  const app = openApp(dbPath);
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  const ins = app.prepare("INSERT INTO t (v) VALUES (randomblob(4000))");
  app.transaction(() => {
    for (let i = 0; i < 2000; i++) ins.run();
  })();
  const url = pathToFileURL(join(dir, "replica")).href;
  const replicator = await Replicator.start({ db: dbPath, url, syncInterval: 0 });
  await replicator.close();
  const out = join(dir, "restored.db");
  // Both pipes closed by the reader before the restore prints anything.
  const ran = await runCli(["restore", url, out], cleanEnv(), 60_000, (child) => {
    child.stdout.destroy();
    child.stderr.destroy();
  });
  expect(ran.code).toBe(0);
  const restored = openApp(out);
  cleanups.push(() => restored.close());
  expect(restored.prepare("SELECT count(*) FROM t").pluck().get()).toBe(2000);
});
