/**
 * Differential test: the Replicator publishes a random workload (schema
 * changes, VACUUM, big transactions, compactions); after every sync the
 * replica must answer >= 1,000 random queries in total exactly like the
 * primary at the same TXID. A read transaction held across several writer
 * commits keeps its version.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, expect, test } from "vitest";
import { listAllLevels } from "../../src/layout/index.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica } from "../../src/vfs/index.js";
import { primaryValues, readSqliteWasm } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Deterministic PRNG (mulberry32) so a failure replays with the same seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!,
  };
}

type Rng = ReturnType<typeof rng>;

function text(r: Rng, n: number): string {
  const words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "zeta"];
  let s = "";
  while (s.length < n) s += `${r.pick(words)}${r.int(0, 999)} `;
  return s.slice(0, n);
}

/** One random write transaction on the primary (app connection). */
function randomWrite(db: Database.Database, r: Rng, step: number): void {
  const maxUser = (db.prepare("SELECT coalesce(max(id), 0) AS m FROM users").get() as { m: number })
    .m;
  const kind = r.int(0, 99);
  if (kind < 35) {
    const ins = db.prepare("INSERT INTO users (name, age, score, bio) VALUES (?, ?, ?, ?)");
    const insOrder = db.prepare("INSERT INTO orders (user_id, amount, note) VALUES (?, ?, ?)");
    db.transaction(() => {
      const n = r.int(1, kind < 5 ? 400 : 40);
      for (let i = 0; i < n; i++) {
        const big = r.next() < 0.05;
        const info = ins.run(
          text(r, 8),
          r.int(18, 90),
          r.int(0, 10_000),
          text(r, big ? r.int(3000, 9000) : r.int(0, 200)),
        );
        for (let j = r.int(0, 3); j > 0; j--) {
          insOrder.run(Number(info.lastInsertRowid), r.int(1, 500), text(r, r.int(0, 40)));
        }
      }
    })();
  } else if (kind < 55) {
    db.prepare("UPDATE users SET score = score + ?, bio = substr(bio, 1, ?) WHERE id % ? = ?").run(
      r.int(1, 50),
      r.int(0, 150),
      r.int(2, 9),
      r.int(0, 1),
    );
  } else if (kind < 70) {
    const lo = r.int(1, Math.max(1, maxUser));
    db.transaction(() => {
      db.prepare("DELETE FROM orders WHERE user_id BETWEEN ? AND ?").run(lo, lo + r.int(0, 60));
      db.prepare("DELETE FROM users WHERE id BETWEEN ? AND ?").run(lo, lo + r.int(0, 60));
    })();
  } else if (kind < 78) {
    db.prepare("UPDATE orders SET amount = amount * 2 WHERE id % 5 = ?").run(r.int(0, 4));
  } else if (kind < 86) {
    // Schema changes.
    const which = r.int(0, 3);
    if (which === 0)
      db.exec(`ALTER TABLE users ADD COLUMN extra_${step} INTEGER DEFAULT ${r.int(0, 9)}`);
    else if (which === 1)
      db.exec(`CREATE INDEX IF NOT EXISTS users_score_${step % 3} ON users(score)`);
    else if (which === 2) {
      const idx = db
        .prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'users_score_%'")
        .all() as {
        name: string;
      }[];
      if (idx.length > 0) db.exec(`DROP INDEX ${idx[0]!.name}`);
    } else {
      db.exec(`CREATE TABLE IF NOT EXISTS side_${step % 4} (k INTEGER PRIMARY KEY, v TEXT)`);
      db.exec(`INSERT INTO side_${step % 4} (v) SELECT name FROM users LIMIT 20`);
    }
  } else if (kind < 92) {
    db.exec("VACUUM");
  } else {
    db.prepare("UPDATE users SET name = ? WHERE id = ?").run(
      text(r, 10),
      r.int(1, Math.max(1, maxUser)),
    );
  }
}

/** A random read query and its parameters. */
function randomQuery(db: Database.Database, r: Rng): [string, unknown[]] {
  const maxUser = (db.prepare("SELECT coalesce(max(id), 1) AS m FROM users").get() as { m: number })
    .m;
  switch (r.int(0, 8)) {
    case 0:
      return ["SELECT * FROM users WHERE id = ?", [r.int(1, maxUser)]];
    case 1: {
      const lo = r.int(18, 90);
      return [
        "SELECT id, name, age FROM users WHERE age BETWEEN ? AND ? ORDER BY id",
        [lo, lo + r.int(0, 5)],
      ];
    }
    case 2:
      return [
        "SELECT id, length(bio), score FROM users WHERE score % 13 = ? ORDER BY id",
        [r.int(0, 12)],
      ];
    case 3:
      return [
        "SELECT u.id, count(o.id), sum(o.amount) FROM users u JOIN orders o ON o.user_id = u.id " +
          "WHERE u.age > ? GROUP BY u.id ORDER BY u.id LIMIT 50",
        [r.int(18, 90)],
      ];
    case 4:
      return [
        "SELECT age, count(*), sum(score), max(name), min(length(bio)) FROM users GROUP BY age ORDER BY age",
        [],
      ];
    case 5:
      return ["SELECT * FROM orders WHERE user_id = ? ORDER BY id", [r.int(1, maxUser)]];
    case 6:
      return ["SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name", []];
    case 7:
      return ["SELECT id, name FROM users ORDER BY name, id LIMIT 20 OFFSET ?", [r.int(0, 300)]];
    default:
      return [
        "SELECT count(*), sum(amount), avg(amount) FROM orders WHERE user_id IN (SELECT id FROM users WHERE score > ?)",
        [r.int(0, 10_000)],
      ];
  }
}

test("replica answers equal the primary at the same TXID under a random workload", async () => {
  const seed = Number(process.env.PAGECAST_SEED ?? 20251122);
  const r = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), "pagecast-vfs-diff-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const dbPath = join(dir, "app.db");
  const app = new Database(dbPath);
  cleanups.push(() => app.close());
  app.pragma("journal_mode = wal");
  app.exec(
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, score INTEGER, bio TEXT);" +
      "CREATE INDEX users_age ON users(age);" +
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, amount INTEGER, note TEXT);" +
      "CREATE INDEX orders_user ON orders(user_id);",
  );
  const store = new MemoryStore();
  const startWriter = () =>
    Replicator.start({
      db: dbPath,
      store,
      syncInterval: 0,
      compaction: false,
      retention: 0,
      checkpointPages: 200,
      truncatePages: 2000,
    });
  let writer = await startWriter();
  cleanups.push(() => writer.close());
  const replica = await openReplica({
    store,
    wasm: readSqliteWasm,
    pollIntervalMs: 60_000,
    connections: 2,
  });
  cleanups.push(() => replica.close());

  let queries = 0;
  let held: { promise: Promise<void>; release: () => void } | undefined;
  for (let round = 0; round < 45; round++) {
    for (let w = r.int(1, 3); w > 0; w--) randomWrite(app, r, round * 10 + w);
    if (round % 9 === 8) await writer.compactNow();
    if (round === 30) {
      // A writer restart (new generation) while the replica keeps serving.
      await writer.close();
      writer = await startWriter();
    }
    const t0 = Date.now();
    const pos = await writer.sync();
    if (process.env.DBG) console.log("round", round, "sync ms", Date.now() - t0, pos.txid, queries);
    await replica.poll();
    expect(replica.status().txid, `seed ${seed} round ${round}`).toBe(pos.txid);

    if (round === 10) {
      // Hold a read transaction open across the next rounds' commits and polls.
      const image = app.serialize();
      // A WAL-mode header cannot be opened in memory; the content is what counts.
      image[18] = 1;
      image[19] = 1;
      const frozen = new Database(image);
      cleanups.push(() => frozen.close());
      const fixed = Array.from({ length: 10 }, () => randomQuery(frozen, r));
      let release = () => {};
      const gate = new Promise<void>((res) => {
        release = res;
      });
      const promise = replica.transaction(async (tx) => {
        for (;;) {
          for (const [sql, params] of fixed) {
            expect(await tx.values(sql, params as never), `held: ${sql}`).toEqual(
              primaryValues(frozen, sql, params),
            );
            queries++;
          }
          const done = await Promise.race([
            gate.then(() => true),
            new Promise((res) => setTimeout(() => res(false), 5)),
          ]);
          if (done) return;
        }
      });
      held = { promise, release };
    }
    if (round === 20 && held) {
      held.release();
      await held.promise;
      held = undefined;
    }

    for (let q = 0; q < 24; q++) {
      const [sql, params] = randomQuery(app, r);
      const want = primaryValues(app, sql, params);
      if (process.env.DBG) console.log("q", q, sql);
      const got = await replica.values(sql, params as never);
      expect(got, `seed ${seed} round ${round}: ${sql} ${JSON.stringify(params)}`).toEqual(want);
      queries++;
    }
  }
  expect(queries).toBeGreaterThanOrEqual(1000);
  // The workload really exercised compaction.
  const files = await listAllLevels(store);
  expect(files.some((f) => f.level >= 1 && f.level <= 3)).toBe(true);
  const st = replica.status();
  expect(st.lastError).toBeNull();
  expect(st.requests.list.requests).toBe(0);
});
