/**
 * Crash torture (issue 7): a writer process under load (the Replicator from
 * built code, fixtures/torture-writer.mjs: the application commits every few
 * ms while syncs run alongside) is SIGKILLed again and again. Rounds take
 * turns aiming at: a random moment, mid-upload of an L0 file, mid-head write,
 * mid-compaction (levels 1, 2, 3 in turn), mid-snapshot (level 9),
 * mid-retention (deletes) and mid-checkpoint (PASSIVE and TRUNCATE in turn);
 * some kills land at the phase's start, some right after its request
 * completed (object stored, put not yet resolved to the replicator), some
 * during the writer's own start. The phase the child was in when it died
 * (from its complete stdout) is counted and printed.
 *
 * After every kill:
 * - every LTX file in the store decodes (checksums verified), a level file's
 *   header matches its key, and no key ever changed content (compared with
 *   the archive: a never-pruned copy of every LTX file the writer stored);
 * - a restore passes integrity_check and holds every acknowledged id, at a
 *   TXID no older than the newest acknowledged sync.
 * A replica in this process follows the same store for the whole run,
 * querying in a loop. Afterwards:
 * - the state published at each TXID is read from the archive (the `summary`
 *   row in the newest image of its page), and must be a state the application
 *   committed, in commit order; no committed state is ever lost;
 * - every version the replica served is a published TXID, with exactly the
 *   published contents; its TXIDs never go backwards; it catches up with the
 *   last head; full restores of a sample of served TXIDs from the archive
 *   agree (checking the page-level reading).
 *
 * The child runs built code: `PAGECAST_DIST` (default dist/, built by
 * `npm test` before vitest; built here when absent). `PAGECAST_CRASH_KILLS`
 * sets the number of kills (default 56: 8 per target), `PAGECAST_SEED` the
 * seed, `PAGECAST_DEBUG` prints every round.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, expect, test } from "vitest";
import { decodeLtx } from "../../src/format/index.js";
import { HEAD_OBJECT_KEY, parseHeadObject, parseReplicaKey } from "../../src/layout/index.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { NotFoundError } from "../../src/storage/store-errors.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import { readSqliteWasm } from "../vfs/helpers.js";

const KILLS = Number(process.env.PAGECAST_CRASH_KILLS ?? 56);
const SEED = Number(process.env.PAGECAST_SEED ?? 7);
const root = resolve(import.meta.dirname, "../..");
const dist = resolve(process.env.PAGECAST_DIST ?? join(root, "dist"));
const fixture = join(import.meta.dirname, "fixtures", "torture-writer.mjs");

/** Where a round aims its kill; `random`: a random moment of the run. */
const TARGETS = [
  "random",
  "l0",
  "head",
  "compaction",
  "snapshot",
  "retention",
  "checkpoint",
] as const;
type Target = (typeof TARGETS)[number];
/** When several phases are open at the kill, the one named (a checkpoint contains uploads). */
const PHASE_PRIORITY = [
  "checkpoint",
  "retention",
  "compaction",
  "snapshot",
  "skeleton",
  "l0",
  "head",
];
/** Rounds give up waiting for their phase after this long and kill anyway. */
const TARGET_TIMEOUT_MS = 8000;

/** Writer settings: everything happens often. */
const REPLICATOR_OPTIONS = {
  syncInterval: 50,
  checkpointPages: 40,
  truncatePages: 160,
  compaction: { l1: 150, l2: 300, l3: 400 },
  snapshotInterval: 600,
  retention: 500,
  retentionGrace: 150,
};

const dir = mkdtempSync(join(tmpdir(), "pagecast-crash-torture-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(join(dist, "replicator", "replicator.js"))) {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
  }
}, 180_000);

/** A state of the `acked` table (ids are contiguous from 1, so rows == maxId when sound). */
interface State {
  rows: number;
  maxId: number;
  bytes: number;
}

const stateText = (s: State) => `${s.rows}/${s.maxId}/${s.bytes}`;

/** One version the replica served. */
interface Served extends State {
  txid: number;
}

/** One writer run, from spawn to its death. */
interface Run {
  child: ChildProcess;
  closed: Promise<void>;
  /** Phases begun and not ended (per the complete stdout once closed), with details. */
  open: Map<string, string>;
  ready: boolean;
  killedAt: string | undefined;
  /** ms from spawn to `ready`. */
  readyAfter: number | undefined;
  commits: number;
  stderr: string;
  exitedOnItsOwn: boolean;
}

/** Where the child died: the most specific open phase (with its level, mode or moment). */
function phaseAtDeath(open: Map<string, string>): string {
  for (const p of PHASE_PRIORITY) {
    const detail = open.get(p);
    if (detail !== undefined) return detail ? `${p} ${detail}` : p;
  }
  return "between phases";
}

function readAcked(path: string): number[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map(Number);
}

async function getBytes(store: ObjectStore, key: string): Promise<Uint8Array | undefined> {
  try {
    const res = await store.get(key);
    return res.notModified ? undefined : res.body;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

async function listKeys(store: ObjectStore): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await store.list(token ? { continuationToken: token } : {});
    for (const o of page.objects) keys.push(o.key);
    token = page.continuationToken;
  } while (token);
  return keys;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function varint(page: Uint8Array, at: number): [number, number] {
  let v = 0;
  for (let i = 0; i < 9; i++) {
    const b = page[at + i]!;
    if (i === 8) return [v * 256 + b, at + 9];
    v = v * 128 + (b & 0x7f);
    if (b < 0x80) return [v, at + i + 1];
  }
  return [v, at + 9];
}

/**
 * The `summary` row (k, rows, max_id, bytes) read straight from an image of
 * its table's root page: a leaf holding that single row. Undefined when the
 * page is not that.
 */
function summaryFromPage(page: Uint8Array): State | undefined {
  if (page[0] !== 0x0d || ((page[3]! << 8) | page[4]!) !== 1) return undefined;
  let p = (page[8]! << 8) | page[9]!;
  [, p] = varint(page, p); // payload size
  [, p] = varint(page, p); // rowid
  const recordStart = p;
  const [headerSize, afterSize] = varint(page, p);
  p = afterSize;
  const types: number[] = [];
  while (p < recordStart + headerSize) {
    const [t, next] = varint(page, p);
    types.push(t);
    p = next;
  }
  const sizes: Record<number, number> = { 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 8: 0, 9: 0 };
  const values: number[] = [];
  for (const t of types) {
    const size = sizes[t];
    if (size === undefined) return undefined;
    let v = t === 9 ? 1 : 0;
    for (let i = 0; i < size; i++) v = v * 256 + page[p + i]!;
    if (size > 0 && page[p]! >= 0x80) v -= 2 ** (8 * size);
    values.push(v);
    p += size;
  }
  if (values.length !== 4) return undefined;
  return { rows: values[1]!, maxId: values[2]!, bytes: values[3]! };
}

/** `summary` and a full scan of `acked` in a database file, and the summary table's root page. */
function fileState(path: string): { summary: State; scan: State; summaryRoot: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const s = db.prepare("SELECT rows, max_id, bytes FROM summary WHERE k = 1").raw().get() as [
      number,
      number,
      number,
    ];
    const f = db
      .prepare(
        "SELECT count(*), coalesce(max(id), 0), coalesce(sum(length(payload)), 0) FROM acked",
      )
      .raw()
      .get() as [number, number, number];
    const root = db
      .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'summary'")
      .pluck()
      .get() as number;
    return {
      summary: { rows: s[0], maxId: s[1], bytes: s[2] },
      scan: { rows: f[0], maxId: f[1], bytes: f[2] },
      summaryRoot: root,
    };
  } finally {
    db.close();
  }
}

function integrity(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (db.pragma("integrity_check") as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join("; ");
  } finally {
    db.close();
  }
}

test(
  `crash torture: ${KILLS} SIGKILLs aimed at every phase lose nothing and a follower serves only published versions`,
  async () => {
    const r = prng(SEED);
    const dbPath = join(dir, "app.db");
    const storeRoot = join(dir, "replica");
    const archiveRoot = join(dir, "archive");
    const ackedPath = join(dir, "acked.txt");
    writeFileSync(ackedPath, "");
    const store = new FileStore({ root: storeRoot });
    // A child killed while archiving leaves a lock file: presumed stale quickly.
    const archive = new FileStore({ root: archiveRoot, fsync: false, locks: { staleMs: 500 } });

    /** Every state the application committed, by maxId (`C` lines); a maxId seen twice must agree. */
    const committed = new Map<number, State>();
    const wrongSet = new Set<string>();
    const wrong = { push: (m: string) => wrongSet.add(m) };
    let newestAcked = 0;
    const killsByTarget: Record<string, number> = {};
    const killsByPhase: Record<string, number> = {};
    const missedTargets: Record<string, number> = {};
    let restores = 0;
    let filesDecoded = 0;
    let summaryRoot: number | undefined;

    function startRun(target: Target, round: number): Run {
      const spawnedAt = Date.now();
      // Rounds aimed at compactions take turns at levels 1, 2 and 3; those
      // aimed at checkpoints at PASSIVE and TRUNCATE (a TRUNCATE threshold
      // equal to the PASSIVE one makes every checkpoint a TRUNCATE).
      const turn = Math.floor(round / TARGETS.length);
      let want: string | undefined;
      let truncate = r.chance(0.3);
      if (target === "compaction") want = `000${(turn % 3) + 1}/`;
      if (target === "checkpoint") {
        truncate = turn % 2 === 1;
        want = truncate ? "TRUNCATE" : "PASSIVE";
      }
      const child = spawn(
        process.execPath,
        [
          fixture,
          JSON.stringify({
            dist,
            db: dbPath,
            root: storeRoot,
            archive: archiveRoot,
            acked: ackedPath,
            seed: SEED * 1000 + round,
            replicator: { ...REPLICATOR_OPTIONS, truncatePages: truncate ? 40 : 160 },
            target,
            slowMs: [0, 3],
            slowTargetMs: [4, 20],
            commitGapMs: 8,
          }),
        ],
        { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
      );
      const run: Run = {
        child,
        closed: Promise.resolve(),
        open: new Map(),
        ready: false,
        killedAt: undefined,
        readyAfter: undefined,
        commits: 0,
        stderr: "",
        exitedOnItsOwn: false,
      };
      const kill = (why: string) => {
        if (run.killedAt !== undefined) return;
        run.killedAt = why;
        child.kill("SIGKILL");
      };
      // Inside the phase: at once or a few ms into it (the aimed phase lasts 8-40 ms or more).
      const aim = () => {
        const wait = r.int(0, 3);
        if (wait === 0) kill(target);
        else setTimeout(() => kill(target), wait);
      };
      // The aimed phase's start, or (some rounds) the moment its request completed:
      // the object landed but the replicator has not seen the put resolve.
      const afterLanding = target !== "random" && r.chance(0.35);
      const rawDetail = new Map<string, string>();
      const aimedAt = (detail: string | undefined) =>
        want === undefined || (detail ?? "").startsWith(want);
      // Most rounds aim at the phase under load (after start); some at the start's own uploads.
      let armed = r.chance(0.25);
      const armDelay = r.int(0, 400);
      if (target === "random") setTimeout(() => kill("random"), r.int(150, 1500));
      let buffered = "";
      child.stdout!.on("data", (d: Buffer) => {
        buffered += d.toString();
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf("\n");
          const [kind, a, b, c] = line.split(" ");
          if (kind === "B") {
            let detail = "";
            if (a === "compaction") detail = `L${Number.parseInt(b!.slice(0, 4), 16)}`;
            else if (a === "checkpoint") detail = b!;
            else if (a === "snapshot" || a === "l0" || a === "head")
              detail = run.ready ? "" : "(start)";
            run.open.set(a!, detail);
            rawDetail.set(a!, b ?? "");
            if (a === target && armed && !afterLanding && aimedAt(b)) aim();
          } else if (kind === "L") {
            const detail = run.open.get(a!);
            if (detail !== undefined) run.open.set(a!, `${detail} landed`.trim());
            if (a === target && armed && afterLanding && aimedAt(rawDetail.get(a!))) aim();
          } else if (kind === "E") {
            run.open.delete(a!);
          } else if (kind === "C") {
            const state = { maxId: Number(a), rows: Number(b), bytes: Number(c) };
            const known = committed.get(state.maxId);
            if (known && stateText(known) !== stateText(state)) {
              wrong.push(`committed state ${stateText(known)} lost: later ${stateText(state)}`);
            }
            committed.set(state.maxId, state);
            run.commits++;
          } else if (kind === "S") {
            newestAcked = Math.max(newestAcked, Number(a));
          } else if (kind === "ready") {
            run.readyAfter = Date.now() - spawnedAt;
            run.ready = true;
            if (!armed) setTimeout(() => (armed = true), armDelay);
          }
        }
      });
      child.stderr!.on("data", (d: Buffer) => {
        run.stderr += d.toString();
      });
      const timer = setTimeout(() => kill(`${target} (not reached)`), TARGET_TIMEOUT_MS);
      run.closed = new Promise<void>((res) => {
        child.on("close", () => {
          clearTimeout(timer);
          if (run.killedAt === undefined) run.exitedOnItsOwn = true;
          res();
        });
      });
      return run;
    }

    /**
     * Every LTX file (level files and skeletons) decodes with its checksums; a
     * level file's header names the TXIDs of its key, and its bytes equal the
     * archive's copy (keys are immutable). Files the child stored but died
     * before archiving are archived here.
     */
    async function checkStoreFiles(): Promise<void> {
      for (const key of await listKeys(store)) {
        if (!key.endsWith(".ltx")) continue;
        const bytes = await getBytes(store, key);
        if (!bytes) continue;
        const decoded = decodeLtx(bytes);
        filesDecoded++;
        const pos = parseReplicaKey(key);
        if (!pos) continue;
        expect(
          [decoded.header.minTXID, decoded.header.maxTXID],
          `${key}: header TXIDs differ from the key`,
        ).toEqual([pos.minTXID, pos.maxTXID]);
        const copy = await getBytes(archive, key);
        if (copy) expect(sameBytes(copy, bytes), `${key} changed content`).toBe(true);
        else await archive.put(key, bytes);
      }
    }

    /** A restore of the latest state: integrity_check ok, every acknowledged id, no older than the newest ack. */
    async function checkRestore(round: number): Promise<void> {
      const out = join(dir, `restore-${round}.db`);
      const res = await restore(store, out);
      restores++;
      try {
        expect(integrity(out), `round ${round}: integrity_check`).toBe("ok");
        expect(
          res.txid,
          `round ${round}: restored TXID older than an acknowledged one`,
        ).toBeGreaterThanOrEqual(newestAcked);
        const db = new Database(out, { readonly: true });
        const present = new Set(db.prepare("SELECT id FROM acked").pluck().all() as number[]);
        db.close();
        const missing = readAcked(ackedPath).filter((id) => !present.has(id));
        expect(missing, `round ${round}: acknowledged but missing`).toEqual([]);
        const state = fileState(out);
        summaryRoot ??= state.summaryRoot;
        expect(stateText(state.scan), `round ${round}: summary row disagrees with the table`).toBe(
          stateText(state.summary),
        );
      } finally {
        rmSync(out, { force: true });
      }
    }

    // The follower: queries in a loop for the whole run, recording what it served.
    const served: Served[] = [];
    const followerErrors = new Map<string, number>();
    let replica: Replica | undefined;
    let following = true;
    let follower: Promise<void> = Promise.resolve();
    let fullScans = 0;
    // Errors the replica recorded in status while its queries still answered
    // (e.g. a planned file deleted by retention: re-planned, retried).
    const recovered = new Map<string, number>();
    async function follow(rep: Replica): Promise<void> {
      let lastTxid = 0;
      let lastErrorAt = 0;
      while (following) {
        const recorded = rep.status().lastError;
        if (recorded && recorded.at.getTime() !== lastErrorAt) {
          lastErrorAt = recorded.at.getTime();
          const code = recorded.code ?? "unknown";
          recovered.set(code, (recovered.get(code) ?? 0) + 1);
        }
        const before = rep.status().txid;
        try {
          const rows = await rep.values(
            "SELECT rows, max_id, bytes, (SELECT coalesce(max(id), 0) FROM acked) FROM summary WHERE k = 1",
          );
          const after = rep.status().txid;
          const row = rows[0] as number[];
          if (before === after && after !== null) {
            served.push({ txid: after, rows: row[0]!, maxId: row[1]!, bytes: row[2]! });
            if (row[3] !== row[1]) {
              wrong.push(`replica at TXID ${after}: max(id) ${row[3]} but summary says ${row[1]}`);
            }
            if (after < lastTxid) wrong.push(`replica served TXID ${after} after ${lastTxid}`);
            lastTxid = Math.max(lastTxid, after);
          }
        } catch (err) {
          const code = (err as { code?: string }).code ?? String(err);
          followerErrors.set(code, (followerErrors.get(code) ?? 0) + 1);
        }
        await new Promise((res) => setTimeout(res, 2));
      }
    }
    /**
     * A full scan of the served version: the summary row must describe the
     * table. One statement (one version): a replica following incrementally
     * can hold files retention deleted, which single statements survive by
     * re-planning (see the report of issue 7 about explicit transactions).
     */
    async function fullScan(rep: Replica): Promise<void> {
      const [row] = (await rep.values(
        "SELECT count(*), coalesce(max(id), 0), coalesce(sum(length(payload)), 0), " +
          "(SELECT rows FROM summary), (SELECT max_id FROM summary), (SELECT bytes FROM summary) FROM acked",
      )) as number[][];
      expect(row!.slice(0, 3), "replica: summary row disagrees with the table").toEqual(
        row!.slice(3),
      );
      fullScans++;
    }

    const started = Date.now();
    for (let round = 0; round < KILLS; round++) {
      const target = TARGETS[round % TARGETS.length]!;
      const t0 = Date.now();
      const run = startRun(target, round);
      await run.closed;
      if (run.exitedOnItsOwn) {
        throw new Error(`round ${round}: the writer exited on its own: ${run.stderr}`);
      }
      killsByTarget[target] = (killsByTarget[target] ?? 0) + 1;
      if (run.killedAt?.endsWith("(not reached)")) {
        missedTargets[target] = (missedTargets[target] ?? 0) + 1;
      }
      const phase = phaseAtDeath(run.open);
      killsByPhase[phase] = (killsByPhase[phase] ?? 0) + 1;
      if (process.env.PAGECAST_DEBUG) {
        console.log(
          `round ${round} ${target}: died in ${phase} after ${Date.now() - t0} ms (ready after ${run.readyAfter}, ${run.commits} commits), ` +
            `newest ack ${newestAcked}, replica at ${replica?.status().txid}, ${committed.size} commits`,
        );
      }

      await checkStoreFiles();
      if ((await getBytes(store, HEAD_OBJECT_KEY)) !== undefined) await checkRestore(round);
      if (!replica && (await getBytes(store, HEAD_OBJECT_KEY))) {
        replica = await openReplica({ store, wasm: readSqliteWasm, pollIntervalMs: 5 });
        follower = follow(replica);
      }
      if (replica && round % 7 === 6) await fullScan(replica);
    }

    // The follower catches up with the last head, then stops.
    const head = parseHeadObject((await getBytes(store, HEAD_OBJECT_KEY))!);
    const deadline = Date.now() + 20_000;
    while (replica && (replica.status().txid ?? 0) < head.txid && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
    }
    following = false;
    await follower;
    expect(replica?.status().txid, "the follower caught up with the last head").toBe(head.txid);
    if (replica) await fullScan(replica);
    await replica?.close();

    // What was published at each TXID, from every LTX file ever stored: the
    // summary row in the newest image of its page (a delta without that page
    // left the row as it was before the delta's first TXID).
    expect(summaryRoot).toBeDefined();
    const files = (await listKeys(archive))
      .flatMap((key) => {
        const pos = parseReplicaKey(key);
        return pos ? [{ key, ...pos }] : [];
      })
      .sort((a, b) => a.maxTXID - b.maxTXID || b.minTXID - a.minTXID);
    const published = new Map<number, State>();
    for (const f of files) {
      const bytes = (await getBytes(archive, f.key))!;
      const page = decodeLtx(bytes).pages.find((p) => p.pgno === summaryRoot);
      const state = page
        ? summaryFromPage(page.data)
        : f.minTXID > 1
          ? published.get(f.minTXID - 1)
          : undefined;
      if (!state) {
        wrong.push(`${f.key}: no summary state`);
        continue;
      }
      const known = published.get(f.maxTXID);
      if (known && stateText(known) !== stateText(state)) {
        wrong.push(
          `TXID ${f.maxTXID}: ${f.key} holds ${stateText(state)}, another file ${stateText(known)}`,
        );
      }
      published.set(f.maxTXID, state);
    }
    // Published states are committed ones, in commit order.
    let previous: State | undefined;
    for (const [txid, state] of [...published].sort((a, b) => a[0] - b[0])) {
      const c = committed.get(state.maxId);
      if (!c || stateText(c) !== stateText(state)) {
        wrong.push(`TXID ${txid}: published ${stateText(state)}, never committed`);
      }
      if (previous && state.maxId < previous.maxId) {
        wrong.push(`TXID ${txid}: published ${stateText(state)} after ${stateText(previous)}`);
      }
      previous = state;
    }
    // Every served version was published, with the contents published.
    const distinct = new Map<number, Served>();
    for (const s of served) {
      const p = published.get(s.txid);
      if (!p) wrong.push(`TXID ${s.txid} served but never published`);
      else if (stateText(p) !== stateText(s)) {
        wrong.push(`TXID ${s.txid}: served ${stateText(s)}, published ${stateText(p)}`);
      }
      distinct.set(s.txid, s);
    }
    // Cross-check of the page-level reading above: full restores of a sample of served TXIDs.
    const versions = [...distinct.values()];
    const step = Math.max(1, Math.floor(versions.length / 12));
    let archiveRestores = 0;
    for (let i = 0; i < versions.length; i += step) {
      const s = versions[i]!;
      const out = join(dir, `archive-${s.txid}.db`);
      await restore(archive, out, { txid: s.txid });
      archiveRestores++;
      const { summary, scan } = fileState(out);
      rmSync(out, { force: true });
      if (stateText(summary) !== stateText(s) || stateText(scan) !== stateText(s)) {
        wrong.push(
          `TXID ${s.txid}: served ${stateText(s)}, restore has ${stateText(summary)} (scan ${stateText(scan)})`,
        );
      }
    }
    const report = {
      kills: KILLS,
      seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
      killsByTarget,
      killsByPhase,
      targetsNotReached: missedTargets,
      restores,
      archiveRestores,
      filesDecoded,
      commits: committed.size,
      acked: readAcked(ackedPath).length,
      publishedVersions: published.size,
      queriesServed: served.length,
      versionsServed: distinct.size,
      fullScans,
      followerErrors: Object.fromEntries(followerErrors),
      followerRecoveredErrors: Object.fromEntries(recovered),
      wrongAnswers: wrongSet.size,
    };
    console.log(`[crash-torture] ${JSON.stringify(report)}`);
    expect([...wrongSet], "WRONG ANSWER").toEqual([]);
    expect(report.acked).toBeGreaterThan(KILLS);
    expect(distinct.size).toBeGreaterThan(KILLS);
    await store.close();
    await archive.close();
  },
  Math.max(600_000, KILLS * 6000),
);
