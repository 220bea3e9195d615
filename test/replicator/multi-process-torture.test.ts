/**
 * Multi-process torture (issue 11): the writer in its real deployment shapes.
 *
 * The replicator runs in its own process, alternately as the CLI daemon
 * (`pagecast replicate`, no terminal, stdin closed) and as the library inside
 * an application process that writes too; it is SIGKILLed at random moments
 * and restarted. Applications write from other processes all along: Debian's
 * `sqlite3` CLI (one process per write), a Python `sqlite3` script and a
 * better-sqlite3 process, each opening and closing connections. The test
 * also runs external `PRAGMA wal_checkpoint(TRUNCATE)`s and `VACUUM`s, a
 * journal_mode DELETE -> WAL switch (while the replicator is down: it needs
 * every connection gone), and a backup copied over the database while the
 * replicator runs (applications closed, `-wal`/`-shm` deleted, applications
 * reopened: their writes must succeed).
 *
 * Every write carries a unique marker. Checked:
 * - every marker appears on a replica (read in this process) within BOUND_MS
 *   of its commit (markers a backup swap may have undone excepted);
 * - `pagecast status` (another process) never reports healthy while a marker
 *   is missing past the bound;
 * - no application write failed (the replicator never locks an app out);
 * - the final restore equals the primary and passes integrity_check.
 *
 * Built code runs the processes: `PAGECAST_DIST` (default dist/; its sibling
 * bin/pagecast.js is the CLI). `PAGECAST_MP_SECONDS` sets the length of the
 * run (default 40; `npm run torture -- --only multiprocess` runs 600),
 * `PAGECAST_SEED` the seed, `PAGECAST_MP_MODES` the replicator shapes
 * (default `cli,app`).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, beforeAll, expect, test } from "vitest";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import { readSqliteWasm } from "../vfs/helpers.js";
import { dumpFile, integrity, tempDir } from "./helpers.js";

const SECONDS = Number(process.env.PAGECAST_MP_SECONDS ?? 40);
const SEED = Number(process.env.PAGECAST_SEED ?? 11);
const MODES = (process.env.PAGECAST_MP_MODES ?? "cli,app").split(",") as ("cli" | "app")[];
/** A marker must be on the replica this long after its commit at the latest. */
const BOUND_MS = 15_000;
const root = resolve(import.meta.dirname, "../..");
const dist = resolve(process.env.PAGECAST_DIST ?? join(root, "dist"));
const bin = join(dirname(dist), "bin", "pagecast.js");
const fixtures = join(import.meta.dirname, "fixtures");

beforeAll(() => {
  if (!existsSync(join(dist, "replicator", "replicator.js"))) {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
  }
}, 180_000);

const { dir, cleanup } = tempDir("pagecast-mp-torture-");
afterAll(cleanup);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Marker {
  ackAt: number;
  seenAt?: number;
}

/** A child whose stdout lines are parsed; stderr kept for failure messages. */
interface Proc {
  name: string;
  child: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
  exitedAlready: boolean;
  ready: Promise<void>;
}

test(
  `multi-process torture: ${SECONDS}s, replicator as ${MODES.join(" and ")}, SIGKILLs, writers in other processes`,
  async () => {
    const rand = prng(SEED);
    const db = join(dir, "app.db");
    const ctl = join(dir, "ctl");
    const rep = join(dir, "replica");
    mkdirSync(ctl);
    const url = pathToFileURL(rep).href;
    const markers = new Map<string, Marker>();
    /** Markers a backup swap may have undone: neither required on the replica nor in the end. */
    const uncertain = new Set<string>();
    const appErrors: string[] = [];
    const divergences: { at: number; reason: string }[] = [];
    /** From the first byte copied over the database to the writers' return. */
    const swapWindows: [number, number][] = [];
    /** What happened when (for a failure's diagnosis). */
    const events: [number, string][] = [];
    const event = (what: string) => events.push([Date.now(), what]);
    const violations: string[] = [];
    const counts = {
      sqlite3Writes: 0,
      kills: 0,
      restarts: 0,
      processes: 0,
      checkpoints: 0,
      vacuums: 0,
      journalSwitches: 0,
      swaps: 0,
      statusChecks: 0,
      statusHealthy: 0,
    };

    execFileSync("sqlite3", [
      db,
      "PRAGMA journal_mode=WAL",
      "CREATE TABLE m (id INTEGER PRIMARY KEY, marker TEXT UNIQUE NOT NULL, writer TEXT, at INTEGER, pad TEXT)",
      "CREATE TABLE filler (id INTEGER PRIMARY KEY, v BLOB)",
      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200) INSERT INTO filler SELECT i, randomblob(500) FROM c",
    ]);

    const ack = (marker: string, at: number) => {
      if (!markers.has(marker)) markers.set(marker, { ackAt: at });
    };
    const track = (name: string, child: ChildProcess, readyWord?: string): Proc => {
      counts.processes++;
      const stderr: string[] = [];
      if (child.stderr) {
        child.stderr.on("data", (d: Buffer) => {
          stderr.push(d.toString());
          if (stderr.length > 200) stderr.splice(0, 100);
        });
        // Divergences the replicator logged (each with its reason).
        createInterface({ input: child.stderr }).on("line", (l) => {
          const m = /ERROR replica diverged from the database; .* reason="([^"]*)"/.exec(l);
          if (m) divergences.push({ at: Date.now(), reason: m[1]! });
        });
      }
      let readyResolve!: () => void;
      const ready = new Promise<void>((r) => {
        readyResolve = r;
      });
      if (!readyWord) readyResolve();
      if (child.stdout) {
        createInterface({ input: child.stdout }).on("line", (l) => {
          const [kind, a, b] = l.split(" ");
          if (kind === "ACK") ack(a!, Number(b));
          else if (kind === "ERR") appErrors.push(`${name}: ${l}`);
          else if (kind === readyWord) readyResolve();
        });
      }
      if (readyWord === "replicating") {
        child.stderr?.on("data", (d: Buffer) => {
          if (d.toString().includes("replicating ")) readyResolve();
        });
      }
      const p: Proc = {
        name,
        child,
        stderr,
        exitedAlready: false,
        ready,
        exited: new Promise((r) =>
          child.on("exit", (code) => {
            p.exitedAlready = true;
            r(code);
          }),
        ),
      };
      return p;
    };

    // The replicator: CLI daemon or library in an app process, in turn.
    let run = 0;
    let replicator: Proc | undefined;
    const startReplicator = async () => {
      const mode = MODES[run % MODES.length]!;
      run++;
      let child: ChildProcess;
      if (mode === "cli") {
        child = spawn(
          process.execPath,
          [bin, "replicate", db, url, "--sync-interval", "100ms", "--l1-interval", "2s"],
          { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
        );
        child.stdin!.end(); // stdin closed, no terminal
      } else {
        const cfg = {
          dist,
          db,
          url,
          name: `a${run}`,
          ctl,
          seed: SEED * 100 + run,
          replicate: true,
          syncInterval: 100,
        };
        child = spawn(process.execPath, [join(fixtures, "mp-app.mjs"), JSON.stringify(cfg)], {
          cwd: root,
          stdio: ["ignore", "pipe", "pipe"],
        });
      }
      replicator = track(
        `replicator ${mode} #${run}`,
        child,
        mode === "cli" ? "replicating" : "READY",
      );
      const started = replicator;
      await Promise.race([
        started.ready,
        started.exited.then((code) => {
          throw new Error(
            `${started.name} exited (${code}) before it was ready: ${started.stderr.join("")}`,
          );
        }),
        sleep(30_000).then(() => {
          throw new Error(`${started.name} not ready after 30 s: ${started.stderr.join("")}`);
        }),
      ]);
      return mode;
    };
    const killReplicator = async () => {
      const r = replicator!;
      r.child.kill("SIGKILL");
      await r.exited;
      counts.kills++;
      event(`killed ${r.name}`);
    };

    // Writers in their own processes, for the whole run.
    const python = track(
      "python",
      spawn("python3", [join(fixtures, "mp-writer.py"), db, "py", ctl, String(SEED)], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    const b3 = track(
      "better-sqlite3",
      spawn(
        process.execPath,
        [
          join(fixtures, "mp-app.mjs"),
          JSON.stringify({ dist, db, url, name: "b3", ctl, seed: SEED + 1, replicate: false }),
        ],
        { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
      ),
    );
    const writers = [python, b3];

    await startReplicator();
    const store = new FileStore({ root: rep });
    let replica: Replica | undefined;
    for (let i = 0; !replica; i++) {
      try {
        replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 100 });
      } catch (err) {
        if (i > 100) throw err;
        await sleep(100);
      }
    }

    let stopped = false;
    let paused = false;
    const sqlite3 = (args: string[], busyMs = 15_000) =>
      new Promise<{ code: number; stderr: string }>((res) => {
        counts.processes++;
        execFile(
          "sqlite3",
          [db, `.timeout ${busyMs}`, ...args],
          { timeout: 60_000 },
          (err, _o, e) =>
            res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr: e }),
        );
      });

    // One process per write: Debian's sqlite3 CLI.
    let sqliteN = 0;
    let cliWriting: Promise<unknown> = Promise.resolve();
    const cliWriter = (async () => {
      while (!stopped) {
        if (paused) {
          await sleep(20);
          continue;
        }
        const marker = `s-${++sqliteN}`;
        const writing = sqlite3([
          `INSERT INTO m (marker, writer, at, pad) VALUES ('${marker}', 's', ${Date.now()}, hex(randomblob(${rand.int(0, 200)})))`,
        ]);
        cliWriting = writing;
        const r = await writing;
        if (r.code === 0) {
          ack(marker, Date.now());
          counts.sqlite3Writes++;
        } else appErrors.push(`sqlite3: ${marker}: ${r.stderr.trim()}`);
        await sleep(rand.int(50, 250));
      }
    })();

    // The replica, read in this process.
    // Reads what is new since its last look (ids go back only when a backup swap undid rows).
    let followedId = 0;
    const follower = (async () => {
      while (!stopped) {
        try {
          const top = (
            await replica!.values("SELECT coalesce(max(id), 0) FROM m")
          )[0]![0] as number;
          if (top < followedId) followedId = 0;
          const rows = await replica!.values("SELECT marker FROM m WHERE id > ?", [
            Math.max(0, followedId - 100),
          ]);
          followedId = top;
          const now = Date.now();
          for (const [m] of rows as [string][]) {
            const mk = markers.get(m);
            if (mk && mk.seenAt === undefined) mk.seenAt = now;
          }
        } catch {
          // A version swapped mid-read: the next round reads again.
        }
        await sleep(300);
      }
    })();

    // `pagecast status` in another process must not say healthy while a marker is missing past the bound.
    const statusChecker = (async () => {
      while (!stopped) {
        await sleep(3000);
        const t = Date.now();
        const out = await new Promise<string>((res) =>
          execFile(
            process.execPath,
            [bin, "status", url, "--json"],
            { cwd: root, timeout: 30_000 },
            (_e, o) => res(o),
          ),
        );
        counts.processes++;
        let health: string | undefined;
        try {
          const o = JSON.parse(out)[0];
          health = o?.health ?? o?.status?.health;
        } catch {
          continue;
        }
        counts.statusChecks++;
        if (health !== "healthy") continue;
        counts.statusHealthy++;
        // Give the follower (polling every 300 ms) a second to have seen what status saw.
        await sleep(1000);
        for (const [m, mk] of markers) {
          if (uncertain.has(m) || mk.ackAt > t - BOUND_MS) continue;
          if (mk.seenAt === undefined || mk.seenAt > t + 1000) {
            violations.push(
              `status healthy at ${t} while ${m} (committed ${t - mk.ackAt} ms before) was missing`,
            );
          }
        }
      }
    })();

    const pauseWriters = async () => {
      paused = true;
      writeFileSync(join(ctl, "pause"), "");
      const appAlive = replicatorIsApp() && !replicator!.exitedAlready;
      const names = ["py", "b3", ...(appAlive ? [`a${run}`] : [])];
      const deadline = Date.now() + 30_000;
      while (!names.every((n) => existsSync(join(ctl, `${n}.paused`)))) {
        if (Date.now() > deadline) throw new Error("writers did not pause");
        await sleep(20);
      }
      await cliWriting; // the last sqlite3 write finishes
    };
    const resumeWriters = () => {
      rmSync(join(ctl, "pause"), { force: true });
      paused = false;
    };
    const replicatorIsApp = () => MODES[(run - 1) % MODES.length] === "app";

    // The schedule: kills, checkpoints, VACUUMs, a journal-mode switch, a backup swap.
    const start = Date.now();
    const end = start + SECONDS * 1000;
    let nextKill = start + rand.int(4000, 8000);
    let nextCheckpoint = start + 3000;
    // Longer runs repeat the rarer events.
    const ms = SECONDS * 1000;
    let nextVacuum = start + Math.min(0.3 * ms, 30_000);
    let switchAt = start + Math.min(0.6 * ms, 90_000);
    let swapAt = start + Math.min(0.5 * ms, 60_000);
    let backup: { path: string; takenAt: number } | undefined;
    while (Date.now() < end) {
      const now = Date.now();
      if (replicator!.exitedAlready) {
        throw new Error(`${replicator!.name} exited on its own: ${replicator!.stderr.join("")}`);
      }
      if (now >= nextCheckpoint) {
        nextCheckpoint = now + rand.int(4000, 9000);
        // A TRUNCATE checkpoint waits for every reader (the replicator's pin
        // included) while holding the write lock: with a long busy timeout it
        // would stall the applications' writes that long, with any pinning
        // replicator (Litestream's too). Applications run it with a short one.
        const r = await sqlite3(["PRAGMA wal_checkpoint(TRUNCATE)"], 500);
        if (r.code === 0) counts.checkpoints++;
        event("TRUNCATE checkpoint");
      }
      if (now >= nextVacuum) {
        nextVacuum = now + Math.max(0.45 * ms, 60_000);
        const r = await sqlite3(["VACUUM"]);
        if (r.code === 0) counts.vacuums++;
        else appErrors.push(`VACUUM: ${r.stderr.trim()}`);
        event("VACUUM");
      }
      // A backup the swap waited too long for (the replicator ran in the app meanwhile) is taken again.
      if (backup && now - backup.takenAt > 8000) backup = undefined;
      if (!backup && now >= swapAt - 4000 && !replicatorIsApp()) {
        // A backup in rollback mode (as VACUUM INTO writes it), restored a few seconds later.
        const path = join(dir, "backup.db");
        const takenAt = Date.now();
        const r = await sqlite3([`VACUUM INTO '${path}'`]);
        if (r.code === 0) backup = { path, takenAt };
      }
      if (backup && now >= swapAt && !replicatorIsApp()) {
        // While the replicator runs: apps closed, the backup copied over, -wal/-shm deleted, apps reopened.
        await pauseWriters();
        for (const [m, mk] of markers) if (mk.ackAt >= backup.takenAt) uncertain.add(m);
        const copyAt = Date.now();
        copyFileSync(backup.path, db);
        rmSync(`${db}-wal`, { force: true });
        rmSync(`${db}-shm`, { force: true });
        const swappedAt = Date.now();
        swapWindows.push([copyAt, swappedAt]);
        event("backup swapped in");
        resumeWriters();
        counts.swaps++;
        swapAt = Date.now() + 100_000;
        // Markers committed until the writers really resumed may be undone too.
        for (const [m, mk] of markers)
          if (mk.ackAt <= swappedAt && mk.ackAt >= backup.takenAt) uncertain.add(m);
        backup = undefined;
      }
      if (now >= nextKill) {
        await sleep(rand.int(0, 400));
        await killReplicator();
        if (now >= switchAt) {
          // journal_mode DELETE -> WAL while nobody replicates (it needs every connection gone).
          switchAt = now + 120_000;
          await pauseWriters();
          const r = await sqlite3([
            "PRAGMA journal_mode=DELETE",
            `INSERT INTO m (marker, writer, at) VALUES ('j-${counts.journalSwitches + 1}', 'j', ${Date.now()})`,
            "PRAGMA journal_mode=WAL",
          ]);
          if (r.code === 0) {
            ack(`j-${counts.journalSwitches + 1}`, Date.now());
            counts.journalSwitches++;
            event("journal_mode DELETE -> WAL");
          } else appErrors.push(`journal switch: ${r.stderr.trim()}`);
          resumeWriters();
        }
        await startReplicator();
        counts.restarts++;
        event(`${replicator!.name} ready`);
        nextKill = Date.now() + rand.int(3000, 9000);
      }
      await sleep(50);
    }

    // The end: writers stop, a last marker, then the replicator stops cleanly.
    writeFileSync(join(ctl, "stop"), "");
    stopped = true;
    await Promise.all([cliWriter, ...writers.map((w) => w.exited)]);
    const last = await sqlite3([
      `INSERT INTO m (marker, writer, at) VALUES ('last', 's', ${Date.now()})`,
    ]);
    expect(last.code).toBe(0);
    ack("last", Date.now());
    await sleep(1500);
    const r = replicator!;
    r.child.kill("SIGTERM");
    const code = await Promise.race([r.exited, sleep(20_000).then(() => "timeout")]);
    expect(code, r.stderr.join("")).toBe(0);
    await Promise.all([follower, statusChecker]);
    // The follower's last look, after the final sync.
    const finalRows = (await replica!.values("SELECT marker FROM m")) as [string][];
    const now = Date.now();
    for (const [m] of finalRows) {
      const mk = markers.get(m);
      if (mk && mk.seenAt === undefined) mk.seenAt = now;
    }
    await replica!.close();

    const primary = new Database(db, { readonly: true });
    const inPrimary = new Set(
      (primary.prepare("SELECT marker FROM m").raw().all() as [string][]).map(([m]) => m),
    );
    primary.close();
    const late: string[] = [];
    const lost: string[] = [];
    let worst = 0;
    for (const [m, mk] of markers) {
      if (uncertain.has(m)) continue;
      if (!inPrimary.has(m)) lost.push(m);
      const delay = (mk.seenAt ?? Number.POSITIVE_INFINITY) - mk.ackAt;
      worst = Math.max(worst, Number.isFinite(delay) ? delay : 0);
      if (!(delay <= BOUND_MS))
        late.push(
          `${m} (committed at +${mk.ackAt - start} ms, ${Number.isFinite(delay) ? `seen ${delay} ms later` : "never seen"})`,
        );
    }
    const out = join(dir, "restored.db");
    await restore(store, out);
    console.info(
      `[mp-torture] ${JSON.stringify({
        seconds: SECONDS,
        markers: markers.size,
        uncertain: uncertain.size,
        missed: late.length,
        statusViolations: violations.length,
        divergences: divergences.map((d) => `${d.reason} at +${d.at - start} ms`),
        swapWindows: swapWindows.map(([a, b]) => `+${a - start}..+${b - start} ms`),
        worstDelayMs: worst,
        appErrors: appErrors.length,
        ...counts,
      })}`,
    );
    if (appErrors.length > 0 || late.length > 0) {
      console.info(
        `[mp-torture] timeline: ${events.map(([t, w]) => `+${t - start} ${w}`).join("; ")}`,
      );
    }
    expect(appErrors, "application writes failed").toEqual([]);
    expect(lost, "markers missing from the primary").toEqual([]);
    expect(late.slice(0, 20), `markers not on the replica within ${BOUND_MS} ms`).toEqual([]);
    expect(violations.slice(0, 10)).toEqual([]);
    // The only divergences are the backup swaps' (the file rewritten in place,
    // then its -wal/-shm deleted, behind the replicator: noticed by the file
    // checks, or by the divergence check while the copy was under way); never
    // frames lost to a WAL restarted or truncated behind its back.
    const unexplained = divergences.filter(
      (d) => !swapWindows.some(([from, to]) => d.at >= from && d.at <= to + 5000),
    );
    expect(unexplained.map((d) => d.reason)).toEqual([]);
    expect(integrity(out)).toBe("ok");
    expect(dumpFile(out)).toBe(dumpFile(db));
    expect(counts.kills).toBeGreaterThan(2);
    expect(counts.swaps + counts.journalSwitches).toBeGreaterThan(0);
    await store.close();
  },
  SECONDS * 1000 + 180_000,
);
