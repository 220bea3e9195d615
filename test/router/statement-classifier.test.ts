import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { describe, expect, test } from "vitest";
import { classifyStatement } from "../../src/router/statement-classifier.js";
import { posts, schema, users } from "./helpers.js";

const cases: [string, string, boolean][] = [
  // [sql, kind, readOnly]
  ["SELECT 1", "read", true],
  ["  select * from users where id = ? ;", "read", true],
  ["VALUES (1), (2)", "read", true],
  ["WITH x AS (SELECT 1) SELECT * FROM x", "read", true],
  [
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT n FROM c",
    "read",
    true,
  ],
  ["SELECT replace(name, 'a', 'b') FROM users", "read", true],
  ["SELECT \"update\", [delete], `insert` FROM t WHERE x = 'DELETE FROM t'", "read", true],
  ["SELECT * FROM t WHERE a = :delete AND b = @insert AND c = $update", "read", true],
  ["SELECT 1 -- ; DELETE FROM t\n", "read", true],
  ["SELECT /* DELETE */ 1", "read", true],
  ["SELECT CASE WHEN 1 THEN 'begin' END", "read", true],
  ["SELECT * FROM pragma_table_info('users')", "read", true],
  ["EXPLAIN QUERY PLAN SELECT * FROM users", "explain", true],
  ["EXPLAIN DELETE FROM users", "explain", true],
  ["INSERT INTO users (name) VALUES ('x')", "write", false],
  ["insert into users (name) values ('x') returning id", "write", false],
  ["REPLACE INTO users (id, name) VALUES (1, 'x')", "write", false],
  ["UPDATE users SET name = 'x'", "write", false],
  ["DELETE FROM users", "write", false],
  ["WITH x(n) AS (SELECT 9) INSERT INTO users (id, name) SELECT n, 'cte' FROM x", "write", false],
  ["WITH x AS (SELECT 1) UPDATE users SET name = 'z' RETURNING id", "write", false],
  ["WITH x AS (SELECT 1) DELETE FROM users WHERE id IN (SELECT * FROM x)", "write", false],
  ["WITH x AS (SELECT 1) REPLACE INTO users SELECT 1, 'a'", "write", false],
  ["SELECT 1 RETURNING 1", "write", false],
  ["CREATE TABLE t (x)", "ddl", false],
  ["DROP INDEX i", "ddl", false],
  ["ALTER TABLE t ADD COLUMN y", "ddl", false],
  ["PRAGMA user_version", "pragma", false],
  ["PRAGMA table_info(users)", "pragma", false],
  ["ATTACH ':memory:' AS aux", "attach", false],
  ["DETACH aux", "attach", false],
  ["VACUUM", "maintenance", false],
  ["ANALYZE", "maintenance", false],
  ["REINDEX", "maintenance", false],
  ["SELECT 1; SELECT 2", "multiple", false],
  ["SELECT 1; DELETE FROM users", "multiple", false],
  ["", "empty", false],
  ["  -- nothing\n", "empty", false],
  ["SELECT 'unterminated", "unknown", false],
  ["SELECT /* unterminated", "unknown", false],
  ['SELECT "unterminated', "unknown", false],
  ["(SELECT 1)", "unknown", false],
  ["FROBNICATE", "unknown", false],
];

describe("classifyStatement", () => {
  test.each(cases)("%s -> %s", (text, kind, readOnly) => {
    const c = classifyStatement(text);
    expect(c.kind).toBe(kind);
    expect(c.readOnly).toBe(readOnly);
  });

  test("transaction control and savepoint names", () => {
    expect(classifyStatement("BEGIN IMMEDIATE").transaction).toEqual({ op: "begin" });
    expect(classifyStatement("begin").transaction).toEqual({ op: "begin" });
    expect(classifyStatement("COMMIT").transaction).toEqual({ op: "commit" });
    expect(classifyStatement("END TRANSACTION").transaction).toEqual({ op: "commit" });
    expect(classifyStatement("ROLLBACK").transaction).toEqual({ op: "rollback" });
    expect(classifyStatement("savepoint sp0").transaction).toEqual({
      op: "savepoint",
      name: "sp0",
    });
    expect(classifyStatement('SAVEPOINT "Mixed"').transaction).toEqual({
      op: "savepoint",
      name: "mixed",
    });
    expect(classifyStatement("release savepoint sp0").transaction).toEqual({
      op: "release",
      name: "sp0",
    });
    expect(classifyStatement("RELEASE SP0").transaction).toEqual({ op: "release", name: "sp0" });
    expect(classifyStatement("rollback to savepoint sp0").transaction).toEqual({
      op: "rollback-to",
      name: "sp0",
    });
    expect(classifyStatement("ROLLBACK TRANSACTION TO sp1").transaction).toEqual({
      op: "rollback-to",
      name: "sp1",
    });
    expect(classifyStatement("SAVEPOINT").kind).toBe("unknown");
  });

  test("the SQL Drizzle generates", () => {
    const db = drizzle(async () => ({ rows: [] }), { schema });
    const read = (q: { toSQL(): { sql: string } }) => classifyStatement(q.toSQL().sql).readOnly;
    expect(read(db.select().from(users))).toBe(true);
    expect(read(db.query.users.findMany({ with: { posts: true } }))).toBe(true);
    expect(read(db.select({ n: sql<number>`count(*)` }).from(posts))).toBe(true);
    const sq = db.$with("sq").as(db.select().from(users));
    expect(read(db.with(sq).select().from(sq))).toBe(true);
    expect(read(db.insert(users).values({ name: "x" }))).toBe(false);
    expect(read(db.insert(users).values({ name: "x" }).returning())).toBe(false);
    expect(read(db.update(users).set({ name: "y" }))).toBe(false);
    expect(read(db.delete(users))).toBe(false);
    expect(read(db.with(sq).update(users).set({ name: "z" }))).toBe(false);
    expect(read(db.with(sq).delete(users))).toBe(false);
    expect(
      read(
        db
          .insert(users)
          .values({ id: 1, name: "x" })
          .onConflictDoUpdate({ target: users.id, set: { name: "y" } }),
      ),
    ).toBe(false);
  });

  test("what a read names that may exist only on the primary's connection", () => {
    const refs = (q: string) => classifyStatement(q).refs!;
    const r = refs('select "Scratch".x, y from [Scratch] join temp.other o on o.id = "Scratch".id');
    expect([...r.schemas].sort()).toEqual(["o", "scratch", "temp"]);
    expect(r.names.has("scratch")).toBe(true);
    expect(r.names.has("other")).toBe(true);
    expect(r.connectionState).toBe(false);
    // Connection state: functions of the connection, its temp schema, PRAGMA functions.
    expect(refs("select last_insert_rowid()").connectionState).toBe(true);
    expect(refs("SELECT Changes ( ), total_changes()").connectionState).toBe(true);
    // Quoted names call the same functions (review by a helper: they went to a replica, answering 0).
    expect(refs('SELECT "last_insert_rowid"()').connectionState).toBe(true);
    expect(refs("SELECT [changes](), `total_changes`()").connectionState).toBe(true);
    expect(refs("select name from sqlite_temp_master").connectionState).toBe(true);
    expect(refs("select * from pragma_table_info('t')").connectionState).toBe(true);
    expect(refs("explain select * from pragma_temp_store").connectionState).toBe(true);
    // A column or table that happens to be called `changes` or `temp` is no connection state.
    expect(refs("select changes, temp from changes").connectionState).toBe(false);
    expect(refs("select changes, temp from changes").schemas.size).toBe(0);
    // Literals and parameters are not names.
    expect(refs("select 'scratch', :scratch").names.has("scratch")).toBe(false);
    expect(classifyStatement("insert into t values (1)").refs).toBeUndefined();
  });
});
