/**
 * The primary has one connection: while a request's transaction is open on
 * it, other requests' statements wait at the gate (review by a helper).
 * - When a transaction ended, every waiter was woken and each checked the
 *   gate before any took it: a plain insert waiting beside a BEGIN ran inside
 *   the other request's transaction and was lost with its rollback; two
 *   waiting transactions left the primary stuck in an open transaction.
 * - Without an async context (Workers, browsers, `context: null`) every
 *   request shared one session, so another request's write joined an open
 *   transaction and was rolled back with it.
 * - A root `db.transaction()` (a helper with its own transaction) or a
 *   `$withSession` read inside a transaction waited for the gate its own
 *   transaction held: a deadlock that stopped every write of the process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterEach, expect, test } from "vitest";
import { createRouter } from "../../src/router/router.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";

const t = sqliteTable("t", { id: integer("id").primaryKey(), v: text("v") });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function primaryDb() {
  const dir = mkdtempSync(join(tmpdir(), "pagecast-gate-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const sqlite = new Database(join(dir, "primary.db"));
  cleanups.push(() => sqlite.close());
  sqlite.pragma("journal_mode = wal");
  sqlite.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('seed')");
  return sqlite;
}

/** A router over `sqlite` alone (no replicas): the gate is all that is under test. */
function router(
  sqlite: Database.Database,
  context = asyncSessionContext() as ReturnType<typeof asyncSessionContext> | null,
) {
  return createRouter({
    primary: betterSqlitePrimary(sqlite),
    replicas: [],
    schema: { t },
    context,
  });
}

/** `p`'s outcome, or "timed out" (a deadlock) after `ms`. */
function outcome(p: Promise<unknown>, ms = 2000): Promise<string> {
  return Promise.race([
    p.then(
      () => "ok",
      (e: unknown) => `error: ${(e as Error).message}`,
    ),
    sleep(ms).then(() => "timed out"),
  ]);
}

type Db = ReturnType<typeof createRouter<{ t: typeof t }>>;

/** T holds a transaction; A (which rolls back) and `second` queue behind it; T commits. */
async function queuedBehindTransaction(
  db: Db,
  run: <X>(f: () => Promise<X>) => Promise<X>,
  second: () => Promise<unknown>,
) {
  let releaseT!: () => void;
  const held = new Promise<void>((r) => {
    releaseT = r;
  });
  const T = run(() =>
    db.transaction(async (tx) => {
      await tx.insert(t).values({ v: "T" });
      await held;
    }),
  );
  await sleep(10);
  const A = run(() =>
    db.transaction(async (tx) => {
      await tx.insert(t).values({ v: "A" });
      await sleep(50);
      throw new Error("A rolls back");
    }),
  );
  const B = run(second);
  await sleep(10);
  releaseT();
  return Promise.all([outcome(T), outcome(A), outcome(B)]);
}

test("a plain write queued beside another request's BEGIN is not run inside that transaction", async () => {
  const sqlite = primaryDb();
  const db = router(sqlite);
  const [T, A, B] = await queuedBehindTransaction(
    db,
    (f) => db.$withSession(f),
    () => db.insert(t).values({ v: "B" }),
  );
  expect([T, A, B]).toEqual(["ok", "error: A rolls back", "ok"]);
  expect(sqlite.prepare("SELECT v FROM t ORDER BY id").pluck().all()).toEqual(["seed", "T", "B"]);
  expect(sqlite.inTransaction).toBe(false);
});

test("two transactions queued behind a third both run, one after the other", async () => {
  const sqlite = primaryDb();
  const db = router(sqlite);
  const [T, A, B] = await queuedBehindTransaction(
    db,
    (f) => db.$withSession(f),
    () =>
      db.transaction(async (tx) => {
        await tx.insert(t).values({ v: "B" });
      }),
  );
  expect([T, A, B]).toEqual(["ok", "error: A rolls back", "ok"]);
  expect(sqlite.prepare("SELECT v FROM t ORDER BY id").pluck().all()).toEqual(["seed", "T", "B"]);
  expect(sqlite.inTransaction).toBe(false);
});

test("without an async context a transaction still keeps other requests' writes out", async () => {
  const sqlite = primaryDb();
  const db = router(sqlite, null);
  const A = outcome(
    db.transaction(async (tx) => {
      await tx.insert(t).values({ v: "A" });
      await sleep(50); // an outbound fetch in the middle of the transaction
      throw new Error("A rolls back");
    }),
  );
  await sleep(10);
  const B = outcome(db.insert(t).values({ v: "B" }));
  expect(await A).toBe("error: A rolls back");
  expect(await B).toBe("ok");
  expect(sqlite.prepare("SELECT v FROM t ORDER BY id").pluck().all()).toEqual(["seed", "B"]);
});

test("a root transaction or a $withSession read inside a transaction runs inside it instead of deadlocking", async () => {
  const sqlite = primaryDb();
  const db = router(sqlite);
  const createThing = (v: string) =>
    db.transaction(async (tx) => {
      await tx.insert(t).values({ v });
    });
  const outer = outcome(
    db.transaction(async (tx) => {
      await tx.insert(t).values({ v: "outer" });
      await createThing("inner"); // a helper with its own transaction: a savepoint here
      const rows = await db.$withSession(() => db.select().from(t));
      expect(rows.map((r) => r.v)).toEqual(["seed", "outer", "inner"]);
    }),
  );
  expect(await outer).toBe("ok");
  expect(await outcome(db.insert(t).values({ v: "after" }))).toBe("ok");
  expect(sqlite.prepare("SELECT v FROM t ORDER BY id").pluck().all()).toEqual([
    "seed",
    "outer",
    "inner",
    "after",
  ]);
  expect(sqlite.inTransaction).toBe(false);
});
