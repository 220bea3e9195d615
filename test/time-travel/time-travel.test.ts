/**
 * timeTravel against a history written by the Replicator: every accepted
 * form of `when` lands on the state a restore to the same moment produces;
 * clear errors for the future, garbage, impossible dates and times before
 * retention; writes are refused; the callback form and `await using` close.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { createRouter } from "../../src/router/router.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { dropMemoryStore, MemoryStore } from "../../src/storage/memory-store.js";
import { type PastDatabase, timeTravel } from "../../src/time-travel/time-travel.js";
import type { When } from "../../src/time-travel/when.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import type { Replica } from "../../src/vfs/replica.js";
import { registerNodeSqliteWasm } from "../../src/vfs-node/node-wasm.js";
import { primaryFile, schema, tempDir, users } from "../router/helpers.js";

registerNodeSqliteWasm();

const STORE_NAME = `time-travel-${Date.now().toString(36)}`;
let dir: string;
let cleanupDir: () => void;
let file: Database.Database;
let store: MemoryStore;
let replicator: Replicator;
let replica: Replica;
/** Position and commit time of each recorded state. */
const states: { txid: number; time: number; names: string[] }[] = [];
let startTime: number;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  ({ dir, cleanup: cleanupDir } = tempDir("pagecast-tt-"));
  file = primaryFile(dir);
  store = new MemoryStore({ name: STORE_NAME });
  startTime = Date.now();
  replicator = await Replicator.start({
    db: join(dir, "primary.db"),
    store,
    syncInterval: 0,
    compaction: false,
  });
  const names = () => file.prepare("select name from users order by id").pluck().all() as string[];
  states.push({ ...replicator.position, time: replicator.position.timestamp, names: names() });
  for (let i = 0; i < 4; i++) {
    await sleep(15);
    file.prepare("insert into users (name) values (?)").run(`v${i}`);
    if (i === 2) file.prepare("update users set name = 'ADA' where id = 1").run();
    const pos = await replicator.sync();
    states.push({ txid: pos.txid, time: pos.timestamp, names: names() });
  }
  replica = await openReplica(`memory://${STORE_NAME}`, { pollIntervalMs: 0 });
}, 60_000);

afterAll(async () => {
  await replica?.close();
  await replicator?.close();
  file?.close();
  dropMemoryStore(STORE_NAME);
  cleanupDir?.();
});

/** The names a restore to `target` holds. */
async function restoredNames(target: { txid: number } | { timestamp: number }): Promise<string[]> {
  const out = join(dir, `restore-${Math.random().toString(36).slice(2)}.db`);
  await restore(store, out, target);
  const db = new Database(out, { readonly: true });
  try {
    return db.prepare("select name from users order by id").pluck().all() as string[];
  } finally {
    db.close();
  }
}

async function namesAt(when: When, clock?: number): Promise<string[]> {
  return timeTravel(replica, when, clock ? { clock: () => clock } : {}, async (past) =>
    (await past.select({ name: users.name }).from(users).orderBy(users.id)).map((r) => r.name),
  );
}

function rootCode(err: unknown): string | undefined {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as never) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

describe("timeTravel: every accepted form equals a restore at the same moment", () => {
  test("{ txid }, Date, epoch ms, ISO with a zone", async () => {
    for (const s of states) {
      const want = await restoredNames({ txid: s.txid });
      expect(want).toEqual(s.names);
      expect(await namesAt({ txid: s.txid })).toEqual(want);
      expect(await namesAt(new Date(s.time))).toEqual(want);
      expect(await namesAt(s.time + 5)).toEqual(await restoredNames({ timestamp: s.time + 5 }));
      expect(await namesAt(new Date(s.time).toISOString())).toEqual(want);
    }
    // An offset zone names the same instant.
    const s = states[2]!;
    const shifted = new Date(s.time + 2 * 3_600_000).toISOString().replace("Z", "+02:00");
    expect(await namesAt(shifted)).toEqual(s.names);
  });

  test("relative forms, evaluated against the clock", async () => {
    const s = states[3]!;
    const cases: [string, number][] = [
      ["an hour ago", 3_600_000],
      ["1.5 hours ago", 5_400_000],
      ["24 hours ago", 86_400_000],
      ["2 days ago", 2 * 86_400_000],
      ["a week ago", 604_800_000],
      ["30 minutes ago", 1_800_000],
      ["10 seconds ago", 10_000],
    ];
    for (const [when, ms] of cases) {
      expect(await namesAt(when, s.time + ms), when).toEqual(s.names);
    }
    // Between two commits: the newest state at or before the moment.
    const between = Math.floor((states[3]!.time + states[4]!.time) / 2);
    expect(await namesAt("1 second ago", between + 1000)).toEqual(
      await restoredNames({ timestamp: between }),
    );
    expect(await namesAt("1 second ago", between + 1000)).toEqual(states[3]!.names);
    // Now: the latest state.
    expect(await namesAt("0 seconds ago")).toEqual(states[4]!.names);
  });
});

describe("timeTravel errors", () => {
  test("future, garbage, impossible dates, before retention, beyond the newest TXID", async () => {
    await expect(namesAt(new Date(Date.now() + 60_000))).rejects.toMatchObject({
      code: "TIME_TRAVEL_FUTURE",
    });
    await expect(namesAt("in an hour")).rejects.toMatchObject({ code: "TIME_TRAVEL_INVALID_TIME" });
    await expect(namesAt("2025-02-30T10:00:00Z")).rejects.toMatchObject({
      code: "TIME_TRAVEL_IMPOSSIBLE_DATE",
    });
    const early = new Date(startTime - 60_000);
    const err = await namesAt(early).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "TIME_TRAVEL_UNAVAILABLE" });
    const earliest = new Date(states[0]!.time).toISOString();
    expect((err as Error).message).toContain(earliest);
    await expect(namesAt({ txid: 999 })).rejects.toMatchObject({ code: "TIME_TRAVEL_UNAVAILABLE" });
    await expect(timeTravel({} as never, "1 hour ago")).rejects.toMatchObject({
      code: "TIME_TRAVEL_INVALID_SOURCE",
    });
  });

  test("writes are type errors and runtime errors", async () => {
    const past = await timeTravel(replica, { txid: states[1]!.txid });
    try {
      // @ts-expect-error the past has no insert
      expect(past.insert).toBeTypeOf("function");
      // @ts-expect-error no update either
      void past.update;
      // @ts-expect-error nor raw run or transactions
      void past.run;
      // @ts-expect-error
      void past.transaction;
      const writable = past as unknown as ReturnType<typeof createRouter<typeof schema>>;
      const e1 = await writable
        .insert(users)
        .values({ name: "nope" })
        .catch((e: unknown) => e);
      expect(rootCode(e1)).toBe("TIME_TRAVEL_READ_ONLY");
      const e2 = await past.all(sql`delete from users`).catch((e: unknown) => e);
      expect(rootCode(e2)).toBe("TIME_TRAVEL_READ_ONLY");
      const e3 = await writable.transaction(async () => undefined).catch((e: unknown) => e);
      expect(rootCode(e3)).toBe("TIME_TRAVEL_READ_ONLY");
      // Reads still work, one version.
      expect(await past.$count(users)).toBe(states[1]!.names.length);
      expect(past.$at.txid).toBe(states[1]!.txid);
    } finally {
      await past.close();
    }
  });
});

describe("timeTravel lifetimes and sources", () => {
  test("the callback form and `await using` close the pinned replica", async () => {
    let kept: PastDatabase | undefined;
    const n = await timeTravel(replica, { txid: 2 }, async (past) => {
      kept = past;
      return past.$count(users);
    });
    expect(n).toBe(states[1]!.names.length);
    await expect(kept!.$replica.values("select 1")).rejects.toMatchObject({
      code: "REPLICA_CLOSED",
    });

    let outer: PastDatabase | undefined;
    {
      await using past = await timeTravel(replica, { txid: 3 });
      outer = past;
      expect(await past.$count(users)).toBe(states[2]!.names.length);
    }
    await expect(outer!.$replica.values("select 1")).rejects.toMatchObject({
      code: "REPLICA_CLOSED",
    });
    // A failing callback still closes.
    let failed: PastDatabase | undefined;
    await expect(
      timeTravel(replica, { txid: 3 }, async (past) => {
        failed = past;
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(failed!.$replica.values("select 1")).rejects.toMatchObject({
      code: "REPLICA_CLOSED",
    });
  });

  test("from a router: its schema, its replicas' store", async () => {
    const privateStore = new MemoryStore();
    // A replica over a private store cannot be reopened by URL: the router says where to look.
    const copy = await store.list({});
    for (const o of copy.objects) {
      await privateStore.put(o.key, (await store.get(o.key)).body!);
    }
    const live = await openReplica({ store: privateStore, pollIntervalMs: 0 });
    try {
      const db = createRouter({
        primary: betterSqlitePrimary(file),
        replicas: [live],
        schema,
        context: asyncSessionContext(),
        timeTravel: { store: privateStore },
      });
      const rows = await timeTravel(db, { txid: 4 }, (past) =>
        past.query.users.findMany({ where: eq(users.id, 1), with: { posts: true } }),
      );
      expect(rows).toEqual([
        {
          id: 1,
          name: "ADA",
          posts: [
            { id: 1, userId: 1, title: "hello" },
            { id: 2, userId: 1, title: "again" },
          ],
        },
      ]);
      // Derived from the live replica: its private store needs no naming.
      expect(await timeTravel(live, { txid: 4 }, (past) => past.$count(users))).toBe(
        states[3]!.names.length,
      );
      expect(
        await timeTravel(live, { txid: 4 }, { store: privateStore }, (p) => p.$count(users)),
      ).toBe(states[3]!.names.length);
    } finally {
      await live.close();
      await privateStore.close();
    }
  });
});
