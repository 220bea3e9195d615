/**
 * Shared pieces of the reliability tests: a random workload for the scripted
 * writer (test/vfs/helpers.ts), random read queries, the layouts of every LTX
 * file in a store (for targeted bit flips), and the differential check
 * "equal to the primary at the replica's TXID, or an I/O error".
 */
import type Database from "better-sqlite3";
import { expect } from "vitest";
import { PagecastError } from "../../src/errors.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { type LtxLayout, ltxLayout } from "../../src/testing/ltx-corruption.js";
import type { Prng } from "../../src/testing/prng.js";
import { ReplicaQueryError } from "../../src/vfs/index.js";
import { primaryValues, type ScriptedWriter } from "../vfs/helpers.js";

/** The schema every reliability workload starts from. */
export const SCHEMA =
  "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, score INTEGER, bio TEXT);" +
  "CREATE INDEX users_age ON users(age);" +
  "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, amount INTEGER, note TEXT);" +
  "CREATE INDEX orders_user ON orders(user_id);";

function words(r: Prng, n: number): string {
  const vocabulary = ["red", "green", "blue", "amber", "ivory", "olive", "teal", "plum", "sand"];
  let s = "";
  while (s.length < n) s += `${r.pick(vocabulary)}-${r.int(0, 9999)} `;
  return s.slice(0, n);
}

function maxId(db: Database.Database, table: string): number {
  return (db.prepare(`SELECT coalesce(max(id), 1) AS m FROM ${table}`).get() as { m: number }).m;
}

/** Seeds `users`/`orders` with `n` users. */
export function seedRows(db: Database.Database, r: Prng, n: number): void {
  const ins = db.prepare("INSERT INTO users (name, age, score, bio) VALUES (?, ?, ?, ?)");
  const order = db.prepare("INSERT INTO orders (user_id, amount, note) VALUES (?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = Number(
        ins.run(words(r, 8), r.int(18, 90), r.int(0, 10_000), words(r, r.int(0, 300)))
          .lastInsertRowid,
      );
      for (let j = r.int(0, 3); j > 0; j--) order.run(id, r.int(1, 500), words(r, r.int(0, 40)));
    }
  })();
}

/** One random write transaction: inserts, updates, deletes, a schema change or VACUUM. */
export function randomWrite(db: Database.Database, r: Prng, step: number): void {
  const kind = r.int(0, 99);
  const top = maxId(db, "users");
  if (kind < 40) seedRows(db, r, r.int(1, kind < 4 ? 300 : 30));
  else if (kind < 60) {
    db.prepare("UPDATE users SET score = score + ?, bio = substr(bio, 1, ?) WHERE id % ? = ?").run(
      r.int(1, 50),
      r.int(0, 200),
      r.int(2, 9),
      r.int(0, 1),
    );
  } else if (kind < 75) {
    const lo = r.int(1, top);
    db.transaction(() => {
      db.prepare("DELETE FROM orders WHERE user_id BETWEEN ? AND ?").run(lo, lo + r.int(0, 40));
      db.prepare("DELETE FROM users WHERE id BETWEEN ? AND ?").run(lo, lo + r.int(0, 40));
    })();
  } else if (kind < 85) {
    db.prepare("UPDATE orders SET amount = amount + 1 WHERE id % 7 = ?").run(r.int(0, 6));
  } else if (kind < 92) {
    if (r.chance(0.5))
      db.exec(`CREATE INDEX IF NOT EXISTS users_score_${step % 3} ON users(score)`);
    else db.exec(`CREATE TABLE IF NOT EXISTS side_${step % 4} (k INTEGER PRIMARY KEY, v TEXT)`);
  } else if (kind < 96) {
    db.exec("VACUUM");
  } else {
    db.prepare("UPDATE users SET name = ? WHERE id = ?").run(words(r, 12), r.int(1, top));
  }
}

/** A random read query (point lookups, index ranges, scans, joins, aggregates) and its parameters. */
export function randomQuery(r: Prng, top: number): [string, (number | string)[]] {
  switch (r.int(0, 7)) {
    case 0:
      return ["SELECT * FROM users WHERE id = ?", [r.int(1, top)]];
    case 1: {
      const lo = r.int(18, 90);
      return [
        "SELECT id, name, age FROM users WHERE age BETWEEN ? AND ? ORDER BY id",
        [lo, lo + r.int(0, 4)],
      ];
    }
    case 2:
      return [
        "SELECT id, length(bio), score FROM users WHERE score % 17 = ? ORDER BY id",
        [r.int(0, 16)],
      ];
    case 3:
      return [
        "SELECT u.id, count(o.id), sum(o.amount) FROM users u JOIN orders o ON o.user_id = u.id " +
          "WHERE u.age > ? GROUP BY u.id ORDER BY u.id LIMIT 40",
        [r.int(18, 90)],
      ];
    case 4:
      return [
        "SELECT age, count(*), sum(score), max(name) FROM users GROUP BY age ORDER BY age",
        [],
      ];
    case 5:
      return ["SELECT * FROM orders WHERE user_id = ? ORDER BY id", [r.int(1, top)]];
    case 6:
      return ["SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name", []];
    default:
      return ["SELECT count(*), sum(amount) FROM orders", []];
  }
}

/** Highest user id at `txid` (for query parameters). */
export function topUser(writer: ScriptedWriter, txid: number): number {
  const db = writer.primaryAt(txid);
  try {
    return maxId(db, "users");
  } finally {
    db.close();
  }
}

/** The layout of every LTX object in `store`, keyed by store key (`known` entries are reused). */
export async function ltxLayouts(
  store: ObjectStore,
  known: Map<string, LtxLayout> = new Map(),
): Promise<Map<string, LtxLayout>> {
  let token: string | undefined;
  do {
    const page = await store.list(token ? { continuationToken: token } : {});
    for (const o of page.objects) {
      if (!o.key.endsWith(".ltx") || known.has(o.key)) continue;
      const res = await store.get(o.key);
      if (!res.notModified) known.set(o.key, ltxLayout(res.body));
    }
    token = page.continuationToken;
  } while (token);
  return known;
}

/** Outcome counts of differential queries. */
export interface Tally {
  equal: number;
  ioErrors: number;
  /** Codes of the storage errors behind the I/O errors. */
  causes: Map<string, number>;
}

/** A fresh {@link Tally}. */
export function tally(): Tally {
  return { equal: 0, ioErrors: 0, causes: new Map() };
}

/** Code of the outermost typed error in a cause chain. */
function firstCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 6; depth++) {
    if (e instanceof PagecastError) return e.code;
    e = (e as { cause?: unknown }).cause;
  }
  return "unknown";
}

/**
 * Runs one query on `replica` and checks it against the primary at the TXID
 * the replica served (its status TXID, unchanged across the query since
 * queries run one at a time): the answer must be equal, or the query must
 * fail with SQLITE_IOERR. Anything else fails the test.
 */
export async function differentialQuery(
  replica: {
    values(sql: string, params?: (number | string)[]): Promise<unknown[][]>;
    status(): { txid: number | null };
  },
  writer: ScriptedWriter,
  sql: string,
  params: (number | string)[],
  t: Tally,
  label: string,
): Promise<void> {
  const before = replica.status().txid;
  let got: unknown[][] | undefined;
  let failure: unknown;
  try {
    got = await replica.values(sql, params);
  } catch (err) {
    failure = err;
  }
  const after = replica.status().txid;
  if (failure !== undefined) {
    if (!(failure instanceof ReplicaQueryError) || failure.code !== "SQLITE_IOERR") {
      throw new Error(`${label}: expected an answer or SQLITE_IOERR, got ${String(failure)}`, {
        cause: failure,
      });
    }
    t.ioErrors++;
    const code = firstCode(failure.cause);
    t.causes.set(code, (t.causes.get(code) ?? 0) + 1);
    return;
  }
  // The poll before the query may have advanced the version: the answer must match one of them.
  const candidates = new Set([before, after].filter((x): x is number => x !== null));
  let matched = false;
  let want: unknown[][] = [];
  for (const txid of candidates) {
    const primary = writer.primaryAt(txid);
    try {
      want = primaryValues(primary, sql, params);
    } finally {
      primary.close();
    }
    if (JSON.stringify(want) === JSON.stringify(got)) matched = true;
    if (matched) break;
  }
  if (!matched) {
    expect(
      got,
      `${label}: WRONG ANSWER at TXID ${[...candidates].join("/")}: ${sql} ${JSON.stringify(params)}`,
    ).toEqual(want);
  }
  t.equal++;
}

/** An S3 store on the test server (`inject("s3")`) under `prefix`, through `endpoint` (a proxy) if given. */
export function testS3Store(
  s3: {
    endpoint: string;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  },
  prefix: string,
  endpoint = s3.endpoint,
): S3Store {
  return new S3Store({
    bucket: s3.bucket,
    prefix,
    endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}
