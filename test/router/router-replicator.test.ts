/**
 * The router over a real Replicator and real replicas: reads served by
 * replicas equal the primary's, read-your-writes holds within a session and
 * across bookmarks while replication runs, and the positions the primary
 * adapter resolves are exact (a restore at that TXID has the write, one
 * before does not).
 */
import { join } from "node:path";
import type Database from "better-sqlite3";
import { eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, test } from "vitest";
import { restore } from "../../src/replicator/restore.js";
import { createRouter } from "../../src/router/router.js";
import { vfsStatus } from "../../src/router/vfs-status.js";
import { decodeBookmark } from "../../src/router/write-position.js";
import { asyncSessionContext } from "../../src/router-node/async-session-context.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { ReplicatorPositions } from "../../src/router-node/replicator-positions.js";
import { replicatedPrimary, schema, users } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function setup(syncInterval: number) {
  return replicatedPrimary((fn) => cleanups.push(fn), { syncInterval });
}

function rows(file: Database.Database, q: string): unknown[] {
  return file.prepare(q).raw(true).all();
}

describe("router with a Replicator and replicas", () => {
  test("reads come from replicas; read-your-writes within a session and across bookmarks", async () => {
    const env = await setup(50);
    const db = createRouter({
      primary: betterSqlitePrimary(env.file, { replicator: env.replicator, resolveWaitMs: 200 }),
      replicas: env.replicas,
      schema,
      context: asyncSessionContext(),
    });
    expect(await db.select().from(users).orderBy(users.id)).toEqual([
      { id: 1, name: "ada" },
      { id: 2, name: "bob" },
    ]);
    expect(vfsStatus(db).reads.replicas).toBe(1);

    let replicaReads = 0;
    let bookmark: string | null = null;
    for (let i = 0; i < 15; i++) {
      const id = 100 + i;
      // "Request" 1: write, read it back at once, hand out the bookmark.
      bookmark = await db.$withSession(async () => {
        await db.insert(users).values({ id, name: `user ${i}` });
        expect(await db.select().from(users).where(eq(users.id, id))).toHaveLength(1);
        return db.$bookmark();
      }, bookmark);
      // Later "requests" with the bookmark always see the write, wherever they read.
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 40));
        const before = vfsStatus(db).reads.replicas;
        const got = await db.$withSession(
          () => db.select().from(users).where(eq(users.id, id)),
          bookmark,
        );
        expect(got).toEqual([{ id, name: `user ${i}` }]);
        replicaReads += vfsStatus(db).reads.replicas - before;
      }
    }
    // Once replication catches up, the bookmarked client's reads are served by replicas.
    // Bounded in time, not in tries: catching up takes longer on a loaded machine.
    const catchUp = Date.now() + 30_000;
    while (replicaReads === 0 && Date.now() < catchUp) {
      await new Promise((r) => setTimeout(r, 20));
      const before = vfsStatus(db).reads.replicas;
      const got = await db.$withSession(
        () => db.select().from(users).where(eq(users.id, 114)),
        bookmark,
      );
      expect(got).toEqual([{ id: 114, name: "user 14" }]);
      replicaReads += vfsStatus(db).reads.replicas - before;
    }
    expect(replicaReads).toBeGreaterThan(0);
    // A resumed bookmark's pending position resolves to an exact TXID.
    expect(decodeBookmark(bookmark!).after).toBeDefined();
    const last = await db.$withSession(async () => {
      const resolveBy = Date.now() + 30_000;
      while (decodeBookmark(db.$bookmark()).after && Date.now() < resolveBy) {
        await new Promise((r) => setTimeout(r, 20));
      }
      return db.$bookmark();
    }, bookmark);
    expect(decodeBookmark(last).after).toBeUndefined();
    expect(decodeBookmark(last).txid).toBeGreaterThan(decodeBookmark(bookmark!).after!.after);

    // vfsStatus takes a replica too.
    expect(vfsStatus(env.replicas[0]!)).toMatchObject({ url: env.store.url, health: "healthy" });
    const st = vfsStatus(db);
    expect(st.replicas).toHaveLength(2);
    expect(st.replicas[0]!.status.url).toBe(env.store.url);
    expect(st.replicas[0]!.status.cache).toBeDefined();
    expect(st.fallbacks.reasons["read-your-writes"]).toBeGreaterThan(0);
    // Replica answers equal the primary's.
    const fromReplica = await db.$replica.values(sql`select id, name from users order by id`);
    await env.replicator.sync();
    await Promise.all(env.replicas.map((r) => r.poll()));
    expect(await db.$replica.values(sql`select id, name from users order by id`)).toEqual(
      rows(env.file, "select id, name from users order by id"),
    );
    expect(fromReplica.length).toBeGreaterThan(2);
  });

  test("resolved positions are exact: the TXID has the write, the one before does not", async () => {
    const env = await setup(0);
    const positions = new ReplicatorPositions(env.replicator, { waitMs: 50 });
    for (let i = 0; i < 4; i++) {
      env.file.prepare("insert into users (id, name) values (?, ?)").run(200 + i, `w${i}`);
      const mark = positions.mark();
      if (i % 2 === 1) await env.replicator.sync(); // sometimes published before resolving
      const txid = await positions.resolve(mark);
      expect(txid).toBeDefined();
      const has = async (t: number) => {
        const out = join(env.dir, `r-${i}-${t}.db`);
        await restore(env.store, out, { txid: t });
        const Db = (await import("better-sqlite3")).default;
        const db = new Db(out, { readonly: true });
        try {
          return (
            db
              .prepare("select count(*) from users where id = ?")
              .pluck()
              .get(200 + i) === 1
          );
        } finally {
          db.close();
        }
      };
      expect(await has(txid!)).toBe(true);
      if (txid! - 1 > mark.after!) expect(await has(txid! - 1)).toBe(false);
      expect(txid!).toBeLessThanOrEqual(mark.after! + 2);
    }
  });
});
