import type Database from "better-sqlite3";
import { eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, test } from "vitest";
import { createRouter } from "../../src/router/router.js";
import { RouterError } from "../../src/router/router-error.js";
import { vfsStatus } from "../../src/router/vfs-status.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { ReplicaError, ReplicaQueryError } from "../../src/vfs/replica-error.js";
import {
  exactPositions,
  fakeReplicaRouter,
  posts,
  primaryFile,
  tempDir,
  users,
} from "./helpers.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

const context = asyncSessionContext();

function setup(options: Parameters<typeof fakeReplicaRouter>[2] = {}) {
  return fakeReplicaRouter((fn) => cleanups.push(fn as () => void), context, options);
}

/** Runs `fn` and reports where its statements went. */
async function where(s: ReturnType<typeof setup>, fn: () => Promise<unknown>) {
  const before = s.counts();
  const batches = s.primary.batches.length;
  await fn();
  const after = s.counts();
  if (s.primary.batches.length > batches) return "primary-batch";
  const p = after.primary - before.primary;
  const r = after.replicas - before.replicas;
  if (p > 0 && r === 0) return "primary";
  if (r > 0 && p === 0) return "replica";
  return `mixed p=${p} r=${r}`;
}

describe("routing per statement kind", () => {
  test("reads go to a replica, everything else to the primary", async () => {
    const s = setup({ readYourWrites: false });
    const { db } = s;
    // Reads: select, relational query, $count, read-only raw SQL, VALUES, WITH ... SELECT, EXPLAIN.
    expect(await where(s, () => db.select().from(users))).toBe("replica");
    expect(await where(s, () => db.query.users.findMany({ with: { posts: true } }))).toBe(
      "replica",
    );
    expect(await where(s, () => db.query.posts.findFirst({ with: { author: true } }))).toBe(
      "replica",
    );
    expect(await where(s, () => db.$count(users))).toBe("replica");
    expect(await where(s, () => db.all(sql`select name from users where id = ${1}`))).toBe(
      "replica",
    );
    expect(await where(s, () => db.get(sql`select name from users where id = ${1}`))).toBe(
      "replica",
    );
    expect(await where(s, () => db.values(sql`values (1), (2)`))).toBe("replica");
    const sq = db.$with("sq").as(db.select().from(users).where(eq(users.id, 1)));
    expect(await where(s, () => db.with(sq).select().from(sq))).toBe("replica");
    expect(await where(s, () => db.all(sql`explain query plan select * from users`))).toBe(
      "replica",
    );

    // Writes, RETURNING, writing CTEs, DDL, PRAGMA, ATTACH, several statements.
    expect(await where(s, () => db.insert(users).values({ id: 3, name: "cy" }))).toBe("primary");
    expect(
      await where(s, async () => {
        const rows = await db.insert(users).values({ id: 4, name: "di" }).returning();
        expect(rows).toEqual([{ id: 4, name: "di" }]);
      }),
    ).toBe("primary");
    expect(await where(s, () => db.update(users).set({ name: "cyd" }).where(eq(users.id, 3)))).toBe(
      "primary",
    );
    expect(await where(s, () => db.delete(posts).where(eq(posts.id, 3)))).toBe("primary");
    expect(
      await where(s, () =>
        db.run(sql`with x(n) as (select 9) insert into users (id, name) select n, 'cte' from x`),
      ),
    ).toBe("primary");
    expect(
      await where(s, () => db.with(sq).update(users).set({ name: "z" }).where(eq(users.id, 99))),
    ).toBe("primary");
    expect(
      await where(s, async () => {
        const rows = await db.all(
          sql`WITH x AS (SELECT 1) UPDATE users SET name = 'ada' WHERE id = 1 RETURNING id`,
        );
        expect(rows).toEqual([[1]]);
      }),
    ).toBe("primary");
    expect(await where(s, () => db.run(sql`create table extra (x)`))).toBe("primary");
    expect(await where(s, () => db.all(sql`pragma table_info(users)`))).toBe("primary");
    expect(await where(s, () => db.run(sql`attach ':memory:' as aux`))).toBe("primary");
    expect(
      await where(s, () =>
        db.run(sql.raw("insert into extra values (1); insert into extra values (2)")),
      ),
    ).toBe("primary");
    // The write in the CTE really landed on the primary.
    expect(s.file.prepare("select name from users where id = 9").pluck().get()).toBe("cte");
    expect(s.file.prepare("select count(*) from extra").pluck().get()).toBe(2);
    expect(s.r1.sql.concat(s.r2.sql).every((q) => /^(select|values|with|explain)/i.test(q))).toBe(
      true,
    );

    const st = vfsStatus(db);
    expect(st.kind).toBe("router");
    expect(st.reads.replicas).toBe(9);
    expect(st.reads.primary).toBe(0);
    expect(st.writes).toBe(11);
    expect(st.fallbacks.total).toBe(0);
    expect(st.replicas.map((r) => r.reads).reduce((a, b) => a + b)).toBe(9);
  });

  test("results from replicas and the primary have the same shapes", async () => {
    const s = setup({ readYourWrites: false });
    const onReplica = {
      all: await s.db.select().from(users).orderBy(users.id),
      get: await s.db.select().from(users).where(eq(users.id, 2)).get(),
      none: await s.db.select().from(users).where(eq(users.id, 77)).get(),
      rel: await s.db.query.users.findFirst({ where: eq(users.id, 1), with: { posts: true } }),
      count: await s.db.$count(posts),
      raw: await s.db.values(sql`select id, name from users order by id`),
    };
    const p = s.db.$primary;
    const onPrimary = {
      all: await p.select().from(users).orderBy(users.id),
      get: await p.select().from(users).where(eq(users.id, 2)).get(),
      none: await p.select().from(users).where(eq(users.id, 77)).get(),
      rel: await p.query.users.findFirst({ where: eq(users.id, 1), with: { posts: true } }),
      count: await p.$count(posts),
      raw: await p.values(sql`select id, name from users order by id`),
    };
    expect(onReplica).toEqual(onPrimary);
    expect(onReplica.get).toEqual({ id: 2, name: "bob" });
    expect(onReplica.none).toBeUndefined();
    expect(onReplica.rel?.posts).toHaveLength(2);
    expect(onReplica.count).toBe(3);
    expect(s.r1.sql.length + s.r2.sql.length).toBe(6);
    expect(vfsStatus(s.db).reads).toEqual({ primary: 6, replicas: 6 });
  });
});

describe("transactions and batches", () => {
  test("a transaction runs entirely on the primary, reads included, and rolls back atomically", async () => {
    const s = setup();
    const { db } = s;
    const before = s.counts();
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(users).values({ id: 10, name: "tx" });
        // Only the primary can see the uncommitted row.
        expect(await tx.select().from(users).where(eq(users.id, 10))).toEqual([
          { id: 10, name: "tx" },
        ]);
        await tx.transaction(async (inner) => {
          await inner.insert(users).values({ id: 11, name: "nested" });
        });
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(s.counts().replicas).toBe(before.replicas);
    expect(s.primary.sql.slice(before.primary).map((q) => q.split(" ")[0]!.toLowerCase())).toEqual([
      "begin",
      "insert",
      "select",
      "savepoint",
      "insert",
      "release",
      "rollback",
    ]);
    expect(s.file.prepare("select count(*) from users where id >= 10").pluck().get()).toBe(0);

    await db.transaction(async (tx) => {
      await tx.insert(users).values({ id: 12, name: "kept" });
      await tx.update(users).set({ name: "kept!" }).where(eq(users.id, 12));
    });
    expect(s.file.prepare("select name from users where id = 12").pluck().get()).toBe("kept!");
    expect(s.file.inTransaction).toBe(false);
    expect(vfsStatus(db).transactions).toBe(2);
  });

  test("batches run on the primary atomically, read-only ones too", async () => {
    const s = setup();
    const { db } = s;
    await expect(
      db.batch([
        db.insert(users).values({ id: 20, name: "one" }),
        db.insert(users).values({ id: 20, name: "duplicate" }),
      ]),
    ).rejects.toThrow(/UNIQUE/);
    expect(s.file.prepare("select count(*) from users where id = 20").pluck().get()).toBe(0);

    const [inserted, all, one] = await db.batch([
      db.insert(users).values({ id: 21, name: "b" }).returning(),
      db.select().from(users).where(eq(users.id, 21)),
      db.query.users.findFirst({ where: eq(users.id, 1) }),
    ]);
    expect(inserted).toEqual([{ id: 21, name: "b" }]);
    expect(all).toEqual([{ id: 21, name: "b" }]);
    expect(one).toEqual({ id: 1, name: "ada" });
    expect(await where(s, () => db.batch([db.select().from(users), db.select().from(posts)]))).toBe(
      "primary-batch",
    );
    expect(s.r1.sql.length + s.r2.sql.length).toBe(0);
    expect(vfsStatus(db).batches).toBe(3);
  });

  test("another request's statements wait while a transaction holds the primary", async () => {
    const s = setup({ readYourWrites: false });
    const { db } = s;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let inTx!: () => void;
    const started = new Promise<void>((r) => {
      inTx = r;
    });
    const a = db.$withSession(() =>
      db.transaction(async (tx) => {
        await tx.insert(users).values({ id: 30, name: "a" });
        inTx();
        await gate;
        await tx.insert(users).values({ id: 31, name: "a2" });
      }),
    );
    await started;
    const b = db.$withSession(async () => {
      await db.insert(users).values({ id: 32, name: "b" });
      // Reads of other sessions do not wait: they go to replicas.
    });
    const read = db.$withSession(() => db.select().from(users).where(eq(users.id, 1)));
    expect(await read).toEqual([{ id: 1, name: "ada" }]);
    await new Promise((r) => setTimeout(r, 30));
    expect(s.primary.sql.some((q) => q.includes("32"))).toBe(false);
    release();
    await Promise.all([a, b]);
    const order = s.primary.sql.filter((q) => /^(insert|commit)/i.test(q));
    expect(order).toHaveLength(4);
    expect(order[2]).toBe("commit");
    expect(
      s.file.prepare("select count(*) from users where id between 30 and 32").pluck().get(),
    ).toBe(3);
  });
});

describe("health and fallbacks", () => {
  test("unhealthy and unknown replicas are skipped; none healthy falls back to the primary", async () => {
    const s = setup({ maxLagSeconds: 30 });
    s.r1.lagSeconds = 31;
    s.r2.lagSeconds = null;
    expect(await where(s, () => s.db.select().from(users))).toBe("primary");
    // Lagging replicas are asked to poll (rate-limited), so idle lazy replicas come back.
    expect(s.r1.polls + s.r2.polls).toBe(2);
    s.r2.lagSeconds = 29;
    expect(await where(s, () => s.db.select().from(users))).toBe("replica");
    expect(s.r2.sql).toHaveLength(1);
    const st = vfsStatus(s.db);
    expect(st.fallbacks.reasons["no-healthy-replica"]).toBe(1);
    expect(st.fallbacks.last?.reason).toBe("no-healthy-replica");
  });

  test("the least-lag replica wins; near ties are spread", async () => {
    const s = setup();
    s.r1.lagSeconds = 10;
    s.r2.lagSeconds = 2;
    for (let i = 0; i < 6; i++) await s.db.select().from(users);
    expect([s.r1.sql.length, s.r2.sql.length]).toEqual([0, 6]);
    s.r1.lagSeconds = 1.5;
    s.r2.lagSeconds = 1;
    for (let i = 0; i < 10; i++) await s.db.select().from(users);
    expect(s.r1.sql.length).toBe(5);
    expect(s.r2.sql.length).toBe(11);
  });

  test("a connection-level failure falls back to the primary; SQL errors are not retried", async () => {
    const s = setup({ retryReplicaAfterMs: 60_000 });
    s.r2.lagSeconds = 100; // only r1 is healthy
    s.r1.fail = new ReplicaQueryError(10 | (1 << 8), "disk I/O error");
    expect(await s.db.select().from(users).where(eq(users.id, 1))).toEqual([
      { id: 1, name: "ada" },
    ]);
    expect(s.r1.sql).toHaveLength(1);
    expect(s.primary.sql).toHaveLength(1);
    // The failed replica sits out; reads go to the primary meanwhile.
    s.r1.fail = undefined;
    expect(await where(s, () => s.db.select().from(users))).toBe("primary");

    const t = setup();
    t.r2.lagSeconds = 100;
    t.r1.fail = new ReplicaError("REPLICA_CLOSED", "replica is closed");
    expect(await where(t, () => t.db.select().from(users))).toBe("mixed p=1 r=1");

    const u = setup();
    u.r2.lagSeconds = 100;
    u.r1.fail = new ReplicaQueryError(1, "misuse of aggregate: count()");
    await expect(u.db.select().from(users)).rejects.toMatchObject({
      cause: { code: "SQLITE_ERROR" },
    });
    expect(u.primary.sql).toHaveLength(0);
    u.r1.fail = new ReplicaQueryError(8, "attempt to write a readonly database");
    expect(await where(u, () => u.db.select().from(users))).toBe("mixed p=1 r=1");
    // A name the replica cannot resolve may exist on the primary (a temp table, a schema change
    // not replicated yet): the primary answers.
    u.r1.fail = new ReplicaQueryError(1, "no such table: users");
    expect(await where(u, () => u.db.select().from(users))).toBe("mixed p=1 r=1");
    const st = vfsStatus(u.db);
    expect(st.fallbacks.reasons["replica-read-only"]).toBe(1);
    expect(st.fallbacks.reasons["replica-missing-object"]).toBe(1);
    expect(st.replicas[0]!.errors).toBe(0);
    expect(vfsStatus(s.db).fallbacks.reasons).toMatchObject({
      "replica-error": 1,
      "no-healthy-replica": 1,
    });
    expect(vfsStatus(s.db).replicas[0]).toMatchObject({
      name: "r1",
      errors: 1,
      coolingDown: true,
      lastError: { code: "SQLITE_IOERR" },
    });
  });

  test("without replicas every read goes to the primary", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = primaryFile(dir);
    cleanups.push(() => file.close());
    const db = createRouter({ primary: betterSqlitePrimary(file), replicas: [], context });
    expect(await db.select().from(users)).toHaveLength(2);
    expect(vfsStatus(db).fallbacks.reasons["no-replicas"]).toBe(1);
    await expect(db.$replica.select().from(users)).rejects.toMatchObject({
      cause: { code: "ROUTER_NO_REPLICA" },
    });
    expect(() => vfsStatus({} as never)).toThrow(RouterError);
  });
});

describe("read-your-writes", () => {
  test("within an async context, until a replica reaches the write's TXID", async () => {
    const next = { txid: 7 };
    const s = setup({ wrap: exactPositions(next) });
    s.r1.txid = 6;
    s.r2.txid = 6;
    await s.db.$withSession(async () => {
      expect(await where(s, () => s.db.select().from(users))).toBe("replica");
      await s.db.insert(users).values({ id: 40, name: "mine" });
      // Seen at once: read from the primary.
      expect(
        await where(s, async () => {
          expect(await s.db.select().from(users).where(eq(users.id, 40))).toHaveLength(1);
        }),
      ).toBe("primary");
      // Another request is not held back.
      expect(await s.db.$withSession(() => where(s, () => s.db.select().from(users)))).toBe(
        "replica",
      );
      s.r2.txid = 7;
      expect(await where(s, () => s.db.select().from(users))).toBe("replica");
      expect(s.r2.sql.at(-1)).toMatch(/select/);
      expect(s.db.$bookmark()).toMatch(/^pc1\./);
    });
    expect(vfsStatus(s.db).fallbacks.reasons["read-your-writes"]).toBe(1);
  });

  test("across requests with a bookmark", async () => {
    const next = { txid: 9 };
    const s = setup({ wrap: exactPositions(next) });
    s.r1.txid = 8;
    s.r2.txid = 8;
    const bookmark = await s.db.$withSession(async () => {
      await s.db.insert(users).values({ id: 41, name: "carried" });
      return s.db.$bookmark();
    });
    // Next request: no bookmark, replicas; with it, the primary until a replica has TXID 9.
    expect(await s.db.$withSession(() => where(s, () => s.db.select().from(users)))).toBe(
      "replica",
    );
    expect(await s.db.$withSession(() => where(s, () => s.db.select().from(users)), bookmark)).toBe(
      "primary",
    );
    s.r1.txid = 9;
    const r1Before = s.r1.sql.length;
    expect(await s.db.$withSession(() => where(s, () => s.db.select().from(users)), bookmark)).toBe(
      "replica",
    );
    expect(s.r1.sql.length).toBe(r1Before + 1);
    // A Drizzle query is a lazy thenable: returned as is, it still runs inside the session.
    s.r1.txid = 8;
    const primaryBefore = s.primary.sql.length;
    const lazy = await s.db.$withSession(
      () => s.db.select().from(users).where(eq(users.id, 41)),
      bookmark,
    );
    expect(lazy).toEqual([{ id: 41, name: "carried" }]);
    expect(s.primary.sql.length).toBe(primaryBefore + 1);
    s.r1.txid = 9;
    // A bookmark is opaque but validated.
    expect(() => s.db.$session("pc1.zz")).toThrow(RouterError);
    expect(() => s.db.$withSession(() => 1, "garbage")).toThrow(/not a pagecast bookmark/);
    // Bookmarks carry on: the next write raises the bar.
    const later = await s.db.$withSession(async () => {
      next.txid = 12;
      await s.db.insert(users).values({ id: 42, name: "later" });
      return s.db.$bookmark();
    }, bookmark);
    expect(await s.db.$withSession(() => where(s, () => s.db.select().from(users)), later)).toBe(
      "primary",
    );
  });

  test("explicit sessions where there is no async context", async () => {
    const next = { txid: 3 };
    const s = setup({ wrap: exactPositions(next), context: null });
    s.r1.txid = 2;
    s.r2.txid = 2;
    expect(() => s.db.$withSession(() => 1)).toThrow(/async context/);
    const session = s.db.$session();
    await session.insert(users).values({ id: 50, name: "s" });
    expect(await where(s, () => session.select().from(users))).toBe("primary");
    // A different session is unaffected; the router-wide default session too.
    expect(await where(s, () => s.db.$session().select().from(users))).toBe("replica");
    expect(await where(s, () => s.db.select().from(users))).toBe("replica");
    const resumed = s.db.$session(session.$bookmark());
    expect(await where(s, () => resumed.select().from(users))).toBe("primary");
    s.r1.txid = 3;
    expect(await where(s, () => resumed.select().from(users))).toBe("replica");
    // Transactions of a session hold its reads on the primary.
    await session.transaction(async (tx) => {
      expect(await where(s, () => tx.select().from(users))).toBe("primary");
    });
  });

  test("a primary without positions: time-based, and writer-relative bounds", async () => {
    let now = 1_000_000;
    const s = setup({
      clock: () => now,
      wrap: (p) => ({ ...p, batch: p.batch, position: () => ({ at: now }) }),
    });
    await s.db.$withSession(async () => {
      await s.db.insert(users).values({ id: 60, name: "t" });
      s.r1.lagSeconds = 0;
      now += 5_000;
      expect(await where(s, () => s.db.select().from(users))).toBe("primary");
      now += 6_000;
      expect(await where(s, () => s.db.select().from(users))).toBe("replica");
    });

    const after = { n: 4 };
    const t = setup({
      wrap: (p) => ({ ...p, batch: p.batch, position: () => ({ after: after.n, at: Date.now() }) }),
    });
    t.r1.txid = 5;
    t.r2.txid = 5;
    await t.db.$withSession(async () => {
      await t.db.insert(users).values({ id: 61, name: "a" });
      expect(await where(t, () => t.db.select().from(users))).toBe("primary");
      // after + 2 may still lack it (one TXID uploading, one buffer captured meanwhile).
      t.r1.txid = 6;
      expect(await where(t, () => t.db.select().from(users))).toBe("primary");
      t.r1.txid = 7;
      expect(await where(t, () => t.db.select().from(users))).toBe("replica");
      expect(t.r1.sql).toHaveLength(1);
    });
  });

  test("writes inside a transaction count from its commit", async () => {
    const next = { txid: 5 };
    const s = setup({ wrap: exactPositions(next) });
    s.r1.txid = 4;
    s.r2.txid = 4;
    await s.db.$withSession(async () => {
      await s.db.transaction(async (tx) => {
        await tx.insert(users).values({ id: 70, name: "t" });
      });
      expect(await where(s, () => s.db.select().from(users))).toBe("primary");
      s.r1.txid = 5;
      expect(await where(s, () => s.db.select().from(users))).toBe("replica");
    });
  });
});

describe("escape hatches", () => {
  test("$primary and $replica", async () => {
    const next = { txid: 2 };
    const s = setup({ wrap: exactPositions(next) });
    expect(await where(s, () => s.db.$primary.select().from(users))).toBe("primary");
    await s.db.$withSession(async () => {
      await s.db.$primary.insert(users).values({ id: 80, name: "p" });
      // $primary writes count for read-your-writes too...
      expect(await where(s, () => s.db.select().from(users))).toBe("primary");
      // ...and $replica ignores them.
      expect(await where(s, () => s.db.$replica.select().from(users))).toBe("replica");
    });
    // Writes through $replica are type errors and runtime errors.
    const replicaDb = s.db.$replica;
    // @ts-expect-error $replica has no insert
    const insert = replicaDb.insert;
    expect(insert).toBeTypeOf("function"); // present at runtime, refused when executed:
    await expect(
      (replicaDb as unknown as typeof s.db).insert(users).values({ id: 81, name: "no" }),
    ).rejects.toMatchObject({ cause: { code: "ROUTER_READ_ONLY" } });
    await expect(replicaDb.all(sql`delete from users`)).rejects.toMatchObject({
      cause: { code: "ROUTER_READ_ONLY" },
    });
    expect(s.file.prepare("select count(*) from users where id = 81").pluck().get()).toBe(0);
  });

  test("a pinned replica is refused", () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file: Database.Database = primaryFile(dir);
    cleanups.push(() => file.close());
    const pinned = {
      name: "past",
      status: () => ({ txid: 1, lagSeconds: null, pinned: true }),
      all: async () => [],
      get: async () => undefined,
    };
    expect(() => createRouter({ primary: betterSqlitePrimary(file), replicas: [pinned] })).toThrow(
      /pinned/,
    );
    expect(() =>
      createRouter({ primary: betterSqlitePrimary(file), replicas: [{} as never] }),
    ).toThrow(RouterError);
  });
});
