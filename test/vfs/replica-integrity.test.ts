/**
 * `PRAGMA integrity_check` / `quick_check` on a cold replica of a healthy,
 * messy database (un-VACUUMed, deletes and updates scattered over several
 * trees, non-covering indexes) answer "ok", on both wa-sqlite builds: a page
 * not cached yet must never turn into a row like "Tree 2 page 419: unable
 * to get the page. error code=266". A page that cannot be read at all fails
 * the statement with a typed error instead of being reported as a row.
 */
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetOptions, GetResult, ObjectStore } from "../../src/storage/object-store.js";
import { openReplica } from "../../src/vfs/open-replica.js";
import { ReplicaQueryError } from "../../src/vfs/replica-error.js";
import { openApp, rng, tempDir } from "../replicator/helpers.js";
import { readSqliteWasm } from "./helpers.js";

const { dir, cleanup } = tempDir("pagecast-integrity-");
const store = new MemoryStore();
let pages = 0;

beforeAll(async () => {
  const path = `${dir}/app.db`;
  const app = openApp(path);
  app.exec(`
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, bio TEXT, score REAL);
    CREATE INDEX users_email ON users(email);
    CREATE INDEX users_score ON users(score);
    CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER, kind TEXT, payload BLOB, at INTEGER);
    CREATE INDEX events_user ON events(user_id, at);
    CREATE INDEX events_kind ON events(kind);
  `);
  const rand = rng(18);
  const text = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join("");
  const addUser = app.prepare("INSERT INTO users (email, name, bio, score) VALUES (?, ?, ?, ?)");
  const addEvent = app.prepare(
    "INSERT INTO events (user_id, kind, payload, at) VALUES (?, ?, ?, ?)",
  );
  // Interleaved batches: the trees' pages end up scattered over the file.
  for (let batch = 0; batch < 40; batch++) {
    app.transaction(() => {
      for (let i = 0; i < 200; i++) {
        addUser.run(`${text(8)}@example.com`, text(12), text(Math.floor(rand() * 400)), rand());
        for (let j = 0; j < 3; j++) {
          addEvent.run(
            1 + Math.floor(rand() * (batch + 1) * 200),
            ["view", "click", "buy"][j]!,
            Buffer.alloc(Math.floor(rand() * 300), j),
            Math.floor(rand() * 1e9),
          );
        }
      }
    })();
    // Churn, never vacuumed: free pages, half-empty leaves.
    app.exec(`DELETE FROM events WHERE id % 7 = ${batch % 7}`);
    app.exec(`UPDATE users SET bio = bio || '${text(50)}' WHERE id % 11 = ${batch % 11}`);
  }
  pages = (app.pragma("page_count", { simple: true }) as number) ?? 0;
  expect(app.pragma("integrity_check", { simple: true })).toBe("ok");
  const replicator = await Replicator.start({ db: path, store, syncInterval: 0 });
  await replicator.sync();
  await replicator.close();
  app.close();
  // Check the data is what the test says it is: big enough to span many fetches.
  expect(pages).toBeGreaterThan(1000);
  const check = new Database(path, { readonly: true });
  expect(check.pragma("freelist_count", { simple: true })).toBeGreaterThan(0);
  check.close();
});

afterAll(() => cleanup());

describe.each([
  { build: "plain + async (default)", syncWasm: undefined },
  { build: "async only", syncWasm: false as const },
])("integrity pragmas on a cold replica, $build", ({ syncWasm }) => {
  for (const pragma of ["integrity_check", "quick_check"]) {
    test(`PRAGMA ${pragma} answers ok`, async () => {
      const replica = await openReplica({
        store,
        wasm: readSqliteWasm,
        ...(syncWasm === false ? { syncWasm } : {}),
        readAheadPages: 0,
        hydrate: false,
      });
      try {
        const rows = await replica.values(`PRAGMA ${pragma}`);
        expect(rows).toEqual([["ok"]]);
        // Warm, the same.
        expect(await replica.values(`PRAGMA ${pragma}`)).toEqual([["ok"]]);
      } finally {
        await replica.close();
      }
    });
  }
});

/** `inner` with page reads (ranged GETs) failing once `state.armed` is set. */
function failingPages(inner: ObjectStore, state: { armed: boolean }): ObjectStore {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "get") {
        return (key: string, options?: GetOptions): Promise<GetResult> =>
          state.armed && options?.range && "offset" in options.range
            ? Promise.reject(new Error(`injected read failure of ${key}`))
            : target.get(key, options);
      }
      if (prop === "close") return () => Promise.resolve();
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

test.each([
  ["plain + async", undefined],
  ["async only", false as const],
])(
  "a page read that fails is an error of integrity_check, never a row (%s)",
  async (_, syncWasm) => {
    const failing = { armed: false };
    const replica = await openReplica({
      store: failingPages(store, failing),
      wasm: readSqliteWasm,
      ...(syncWasm === false ? { syncWasm } : {}),
      readAheadPages: 0,
      hydrate: false,
      bulkFetchBytes: 0,
    });
    try {
      // Schema pages in, then every other page read fails.
      await replica.values("SELECT count(*) FROM sqlite_master");
      failing.armed = true;
      const err = await replica.values("PRAGMA integrity_check").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplicaQueryError);
      expect((err as ReplicaQueryError).code).toBe("SQLITE_IOERR");
    } finally {
      await replica.close();
    }
  },
);
