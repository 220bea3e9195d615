/**
 * Restore progress: bytes, rate and ETA redrawn in place on a terminal,
 * sparse plain lines otherwise, and a line when SQLite's check starts. The
 * view with a scripted clock, and `pagecast restore` as a real process with
 * stderr on a pipe (as in CI logs).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { formatEta, RestoreProgressView } from "../../src/cli/restore-progress.js";
import { Replicator } from "../../src/replicator/replicator.js";
import type { RestoreProgress } from "../../src/replicator/restore.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const MB = 1e6;

/** A restore of `total` bytes in 3 files at 10 MB/s, reported every 100 ms, then integrity_check. */
function script(view: RestoreProgressView, clock: { t: number }, total = 200 * MB): void {
  const files = [120 * MB, 60 * MB, 20 * MB];
  let done = 0;
  const report = (phase: RestoreProgress["phase"], filesDone: number) =>
    view.update({ phase, filesDone, filesTotal: 3, bytesDone: done, bytesTotal: total });
  report("apply", 0);
  let filesDone = 0;
  for (const size of files) {
    const end = done + size;
    while (done < end) {
      clock.t += 100;
      done = Math.min(end, done + MB);
      report("apply", filesDone);
    }
    filesDone++;
    report("apply", filesDone);
  }
  report("integrity_check", filesDone);
}

describe("RestoreProgressView", () => {
  test("terminal: one line redrawn in place with bytes, rate and ETA; integrity_check announced", () => {
    const out: string[] = [];
    const clock = { t: 0 };
    const view = new RestoreProgressView({
      write: (s) => out.push(s),
      tty: true,
      now: () => clock.t,
      check: "integrity_check",
    });
    script(view, clock);
    view.end();
    const text = out.join("");
    const redraws = out.filter((s) => s.startsWith("\r"));
    // At most one redraw per 100 ms of a 20 s restore, and many of them.
    expect(redraws.length).toBeGreaterThan(100);
    expect(redraws.length).toBeLessThanOrEqual(205);
    const mid = redraws[Math.floor(redraws.length / 2)]!;
    expect(mid).toMatch(
      /\[#+ +\] +\d+% {2}\d+\.\d\/200\.0 MB {2}10\.0 MB\/s {2}ETA \d+s {2}files \d\/3/,
    );
    expect(redraws.at(-1)).toContain("100%");
    expect(text).toContain("running PRAGMA integrity_check");
    // The bar's line ends before the integrity_check line.
    expect(
      text.endsWith(
        "files 3/3\x1b[K\nrestore: 200.0 MB applied in 20.0 s (10.0 MB/s); running PRAGMA integrity_check...\n",
      ),
    ).toBe(true);
  });

  test("not a terminal: sparse plain lines", () => {
    const out: string[] = [];
    const clock = { t: 0 };
    const view = new RestoreProgressView({
      write: (s) => out.push(s),
      tty: false,
      now: () => clock.t,
    });
    script(view, clock);
    view.end();
    expect(out.every((s) => !s.includes("\r") && !s.includes("\x1b") && s.endsWith("\n"))).toBe(
      true,
    );
    expect(out[0]).toBe("restore: 3 files, 200.0 MB to download\n");
    // A line per tenth at most, at least 3 s apart: about 7 for 20 s, plus first, last and integrity_check.
    expect(out.length).toBeGreaterThanOrEqual(5);
    expect(out.length).toBeLessThanOrEqual(12);
    expect(out).toContain("restore: 100% of 200.0/200.0 MB  10.0 MB/s  files 3/3\n");
    expect(
      out.some((s) =>
        /^restore: \d+% of \d+\.\d\/200\.0 MB {2}10\.0 MB\/s {2}ETA \d+s {2}files \d\/3\n$/.test(s),
      ),
    ).toBe(true);
    // The default check: quick_check.
    expect(out.at(-1)).toBe(
      "restore: 200.0 MB applied in 20.0 s (10.0 MB/s); running PRAGMA quick_check...\n",
    );
  });

  test("ETA formats", () => {
    expect(formatEta(4.4)).toBe("4s");
    expect(formatEta(185)).toBe("3m05s");
    expect(formatEta(3720)).toBe("1h02m");
  });
});

describe("pagecast restore as a process (stderr not a terminal)", () => {
  test("prints sparse progress lines and the check's line; -integrity-check modes", async () => {
    const bin = resolve(__dirname, "../../bin/pagecast.js");
    expect(existsSync(resolve(__dirname, "../../dist/cli/main.js")), "run `npm run build`").toBe(
      true,
    );
    const { dir, cleanup } = tempDir("pagecast-restore-progress-");
    try {
      const dbPath = join(dir, "app.db");
      const app = openApp(dbPath);
      app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
      const ins = app.prepare("INSERT INTO t (v) VALUES (randomblob(4000))");
      app.transaction(() => {
        for (let i = 0; i < 3000; i++) ins.run();
      })();
      const url = pathToFileURL(join(dir, "replica")).href;
      const replicator = await Replicator.start({ db: dbPath, url, syncInterval: 0 });
      await replicator.close();
      app.close();
      const out = join(dir, "restored.db");
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        [bin, "restore", url, out, "--concurrency", "2"],
        { timeout: 60_000 },
      );
      expect(stdout).toContain("restored TXID");
      expect(stdout).toContain("quick_check ok");
      const lines = stderr.split("\n").filter((l) => l !== "");
      expect(lines[0]).toMatch(/^restore: 1 file, \d+\.\d MB to download$/);
      expect(lines.some((l) => /^restore: 100% of /.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/running PRAGMA quick_check\.\.\.$/);
      expect(lines.length).toBeLessThanOrEqual(13);
      expect(stderr).not.toContain("\r");

      // Litestream's -integrity-check modes.
      const run = (...extra: string[]) =>
        promisify(execFile)(
          process.execPath,
          [bin, "restore", url, join(dir, `r-${extra.join("")}.db`), ...extra],
          { timeout: 60_000 },
        );
      const full = await run("-integrity-check", "full");
      expect(full.stdout).toContain("integrity_check ok");
      expect(full.stderr).toMatch(/running PRAGMA integrity_check\.\.\.\n$/);
      const none = await run("-integrity-check=none");
      expect(none.stdout).toContain("integrity not checked");
      expect(none.stderr).not.toContain("PRAGMA");
      expect((await run("--no-integrity-check")).stdout).toContain("integrity not checked");
      for (const bad of [
        ["-integrity-check", "fast"],
        ["--no-integrity-check", "-integrity-check", "full"],
      ]) {
        const err = await run(...bad).then(
          () => undefined,
          (e: { code?: number; stderr?: string }) => e,
        );
        expect(err?.code).toBe(2);
        expect(err?.stderr).toMatch(/integrity-check/);
      }
    } finally {
      cleanup();
    }
  });
});
