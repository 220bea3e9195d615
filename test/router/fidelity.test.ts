/**
 * A routed database behaves like a Drizzle database on the primary alone:
 * statements take effect in the order they were issued (awaited or not),
 * whatever exists only on the primary connection (temp objects, attached
 * databases, settings, connection functions) is read there, results have
 * the primary driver's JS types and shapes whichever side answers, and
 * Drizzle's query cache works.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { eq, sql } from "drizzle-orm";
import { drizzle as drizzleBetterSqlite } from "drizzle-orm/better-sqlite3";
import { Cache } from "drizzle-orm/cache/core";
import type { CacheConfig } from "drizzle-orm/cache/core/types";
import { blob, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterEach, describe, expect, test } from "vitest";
import type { PrimaryConnection } from "../../src/router/connection.js";
import { createRouter } from "../../src/router/router.js";
import { vfsStatus } from "../../src/router/vfs-status.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import {
  catchUp,
  exactPositions,
  fakeReplicaRouter,
  replicatedPrimary,
  SCHEMA_SQL,
  schema,
  tempDir,
  users,
} from "./helpers.js";

const cleanups: (() => unknown)[] = [];
const defer = (fn: () => unknown) => cleanups.push(fn);
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const context = asyncSessionContext();

/** Primary + two fake replicas (reading the primary's file through their own connections). */
function setup(options: Parameters<typeof fakeReplicaRouter>[2] = {}) {
  const s = fakeReplicaRouter(defer, context, options);
  return { ...s, replicaSql: () => s.counts().replicas };
}

/** Like an asynchronous driver (a remote primary): each statement starts a little later. */
function slowly(wrap: (p: PrimaryConnection) => PrimaryConnection) {
  const later = () => new Promise((r) => setTimeout(r, 5));
  return (base: PrimaryConnection): PrimaryConnection => {
    const p = wrap(base);
    return {
      ...p,
      all: async (sql, params) => {
        await later();
        return p.all(sql, params);
      },
      get: async (sql, params) => {
        await later();
        return p.get(sql, params);
      },
      run: async (sql, params) => {
        await later();
        return p.run(sql, params);
      },
    };
  };
}

describe("statements take effect in issue order", () => {
  test("a read issued after an un-awaited write sees it", async () => {
    const s = setup({ wrap: slowly(exactPositions({ txid: 7 })) });
    s.r1.txid = 6;
    s.r2.txid = 6;
    await s.db.$withSession(async () => {
      const write = s.db.insert(users).values({ id: 90, name: "not awaited" }).run();
      expect(await s.db.select().from(users).where(eq(users.id, 90))).toEqual([
        { id: 90, name: "not awaited" },
      ]);
      await write;
      // Promise.all starts the queries in order: the insert first.
      const [, rows] = await Promise.all([
        s.db.insert(users).values({ id: 91, name: "all" }),
        s.db.select().from(users).where(eq(users.id, 91)),
      ]);
      expect(rows).toEqual([{ id: 91, name: "all" }]);
    });
    // Without an async context: the router-wide session, same rule.
    const t = setup({ wrap: slowly(exactPositions({ txid: 3 })), context: null });
    t.r1.txid = 2;
    t.r2.txid = 2;
    const w = t.db.insert(users).values({ id: 92, name: "raw" }).run();
    expect(await t.db.get(sql`select name from users where id = 92`)).toEqual(["raw"]);
    await w;
    const session = t.db.$session();
    const w2 = session.insert(users).values({ id: 93, name: "explicit" }).run();
    expect(await session.$count(users, eq(users.id, 93))).toBe(1);
    await w2;
  });

  test("a read waits for a write of its session held back by another session's transaction", async () => {
    const s = setup({ wrap: exactPositions({ txid: 5 }) });
    s.r1.txid = 4;
    s.r2.txid = 4;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let inTx!: () => void;
    const started = new Promise<void>((r) => {
      inTx = r;
    });
    const other = s.db.$withSession(() =>
      s.db.transaction(async (tx) => {
        await tx.insert(users).values({ id: 94, name: "tx" });
        inTx();
        await held;
      }),
    );
    await started;
    const mine = s.db.$withSession(async () => {
      const write = s.db.insert(users).values({ id: 95, name: "queued" }).run();
      const read = s.db.select().from(users).where(eq(users.id, 95));
      return { write, read: await read };
    });
    // The transaction ends a little later; the read must still see the queued write.
    setTimeout(release, 30);
    const { write, read } = await mine;
    await write;
    await other;
    expect(read).toEqual([{ id: 95, name: "queued" }]);
  });

  test("a failed un-awaited write does not hold reads back", async () => {
    const s = setup({ readYourWrites: false });
    await s.db.$withSession(async () => {
      const failing = s.db.insert(users).values({ id: 1, name: "duplicate" }).run();
      failing.catch(() => {});
      expect(await s.db.select().from(users).where(eq(users.id, 1))).toEqual([
        { id: 1, name: "ada" },
      ]);
      await expect(failing).rejects.toThrow();
    });
  });
});

describe("what exists only on the primary connection is read there", () => {
  test("temp tables, temp views and the temp schema", async () => {
    // No read-your-writes: as if the temp DDL's (empty) position had long been reached.
    const s = setup({ readYourWrites: false });
    const { db } = s;
    await db.run(sql`create temp table scratch (x)`);
    await db.run(sql`insert into scratch values (1), (2)`);
    expect(await db.all(sql`select x from scratch order by x`)).toEqual([[1], [2]]);
    expect(await db.get(sql`select count(*) from temp.scratch`)).toEqual([2]);
    expect(await db.values(sql`select name from sqlite_temp_master`)).toEqual([["scratch"]]);
    expect(await db.values(sql`select name from temp.sqlite_schema`)).toEqual([["scratch"]]);
    await db.run(sql`create temp view doubled as select x * 2 as y from scratch`);
    expect(await db.values(sql`select y from doubled order by y`)).toEqual([[2], [4]]);
    // A temp table shadows the main table of the same name on the primary connection.
    await db.run(sql`create temp table users (id integer primary key, name text not null)`);
    await db.insert(users).values({ id: 1, name: "temp ada" });
    expect(await db.select().from(users)).toEqual([{ id: 1, name: "temp ada" }]);
    expect(s.replicaSql()).toBe(0);
    // Reads of the main schema still go to replicas; once the temp tables are gone, all do.
    expect(await db.get(sql`select title from posts where id = 1`)).toEqual(["hello"]);
    expect(s.replicaSql()).toBe(1);
    await db.run(sql`drop table temp.users`);
    expect(await db.select().from(users)).toHaveLength(2);
    expect(s.replicaSql()).toBe(2);
    const st = vfsStatus(db);
    expect(st.fallbacks.reasons["primary-only"]).toBeGreaterThan(0);
  });

  test("PRAGMA temp_store, pragma functions, attached databases, connection functions", async () => {
    const s = setup({ readYourWrites: false });
    const { db } = s;
    await db.run(sql`pragma temp_store = file`);
    expect(await db.get(sql`pragma temp_store`)).toEqual([1]);
    expect(await db.get(sql`select temp_store from pragma_temp_store`)).toEqual([1]);
    await db.run(sql`pragma temp_store = memory`);
    expect(await db.get(sql`select * from pragma_temp_store`)).toEqual([2]);
    // An attached database exists only on the primary connection.
    await db.run(sql`attach ':memory:' as aux`);
    await db.run(sql`create table aux.notes (body text)`);
    await db.run(sql`insert into aux.notes values ('hi')`);
    expect(await db.all(sql`select body from aux.notes`)).toEqual([["hi"]]);
    expect(await db.all(sql`select name from aux.sqlite_master`)).toEqual([["notes"]]);
    // Unqualified, it resolves on the primary; the replica's "no such table" is not surfaced.
    expect(await db.all(sql`select body from notes`)).toEqual([["hi"]]);
    // Functions answering from the connection's state, and functions registered on it.
    await db.insert(users).values({ id: 77, name: "last" });
    expect(await db.get(sql`select last_insert_rowid()`)).toEqual([77]);
    expect(await db.get(sql`select changes(), total_changes() > 0`)).toEqual([1, 1]);
    s.file.function("twice", (x: unknown) => Number(x) * 2);
    expect(await db.get(sql`select twice(21)`)).toEqual([42]);
    // A table missing everywhere is still an error (the primary's).
    await expect(db.all(sql`select * from nowhere`)).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/no such table: nowhere/) },
    });
  });

  test("a real replica's 'no such table' for a temp table is retried on the primary", async () => {
    const env = await replicatedPrimary(defer, { syncInterval: 0, replicaCount: 1 });
    await catchUp(env);
    const db = createRouter({
      primary: betterSqlitePrimary(env.file, { replicator: env.replicator, resolveWaitMs: 20 }),
      replicas: env.replicas,
      context,
    });
    // Created behind the router's back: only the fallback can catch it.
    env.file.exec("create temp table scratch (x); insert into scratch values (42)");
    expect(await db.all(sql`select x from scratch`)).toEqual([[42]]);
    expect(vfsStatus(db).fallbacks.reasons["replica-missing-object"]).toBe(1);
    // Created through the router: read on the primary at once.
    await db.run(sql`create temp table other (y)`);
    await db.run(sql`insert into other values (7)`);
    await db.$withSession(async () => {
      expect(await db.all(sql`select y from other`)).toEqual([[7]]);
    });
    expect(vfsStatus(db).reads.replicas).toBe(0);
    expect(vfsStatus(db).fallbacks.reasons["primary-only"]).toBe(1);
  });
});

const vals = sqliteTable("vals", {
  id: integer("id").primaryKey(),
  i: integer("i"),
  r: real("r"),
  b: blob("b", { mode: "buffer" }),
  t: text("t"),
});

const VALS_SQL = `
  CREATE TABLE vals (id INTEGER PRIMARY KEY, i INTEGER, r REAL, b BLOB, t TEXT);
  INSERT INTO vals VALUES (1, 9007199254740993, 1.0, x'0102', 'a');
  INSERT INTO vals VALUES (2, 2, 1.5, x'', NULL);
  INSERT INTO vals VALUES (3, -9007199254740993, 3.0, zeroblob(3), '');
  INSERT INTO vals VALUES (4, NULL, NULL, NULL, NULL);
`;

/** Each value's JS type, as `typeof` or the class name. */
function types(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(types);
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "object") {
    const name = (value as object).constructor?.name;
    if (name === "Object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, types(v)]));
    }
    return name;
  }
  return typeof value;
}

describe("results have the primary driver's types whichever side answers", () => {
  for (const mode of ["default", "safeIntegers probed", "safeIntegers option"] as const) {
    test(`integers past 2^53, blobs, NULLs, REAL vs INTEGER (${mode})`, async () => {
      const env = await replicatedPrimary(defer, { syncInterval: 0, replicaCount: 1 });
      env.file.exec(VALS_SQL);
      await catchUp(env);
      if (mode === "safeIntegers probed") env.file.defaultSafeIntegers(true);
      const primary = betterSqlitePrimary(
        env.file,
        mode === "safeIntegers option" ? { safeIntegers: true } : {},
      );
      const db = createRouter({
        primary,
        replicas: env.replicas,
        readYourWrites: false,
        schema: { vals },
        context,
      });
      const queries = {
        raw: (d: typeof db.$primary) =>
          d.values(sql`select i, r, b, t, typeof(i), typeof(r) from vals order by id`),
        literals: (d: typeof db.$primary) =>
          d.get(sql`select 9007199254740993, -2, 2.0, 2.5, x'ff', x'', null, 'x'`),
        all: (d: typeof db.$primary) => d.select().from(vals).orderBy(vals.id),
        get: (d: typeof db.$primary) => d.select().from(vals).where(eq(vals.id, 2)).get(),
        count: (d: typeof db.$primary) => d.$count(vals),
        rel: (d: typeof db.$primary) => d.query.vals.findMany({ orderBy: vals.id }),
      };
      for (const [name, q] of Object.entries(queries)) {
        const before = vfsStatus(db).reads.replicas;
        const routed = await q(db);
        expect(vfsStatus(db).reads.replicas, `${name} read on a replica`).toBe(before + 1);
        const onPrimary = await q(db.$primary);
        expect(types(routed), name).toEqual(types(onPrimary));
        expect(routed, name).toStrictEqual(onPrimary);
        const viaReplicaDb = await q(db.$replica as unknown as typeof db.$primary);
        expect(viaReplicaDb, `${name} via $replica`).toStrictEqual(onPrimary);
      }
      const literals = (await queries.literals(db)) as unknown[];
      if (mode === "default") {
        // better-sqlite3's default: numbers (precision lost past 2^53), Buffers.
        expect(literals.slice(0, 4)).toEqual([9007199254740992, -2, 2, 2.5]);
        expect(Buffer.isBuffer(literals[4])).toBe(true);
      } else {
        expect(literals.slice(0, 4)).toEqual([9007199254740993n, -2n, 2, 2.5]);
      }
      expect(literals.slice(5)).toStrictEqual([Buffer.alloc(0), null, "x"]);
    });
  }
});

describe("run and batch results are the primary driver's", () => {
  test("run() and batch() equal drizzle-orm/better-sqlite3's results", async () => {
    const s = setup();
    const twinDir = tempDir();
    defer(twinDir.cleanup);
    const twinFile = new Database(join(twinDir.dir, "twin.db"));
    defer(() => twinFile.close());
    twinFile.exec(SCHEMA_SQL);
    const twin = drizzleBetterSqlite(twinFile, { schema });

    const statements = [
      sql`insert into users (id, name) values (10, 'x')`,
      sql`update users set name = 'y' where id >= 2`,
      sql`delete from posts where id = 3`,
      sql`select 1`,
      sql`create table extra (x)`,
    ];
    for (const [i, q] of statements.entries()) {
      const routed = await s.db.run(q);
      expect(routed, `statement ${i}`).toStrictEqual(twin.run(q));
    }
    const inserted = await s.db.insert(users).values({ id: 11, name: "z" }).run();
    expect(inserted).toStrictEqual(twin.insert(users).values({ id: 11, name: "z" }).run());
    expect(Object.keys(inserted)).toEqual(["changes", "lastInsertRowid"]);

    const [a, b, c, d] = await s.db.batch([
      s.db.insert(users).values({ id: 12, name: "b1" }),
      s.db.update(users).set({ name: "b2" }).where(eq(users.id, 12)),
      s.db.select().from(users).where(eq(users.id, 12)),
      s.db.delete(users).where(eq(users.id, 12)),
    ]);
    expect(a).toStrictEqual({ changes: 1, lastInsertRowid: 12 });
    expect(b).toStrictEqual({ changes: 1, lastInsertRowid: 12 });
    expect(c).toEqual([{ id: 12, name: "b2" }]);
    expect(d).toStrictEqual({ changes: 1, lastInsertRowid: 12 });
    // In a transaction too.
    const inTx = await s.db.transaction((tx) => tx.insert(users).values({ id: 13, name: "t" }));
    expect(inTx).toStrictEqual({ changes: 1, lastInsertRowid: 13 });
  });

  test("safeIntegers: lastInsertRowid is a bigint, as better-sqlite3 returns it", async () => {
    const s = setup({ readYourWrites: false });
    s.file.defaultSafeIntegers(true);
    const db = createRouter({ primary: betterSqlitePrimary(s.file), replicas: [s.r1], context });
    const r = await db.run(sql`insert into users (id, name) values (20, 'big')`);
    expect(r).toStrictEqual({ changes: 1, lastInsertRowid: 20n });
  });
});

/** A small Cache per Drizzle's Cache API: results by key, keys by table, counters. */
class MapCache extends Cache {
  readonly entries = new Map<string, unknown>();
  readonly keysByTable = new Map<string, Set<string>>();
  hits = 0;
  misses = 0;
  mutations: unknown[] = [];

  constructor(private readonly mode: "explicit" | "all") {
    super();
  }

  override strategy(): "explicit" | "all" {
    return this.mode;
  }

  override async get(key: string): Promise<unknown[] | undefined> {
    const hit = this.entries.get(key) as unknown[] | undefined;
    if (hit === undefined) this.misses++;
    else this.hits++;
    return hit;
  }

  override async put(
    key: string,
    response: unknown,
    tables: string[],
    _isTag: boolean,
    _config?: CacheConfig,
  ): Promise<void> {
    this.entries.set(key, response);
    for (const t of tables) {
      const keys = this.keysByTable.get(t) ?? new Set<string>();
      this.keysByTable.set(t, keys.add(key));
    }
  }

  override async onMutate(params: { tags?: string | string[]; tables?: unknown }): Promise<void> {
    this.mutations.push(params);
    const tables = ([] as unknown[]).concat(params.tables ?? []);
    for (const t of tables) {
      const name =
        typeof t === "string"
          ? t
          : ((t as Record<symbol, string>)[Symbol.for("drizzle:Name")] ?? String(t));
      for (const key of this.keysByTable.get(name) ?? []) this.entries.delete(key);
      this.keysByTable.delete(name);
    }
    for (const tag of ([] as string[]).concat(params.tags ?? [])) this.entries.delete(tag);
  }
}

describe("Drizzle's query cache", () => {
  test("strategy 'all': selects are served from the cache, writes invalidate it", async () => {
    const cache = new MapCache("all");
    // Replicas hold every write (TXID 1): their answers may be cached.
    const s = setup({ cache, readYourWrites: false, wrap: exactPositions({ txid: 1 }) });
    const { db } = s;
    expect(await db.select().from(users).orderBy(users.id)).toHaveLength(2);
    expect(s.replicaSql()).toBe(1);
    expect(await db.select().from(users).orderBy(users.id)).toHaveLength(2);
    expect(s.replicaSql()).toBe(1);
    expect(cache.hits).toBe(1);
    // An insert invalidates the table's entries: the next select reads again and sees it.
    await db.insert(users).values({ id: 3, name: "cy" });
    expect(cache.mutations).toHaveLength(1);
    expect(await db.select().from(users).orderBy(users.id)).toHaveLength(3);
    expect(s.replicaSql()).toBe(2);
    // Opting a query out.
    await db.select().from(users).$withCache(false);
    await db.select().from(users).$withCache(false);
    expect(s.replicaSql()).toBe(4);
    // The escape hatches and explicit sessions share the router's cache.
    const session = db.$session();
    expect(await session.select().from(users).orderBy(users.id)).toHaveLength(3);
    expect(s.replicaSql()).toBe(4);
    await db.$primary.update(users).set({ name: "cyd" }).where(eq(users.id, 3));
    expect(await session.select().from(users).where(eq(users.id, 3))).toEqual([
      { id: 3, name: "cyd" },
    ]);
    expect(s.replicaSql()).toBe(5);
    await db.select().from(users).orderBy(users.id);
    await db.select().from(users).orderBy(users.id);
    expect(s.replicaSql()).toBe(6);
    // Manual invalidation through db.$cache.
    expect(db.$cache).toBeDefined();
    await db.$cache!.invalidate({ tables: [users] });
    await db.select().from(users).orderBy(users.id);
    expect(s.replicaSql()).toBe(7);
  });

  test("a replica's answer that may predate a write is returned but not cached", async () => {
    const cache = new MapCache("all");
    const s = setup({ cache, wrap: exactPositions({ txid: 2 }) });
    const { db } = s;
    // Replicas are at TXID 1; the write lands in TXID 2.
    await db.$withSession(() => db.insert(users).values({ id: 3, name: "cy" }));
    // Another request (nothing to wait for) reads on a replica lacking the write: not stored,
    // or the writer would be served it from the cache.
    await db.$withSession(() => db.select().from(users).orderBy(users.id));
    await db.$replica.select().from(users).orderBy(users.id);
    expect(s.replicaSql()).toBe(2);
    expect(cache.entries.size).toBe(0);
    s.r1.txid = 2;
    s.r2.txid = 2;
    expect(await db.$withSession(() => db.select().from(users).orderBy(users.id))).toHaveLength(3);
    expect(cache.entries.size).toBe(1);
    expect(await db.$withSession(() => db.select().from(users).orderBy(users.id))).toHaveLength(3);
    expect(s.replicaSql()).toBe(3);
    expect(cache.hits).toBe(1);
  });

  test("strategy 'explicit': only $withCache() queries are cached, with a logger too", async () => {
    const cache = new MapCache("explicit");
    const logged: string[] = [];
    const s = setup({
      cache,
      readYourWrites: false,
      drizzle: { logger: { logQuery: (q) => logged.push(q) } },
    });
    const { db } = s;
    await db.select().from(users);
    await db.select().from(users);
    expect(s.replicaSql()).toBe(2);
    await db.select().from(users).where(eq(users.id, 1)).$withCache();
    await db.select().from(users).where(eq(users.id, 1)).$withCache();
    expect(s.replicaSql()).toBe(3);
    expect(cache.hits).toBe(1);
    expect(logged.length).toBeGreaterThanOrEqual(4);
    // `logger: true` must not switch the cache off.
    const t = setup({
      cache: new MapCache("all"),
      readYourWrites: false,
      drizzle: { logger: true },
    });
    const log = console.log;
    console.log = () => {};
    try {
      await t.db.select().from(users);
      await t.db.select().from(users);
    } finally {
      console.log = log;
    }
    expect(t.replicaSql()).toBe(1);
  });
});
