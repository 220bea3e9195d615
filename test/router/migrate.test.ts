/** Drizzle migrations through a router: on the primary, atomically, idempotently. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createRouter } from "../../src/router/router.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { migrate } from "../../src/router-node/migrate.js";
import { FakeReplica, primaryFile, RecordingPrimary, tempDir } from "./helpers.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function writeMigrations(folder: string, migrations: { tag: string; when: number; sql: string }[]) {
  mkdirSync(join(folder, "meta"), { recursive: true });
  writeFileSync(
    join(folder, "meta", "_journal.json"),
    JSON.stringify({
      version: "7",
      dialect: "sqlite",
      entries: migrations.map((m, idx) => ({
        idx,
        version: "6",
        when: m.when,
        tag: m.tag,
        breakpoints: true,
      })),
    }),
  );
  for (const m of migrations) writeFileSync(join(folder, `${m.tag}.sql`), m.sql);
}

describe("migrate", () => {
  test("runs on the primary only, all pending migrations atomically, once", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const file = primaryFile(dir);
    cleanups.push(() => file.close());
    const primary = new RecordingPrimary(betterSqlitePrimary(file));
    const replica = new FakeReplica("r", join(dir, "primary.db"));
    cleanups.push(() => replica.close());
    const db = createRouter({ primary, replicas: [replica], context: asyncSessionContext() });
    const folder = join(dir, "drizzle");
    const first = [
      {
        tag: "0000_things",
        when: 1_700_000_000_000,
        sql: "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n--> statement-breakpoint\nCREATE INDEX things_name ON things (name);",
      },
      {
        tag: "0001_seed",
        when: 1_700_000_001_000,
        sql: "INSERT INTO things (name) VALUES ('a'), ('b');",
      },
    ];
    writeMigrations(folder, first);
    await migrate(db, { migrationsFolder: folder });
    expect(file.prepare("select count(*) from things").pluck().get()).toBe(2);
    expect(file.prepare("select count(*) from __drizzle_migrations").pluck().get()).toBe(2);
    expect(replica.sql).toEqual([]);
    expect(primary.batches).toHaveLength(1);

    // Again: nothing to do.
    await migrate(db, { migrationsFolder: folder });
    expect(primary.batches).toHaveLength(1);

    // A failing migration leaves nothing of itself (nor of the others in the same run).
    writeMigrations(folder, [
      ...first,
      { tag: "0002_ok", when: 1_700_000_002_000, sql: "ALTER TABLE things ADD COLUMN price REAL;" },
      { tag: "0003_bad", when: 1_700_000_003_000, sql: "INSERT INTO no_such_table VALUES (1);" },
    ]);
    await expect(migrate(db, { migrationsFolder: folder })).rejects.toThrow(/no_such_table/);
    const columns = file.prepare("select name from pragma_table_info('things')").pluck().all();
    expect(columns).toEqual(["id", "name"]);
    expect(file.prepare("select count(*) from __drizzle_migrations").pluck().get()).toBe(2);
    expect(replica.sql).toEqual([]);
    await expect(migrate({} as never, { migrationsFolder: folder })).rejects.toMatchObject({
      code: "ROUTER_INVALID_ARGUMENT",
    });
  });
});
