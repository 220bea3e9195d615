/**
 * Real S3 end to end (issue 7): the whole flow a user runs, against Ceph RGW,
 * through the public entry points only (`pagecast` as Node resolves it, and
 * `pagecast/node`): an application writes with better-sqlite3 + Drizzle, a
 * Replicator publishes to an s3:// URL, replicas opened on the same URL answer
 * like the primary and follow it, the router splits reads and writes, time
 * travel and restore return past states, a second writer is refused by the
 * lease, and the `pagecast` CLI works on the URL as a child process.
 *
 * Runs only when PAGECAST_RGW_ENDPOINT is set (CI starts RGW with
 * ../shared/tools/rgw-up.sh). Steps share state and run in order.
 */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type Database from "better-sqlite3";
import { count, eq, sql, sum } from "drizzle-orm";
import { type BetterSQLite3Database, drizzle } from "drizzle-orm/better-sqlite3";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  createRouter,
  HEAD_OBJECT_KEY,
  listAllLevels,
  openReplica,
  openStore,
  parseHeadObject,
  type Replica,
  type ReplicaRequestKind,
  type RouterDatabase,
  type StoreCounters,
  timeTravel,
  vfsStatus,
} from "../../src/index.node.js";
import { betterSqlitePrimary, LeaseHeldError, Replicator, restore } from "../../src/node.js";
import { decodeBookmark } from "../../src/router/write-position.js";
import { dump, dumpFile, integrity, openApp, tempDir } from "../replicator/helpers.js";

const endpoint = process.env.PAGECAST_RGW_ENDPOINT;
const credentials = {
  accessKeyId: process.env.PAGECAST_RGW_ACCESS_KEY ?? "S3RVER",
  secretAccessKey: process.env.PAGECAST_RGW_SECRET_KEY ?? "S3RVER",
};
const bucket = `pagecast-e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const url = `s3://${bucket}/apps/ledger?endpoint=${encodeURIComponent(endpoint ?? "http://127.0.0.1:1")}&region=us-east-1`;
const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = join(root, "bin/pagecast.js");
const built = existsSync(join(root, "dist/cli/main.js"));

// The application's schema, as an app would declare it for Drizzle.
const accounts = sqliteTable("accounts", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
  balance: integer("balance").notNull(),
});
const events = sqliteTable("events", {
  id: integer("id").primaryKey(),
  accountId: integer("account_id").notNull(),
  kind: text("kind").notNull(),
  amount: integer("amount").notNull(),
  note: text("note").notNull(),
});
const schema = { accounts, events };
const SCHEMA_SQL = `
  CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance INTEGER NOT NULL);
  CREATE TABLE events (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, kind TEXT NOT NULL,
                       amount INTEGER NOT NULL, note TEXT NOT NULL);
  CREATE INDEX events_account ON events (account_id);
`;

/** Queries whose answers fingerprint the whole state (run on both sides). */
const QUERIES = [
  "SELECT count(*) AS n, sum(balance) AS total, max(id) AS last FROM accounts",
  "SELECT id, name, balance FROM accounts ORDER BY balance DESC, id LIMIT 10",
  "SELECT kind, count(*) AS n, sum(amount) AS s, max(id) AS last FROM events GROUP BY kind ORDER BY kind",
  "SELECT a.name, count(e.id) AS n FROM accounts a LEFT JOIN events e ON e.account_id = a.id GROUP BY a.id ORDER BY n DESC, a.id LIMIT 5",
  "SELECT sum(length(note)) AS bytes, min(id) AS first FROM events WHERE account_id % 7 = 3",
];
const KINDS = ["deposit", "withdrawal", "fee", "refund"];

/** The state as `QUERIES` see it on the primary. */
function primaryState(app: Database.Database): unknown[][] {
  return QUERIES.map((q) => app.prepare(q).all());
}

async function replicaState(replica: Replica): Promise<unknown[][]> {
  // One read transaction: all the answers come from the same version.
  return replica.transaction(async (tx) => {
    const out: unknown[][] = [];
    for (const q of QUERIES) out.push(await tx.query(q));
    return out;
  });
}

/** The first `code` along an error's cause chain (Drizzle wraps driver errors). */
function rootCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as never) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function requestDelta(a: StoreCounters, b: StoreCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a.requests) as (keyof StoreCounters["requests"])[]) {
    out[k] = b.requests[k] - a.requests[k];
  }
  return out;
}

function replicaDelta(
  a: Record<ReplicaRequestKind, { requests: number }>,
  b: Record<ReplicaRequestKind, { requests: number }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a) as ReplicaRequestKind[]) {
    const d = b[k].requests - a[k].requests;
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Everything the CLI printed (checked for the secret). */
const cliOutputs: string[] = [];

/** Runs `pagecast ...` as a user would, credentials in the environment. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        timeout: 30_000,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        cliOutputs.push(`${stdout}${stderr}`);
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

describe.skipIf(!endpoint)("end to end on Ceph RGW", () => {
  const cleanups: (() => unknown)[] = [];
  const savedEnv = {
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
  };
  let dir: string;
  let dbPath: string;
  let app: Database.Database;
  let orm: BetterSQLite3Database<typeof schema>;
  let replicator: Replicator;
  let replica: Replica;
  let router: RouterDatabase<typeof schema>;
  /** States of the primary by TXID, with a time at which each was the newest. */
  const history: { txid: number; after: number; state: unknown[][]; dump: string }[] = [];
  let nextEvent = 1;

  /** One application transaction: a few events and the balances they move. */
  function appTransaction(round: number, n: number): void {
    orm.transaction((tx) => {
      for (let i = 0; i < n; i++) {
        const id = nextEvent++;
        const accountId = 1 + ((id * 7919 + round) % 1500);
        const kind = KINDS[(id + round) % KINDS.length]!;
        const amount = kind === "deposit" || kind === "refund" ? 10 + (id % 90) : -(1 + (id % 40));
        tx.insert(events)
          .values({ id, accountId, kind, amount, note: `event ${id} round ${round} `.repeat(4) })
          .run();
        tx.update(accounts)
          .set({ balance: sql`${accounts.balance} + ${amount}` })
          .where(eq(accounts.id, accountId))
          .run();
      }
    });
  }

  async function syncAndRecord(): Promise<number> {
    const pos = await replicator.sync();
    history.push({ txid: pos.txid, after: Date.now(), state: primaryState(app), dump: dump(app) });
    // Commit times have millisecond resolution: keep recorded moments apart.
    await sleep(5);
    return pos.txid;
  }

  beforeAll(async () => {
    // Credentials come from the environment, as for any AWS SDK program (and the CLI).
    process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
    const client = new S3Client({
      endpoint: endpoint!,
      region: "us-east-1",
      forcePathStyle: true,
      credentials,
    });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    const tmp = tempDir("pagecast-e2e-");
    dir = tmp.dir;
    cleanups.push(tmp.cleanup);
    dbPath = join(dir, "ledger.db");
    app = openApp(dbPath);
    cleanups.push(() => app.close());
    orm = drizzle(app, { schema });
  });

  afterAll(async () => {
    while (cleanups.length) await cleanups.pop()!();
    const sweeper = await openStore(`s3://${bucket}?endpoint=${encodeURIComponent(endpoint!)}`, {
      credentials,
    });
    for (;;) {
      const page = await sweeper.list();
      if (page.objects.length === 0) break;
      await sweeper.deleteMany(page.objects.map((o) => o.key));
    }
    await sweeper.close();
    const client = new S3Client({
      endpoint: endpoint!,
      region: "us-east-1",
      forcePathStyle: true,
      credentials,
    });
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    client.destroy();
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test("replicate: the application's writes reach S3; a sync is 2 PUTs, an idle sync none", async () => {
    app.exec(SCHEMA_SQL);
    orm.transaction((tx) => {
      for (let id = 1; id <= 1500; id++) {
        tx.insert(accounts)
          .values({ id, name: `account-${id}`.padEnd(40, "."), balance: 1000 })
          .run();
      }
    });
    replicator = await Replicator.start({
      db: dbPath,
      url,
      syncInterval: 0,
      writerId: "e2e-primary",
      // Compaction only when the test asks (compactNow), so request counts are exact.
      compaction: { l1: 3_600_000, l2: 3_600_000, l3: 3_600_000 },
    });
    cleanups.push(() => replicator.close());
    expect(replicator.store.url).toContain(`s3://${bucket}/apps/ledger`);
    expect(replicator.store.url).not.toContain(credentials.secretAccessKey);
    await syncAndRecord();

    appTransaction(0, 50);
    const before = replicator.store.counters();
    await syncAndRecord();
    expect(requestDelta(before, replicator.store.counters())).toEqual({
      get: 0,
      head: 0,
      put: 2,
      list: 0,
      delete: 0,
    });
    const idle = replicator.store.counters();
    await replicator.sync();
    await replicator.sync();
    expect(requestDelta(idle, replicator.store.counters())).toEqual({
      get: 0,
      head: 0,
      put: 0,
      list: 0,
      delete: 0,
    });

    // What landed in the bucket: a snapshot, L0 files, and the head naming this writer.
    const files = await listAllLevels(replicator.store);
    expect(files.some((f) => f.level === 9)).toBe(true);
    expect(files.filter((f) => f.level === 0).length).toBeGreaterThanOrEqual(1);
    const head = parseHeadObject((await replicator.store.get(HEAD_OBJECT_KEY)).body!);
    expect(head).toMatchObject({ writerId: "e2e-primary", txid: replicator.position.txid });
    expect(replicator.stats().errors).toBe(0);
  });

  test("a replica on the same URL answers like the primary; an idle poll is 1 conditional GET", async () => {
    // No bound on the wait for a due poll (default 1 s, which a loaded machine's RGW
    // round trips can pass): the lazily polling replica's next query sees every sync.
    replica = await openReplica(url, {
      pollIntervalMs: 0,
      pollWaitMs: Number.POSITIVE_INFINITY,
      storeOptions: { credentials },
    });
    cleanups.push(() => replica.close());
    expect(await replicaState(replica)).toEqual(primaryState(app));
    const st = replica.status();
    expect(st).toMatchObject({
      txid: replicator.position.txid,
      health: "healthy",
      discovery: "head",
      pinned: false,
    });
    expect(st.url).not.toContain(credentials.secretAccessKey);
    // Drizzle-built SQL runs on the replica too.
    const [row] = await replica.query<{ n: number }>(
      "SELECT count(*) AS n FROM events WHERE kind = ?",
      ["deposit"],
    );
    expect(row!.n).toBe(
      orm.select({ n: count() }).from(events).where(eq(events.kind, "deposit")).get()!.n,
    );

    const before = replica.status().requests;
    await replica.poll();
    expect(replicaDelta(before, replica.status().requests)).toEqual({ poll: 1 });
    // Warm: the same query again costs the poll (interval 0) and no page reads.
    const warm = replica.status().requests;
    await replicaState(replica);
    expect(replicaDelta(warm, replica.status().requests)).toEqual({ poll: 1 });
  });

  test("the replica follows while the application keeps writing", async () => {
    const follower = await openReplica(url, { pollIntervalMs: 50, backgroundPollMs: 50 });
    cleanups.push(() => follower.close());
    expect(await replicaState(follower)).toEqual(primaryState(app));
    for (let round = 1; round <= 10; round++) {
      appTransaction(round, 20 + round * 3);
      if (round % 3 === 0) appTransaction(round, 5); // two transactions in one sync
      const txid = await syncAndRecord();
      if (round === 6) await replicator.compactNow();
      const expected = history[history.length - 1]!.state;
      // The background poll brings the new version without any explicit call.
      await until(`follower at TXID ${txid}`, async () =>
        follower.status().txid === txid ? true : undefined,
      );
      expect(await replicaState(follower)).toEqual(expected);
      // The lazily polling replica catches up on its next query.
      expect(await replicaState(replica)).toEqual(expected);
    }
    expect(replicator.stats().compactions[1]).toBeGreaterThan(0);
    expect(follower.status().lastError).toBeNull();
    expect(replica.status().lastError).toBeNull();
  });

  test("the Drizzle router sends reads to the replica and writes to the primary", async () => {
    router = createRouter({
      primary: betterSqlitePrimary(app, { replicator, resolveWaitMs: 200 }),
      replicas: [replica],
      schema,
      // Sessions (read-your-writes) ride on AsyncLocalStorage, which pagecast registers in Node.
    });
    const s0 = vfsStatus(router);
    const top = await router
      .select()
      .from(accounts)
      .orderBy(sql`${accounts.balance} desc`, accounts.id)
      .limit(10);
    expect(top).toEqual(app.prepare(QUERIES[1]!).all());
    const [agg] = await router.select({ n: count(), s: sum(events.amount) }).from(events);
    expect(agg!.n).toBe(nextEvent - 1);
    const s1 = vfsStatus(router);
    expect(s1.reads.replicas - s0.reads.replicas).toBe(2);
    expect(s1.reads.primary - s0.reads.primary).toBe(0);

    // A write goes to the primary file at once; the replica has it after the next sync.
    await router.insert(accounts).values({ id: 5000, name: "via-router", balance: 7 });
    const s2 = vfsStatus(router);
    expect(s2.writes - s1.writes).toBe(1);
    expect(app.prepare("SELECT name FROM accounts WHERE id = 5000").get()).toEqual({
      name: "via-router",
    });
    expect(await replica.query("SELECT name FROM accounts WHERE id = 5000")).toEqual([]);

    // Read-your-writes within a session: the read after a write comes from the primary.
    const seen = await router.$withSession(async () => {
      await router.update(accounts).set({ balance: 8 }).where(eq(accounts.id, 5000));
      return router.select().from(accounts).where(eq(accounts.id, 5000));
    });
    expect(seen).toEqual([{ id: 5000, name: "via-router", balance: 8 }]);
    expect(vfsStatus(router).reads.primary - s2.reads.primary).toBe(1);

    // Once the replica holds the writes, reads go back to it. The router knows
    // which TXID holds them only once it resolved their position (after the
    // replicator's publish, a short grace and a sync of its own, on its own
    // schedule): until then a read goes to the primary. Wait for that, not race it.
    await syncAndRecord();
    await until("the writes' TXID resolved", async () =>
      decodeBookmark(router.$bookmark()).after === undefined ? true : undefined,
    );
    await replica.poll();
    const fromReplica = await router.select().from(accounts).where(eq(accounts.id, 5000));
    expect(fromReplica).toEqual([{ id: 5000, name: "via-router", balance: 8 }]);
    const s3 = vfsStatus(router);
    expect(s3.reads.replicas - s2.reads.replicas).toBe(1);
    expect(s3.replicas[0]!.status.url).not.toContain(credentials.secretAccessKey);
  });

  test("time travel returns past states, by TXID and by time, and refuses writes", async () => {
    const past = history[3]!;
    const byTxid = await timeTravel(router, { txid: past.txid });
    try {
      expect(byTxid.$at.txid).toBe(past.txid);
      expect(await replicaState(byTxid.$replica)).toEqual(past.state);
      const [n] = await byTxid.select({ n: count() }).from(events);
      expect(n!.n).toBe((past.state[2] as { n: number }[]).reduce((a, r) => a + r.n, 0));
      // The past has no insert/update (a type error); raw writing SQL is refused at run time.
      const refused = await byTxid.all(sql`DELETE FROM accounts`).catch((e: unknown) => e);
      expect(rootCode(refused)).toBe("TIME_TRAVEL_READ_ONLY");
      // Pinned: it never polls the head.
      expect(byTxid.$replica.status().requests.poll.requests).toBe(0);
    } finally {
      await byTxid.close();
    }

    const earlier = history[6]!;
    await timeTravel(router, new Date(earlier.after).toISOString(), async (db) => {
      expect(db.$at.txid).toBe(earlier.txid);
      expect(await replicaState(db.$replica)).toEqual(earlier.state);
      const rows = await db.select().from(accounts).where(eq(accounts.id, 5000));
      expect(rows).toEqual([]); // inserted later through the router
    });
  });

  test("restore: latest and point in time, integrity_check ok, identical to the primary", async () => {
    const latest = join(dir, "restored-latest.db");
    const res = await restore(url, latest);
    expect(res.txid).toBe(replicator.position.txid);
    expect(res.checksumVerified).toBe("head");
    expect(integrity(latest)).toBe("ok");
    expect(dumpFile(latest)).toBe(dump(app));

    const target = history[5]!;
    const byTxid = join(dir, "restored-txid.db");
    expect((await restore(url, byTxid, { txid: target.txid })).txid).toBe(target.txid);
    expect(integrity(byTxid)).toBe("ok");
    expect(dumpFile(byTxid)).toBe(target.dump);

    const moment = history[8]!;
    const byTime = join(dir, "restored-time.db");
    expect((await restore(url, byTime, { timestamp: new Date(moment.after) })).txid).toBe(
      moment.txid,
    );
    expect(integrity(byTime)).toBe("ok");
    expect(dumpFile(byTime)).toBe(moment.dump);
  });

  test("a second Replicator on the same URL fails with the lease error naming the holder", async () => {
    const err = await Replicator.start({
      db: dbPath,
      url,
      syncInterval: 0,
      writerId: "e2e-intruder",
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseHeldError);
    expect(err).toMatchObject({ code: "LEASE_HELD", holder: { writerId: "e2e-primary" } });
    expect((err as Error).message).toContain("e2e-primary");
    expect((err as LeaseHeldError).holder.pid).toBe(process.pid);
    // The holder is unaffected and keeps publishing.
    appTransaction(99, 10);
    const txid = await syncAndRecord();
    const head = parseHeadObject((await replicator.store.get(HEAD_OBJECT_KEY)).body!);
    expect(head).toMatchObject({ writerId: "e2e-primary", txid });
  });

  test.skipIf(!built)(
    "the pagecast CLI works on the URL: status, query, restore, ltx list/verify, verify",
    async () => {
      const txid = replicator.position.txid;
      const status = await cli(["status", url, "--json"]);
      expect(status.code, status.stderr).toBe(0);
      const st = JSON.parse(status.stdout);
      expect(JSON.stringify(st)).not.toContain(credentials.secretAccessKey);
      expect(st).toEqual([expect.objectContaining({ status: expect.objectContaining({ txid }) })]);

      const q = await cli(["query", url, QUERIES[0]!, "--json"]);
      expect(q.code).toBe(0);
      expect(JSON.parse(q.stdout)).toEqual(primaryState(app)[0]);
      const past = history[4]!;
      const qPast = await cli(["query", url, QUERIES[2]!, "--at", `txid:${past.txid}`, "--json"]);
      expect(qPast.code).toBe(0);
      expect(JSON.parse(qPast.stdout)).toEqual(past.state[2]);

      const out = join(dir, "cli-restored.db");
      const r = await cli(["restore", url, out]);
      expect(r.code).toBe(0);
      expect(integrity(out)).toBe("ok");
      expect(dumpFile(out)).toBe(dump(app));
      const outPast = join(dir, "cli-restored-past.db");
      expect((await cli(["restore", url, outPast, "--txid", String(past.txid)])).code).toBe(0);
      expect(dumpFile(outPast)).toBe(past.dump);

      const list = await cli(["ltx", "list", url, "--json"]);
      expect(list.code).toBe(0);
      const listed = JSON.parse(list.stdout) as { key: string; level: number }[];
      const files = await listAllLevels(replicator.store);
      expect(listed.map((f) => f.key)).toEqual(files.map((f) => f.key));
      const levels = new Set(listed.map((f) => f.level));
      for (const level of [0, 1, 9]) expect(levels.has(level), `level ${level}`).toBe(true);
      // Every file of the replica, downloaded, passes `ltx verify`.
      const local: string[] = [];
      for (const f of files) {
        const path = join(dir, `${f.level}-${f.key.split("/").pop()}`);
        writeFileSync(path, (await replicator.store.get(f.key)).body!);
        local.push(path);
      }
      const verified = await cli(["ltx", "verify", ...local]);
      expect(verified.code).toBe(0);
      expect(verified.stdout.match(/^ok /gm)).toHaveLength(files.length);

      // `pagecast verify` writes a marker into the primary and waits for it on the replica:
      // this process plays the running replicator.
      const syncing = setInterval(() => void replicator.sync().catch(() => {}), 100);
      try {
        const v = await cli(["verify", dbPath, url, "--timeout", "20s", "--json"]);
        expect(v.code, v.stdout + v.stderr).toBe(0);
      } finally {
        clearInterval(syncing);
      }
      // Whatever a command printed, the secret was never part of it.
      for (const out of cliOutputs) expect(out).not.toContain(credentials.secretAccessKey);
    },
    60_000,
  );
});
