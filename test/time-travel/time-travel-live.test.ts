/**
 * Time travel derives from the live replica: on file://, memory:// and s3://
 * routers (replicas opened by URL, as applications do), a past database uses
 * the live replica's store and page cache, never reopens anything by URL,
 * answers with the primary driver's types like the router, and closing it
 * leaves the live replica untouched. Request counts prove the page cache is
 * shared: pages the live replica holds cost the past database nothing.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { asc } from "drizzle-orm";
import { blob, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import {
  createRouter,
  dropMemoryStore,
  type ObjectStore,
  openReplica,
  type Replica,
  S3Store,
  timeTravel,
} from "../../src/index.node.js";
import { betterSqlitePrimary, Replicator } from "../../src/node.js";
import { tempDir } from "../replicator/helpers.js";
import { rgwServer } from "../support/s3-server.js";

const items = sqliteTable("items", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
  tag: blob("tag"),
});
const schema = { items };

interface Backend {
  name: string;
  /** The replica URL and the options a reader needs (credentials). */
  setup(dir: string): Promise<{
    url: string;
    storeOptions?: object;
    /** The writer's store when it cannot open the URL alone (credentials). */
    writerStore?: ObjectStore;
    cleanup(): Promise<void>;
  }>;
}

const s3 = inject("s3");
const s3Backend = (
  name: string,
  endpoint: string,
  bucket: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  createBucket = false,
): Backend => ({
  name,
  async setup() {
    if (createBucket) {
      const { createBucket: create } = await import("../support/s3-server.js");
      await create(endpoint, bucket, credentials);
    }
    const prefix = `tt-live-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const url = `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1`;
    const store = new S3Store({
      bucket,
      prefix,
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials,
    });
    return {
      url,
      storeOptions: { credentials },
      writerStore: store,
      async cleanup() {
        const keys = (await store.list({})).objects.map((o) => o.key);
        if (keys.length > 0) await store.deleteMany(keys);
        await store.close();
      },
    };
  },
});

const backends: Backend[] = [
  {
    name: "file://",
    async setup(dir) {
      return { url: pathToFileURL(join(dir, "replica")).href, async cleanup() {} };
    },
  },
  {
    name: "memory://",
    async setup() {
      const name = `tt-live-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      return {
        url: `memory://${name}`,
        async cleanup() {
          dropMemoryStore(name);
        },
      };
    },
  },
  s3Backend("s3:// (fauxqs)", s3.endpoint, s3.bucket, {
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  }),
];
const rgw = rgwServer();
if (rgw) {
  backends.push(
    s3Backend(
      "s3:// (RGW)",
      rgw.endpoint,
      `pagecast-tt-${Date.now().toString(36)}`,
      rgw.credentials,
      true,
    ),
  );
}

describe.each(backends)("timeTravel from a router over a $name replica", (backend) => {
  let dir: string;
  let cleanupDir: () => void;
  let cleanupStore: () => Promise<void>;
  let file: Database.Database;
  let url: string;
  let storeOptions: object | undefined;
  let writerStore: ObjectStore | undefined;
  let live: Replica;
  /** TXID, commit time and names of each state. */
  const states: { txid: number; time: number; names: string[] }[] = [];

  beforeAll(async () => {
    ({ dir, cleanup: cleanupDir } = tempDir("pagecast-tt-live-"));
    ({ url, storeOptions, writerStore, cleanup: cleanupStore } = await backend.setup(dir));
    file = new Database(join(dir, "primary.db"));
    file.pragma("journal_mode = wal");
    file.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, tag BLOB)");
    // Enough rows for many pages, so cache sharing shows in the counts.
    const ins = file.prepare("INSERT INTO items (name, tag) VALUES (?, ?)");
    file.transaction(() => {
      for (let i = 0; i < 400; i++) ins.run(`item ${i} `.padEnd(300, "x"), Buffer.from([i & 0xff]));
    })();
    const replicator = await Replicator.start({
      db: join(dir, "primary.db"),
      ...(writerStore ? { store: writerStore } : { url }),
      syncInterval: 0,
      compaction: false,
    });
    const names = () =>
      file.prepare("SELECT name FROM items WHERE id > 400 ORDER BY id").pluck().all() as string[];
    try {
      states.push({ ...replicator.position, time: replicator.position.timestamp, names: names() });
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 20));
        ins.run(`new ${i}`, null);
        const pos = await replicator.sync();
        states.push({ txid: pos.txid, time: pos.timestamp, names: names() });
      }
    } finally {
      await replicator.close();
    }
    live = await openReplica(url, {
      pollIntervalMs: 0,
      ...(storeOptions ? { storeOptions } : {}),
    });
  }, 120_000);

  afterAll(async () => {
    await live?.close();
    file?.close();
    await cleanupStore?.();
    cleanupDir?.();
  });

  const router = (safeIntegers = false) =>
    createRouter({
      primary: betterSqlitePrimary(file, { safeIntegers }),
      replicas: [live],
      schema,
      context: null,
    });

  test("every state, by TXID, time and 'N seconds ago'; the live replica is untouched", async () => {
    const db = router();
    for (const s of states) {
      const byTxid = await timeTravel(db, { txid: s.txid }, async (past) =>
        (await past.select({ name: items.name }).from(items).orderBy(asc(items.id))).slice(400),
      );
      expect(byTxid.map((r) => r.name)).toEqual(s.names);
      const ago = await timeTravel(db, "5 seconds ago", { clock: () => s.time + 5000 }, (past) =>
        past.$count(items),
      );
      expect(ago).toBe(400 + s.names.length);
    }
    const before = live.status();
    const past = await timeTravel(db, { txid: states[1]!.txid });
    expect(past.$replica.url).toBe(live.url);
    expect(past.$replica.status().pinned).toBe(true);
    await past.close();
    // The live replica still answers, still follows the writer, still has its cache.
    expect(await live.values("SELECT count(*) FROM items")).toEqual([[403]]);
    await live.poll();
    expect(live.status().cache.entries).toBeGreaterThanOrEqual(before.cache.entries);
  });

  test("answers with the primary driver's types, like the router", async () => {
    for (const safeIntegers of [false, true]) {
      const db = router(safeIntegers);
      const fromRouter = await db.select().from(items).orderBy(asc(items.id)).limit(2);
      const fromPast = await timeTravel(db, { txid: states.at(-1)!.txid }, (past) =>
        past.select().from(items).orderBy(asc(items.id)).limit(2),
      );
      expect(fromPast).toEqual(fromRouter);
      expect(typeof fromPast[0]!.id).toBe(safeIntegers ? "bigint" : "number");
      expect(Buffer.isBuffer(fromPast[0]!.tag)).toBe(true);
    }
  });

  test("a past database reuses the live replica's cached pages", async () => {
    // Warm the live replica: every page of the table.
    await live.values("SELECT * FROM items");
    const db = router();
    const at = { txid: states.at(-1)!.txid };
    const shared = await timeTravel(db, at);
    try {
      const rows = await shared.$replica.values("SELECT * FROM items");
      expect(rows).toHaveLength(403);
      // Every page was already in the shared cache: no page was fetched.
      expect(shared.$replica.status().requests.page.requests).toBe(0);
    } finally {
      await shared.close();
    }
    // A replica opened on its own at the same state fetches them all.
    const alone = await openReplica(url, {
      at,
      ...(storeOptions ? { storeOptions } : {}),
    });
    try {
      await alone.values("SELECT * FROM items");
      expect(alone.status().requests.page.requests).toBeGreaterThan(0);
    } finally {
      await alone.close();
    }
    // The live replica kept its pages: reading them again fetches nothing.
    const pagesBefore = live.status().requests.page.requests;
    await live.values("SELECT * FROM items");
    expect(live.status().requests.page.requests).toBe(pagesBefore);
  });

  test("a pinned replica shares the live replica's persistent cache (cacheDir)", async () => {
    const cacheDir = join(dir, `cache-${Math.random().toString(36).slice(2, 8)}`);
    const opts = { pollIntervalMs: 0, cacheDir, ...(storeOptions ? { storeOptions } : {}) };
    const at = { txid: states[0]!.txid };
    const fetched = (r: Replica) => {
      const q = r.status().requests;
      return q.page.requests + q.bulk.requests + q.hydrate.requests;
    };
    // A live replica with a cacheDir: its pinned replica fetches the past's pages into it.
    const first = await openReplica(url, opts);
    try {
      const past = await first.pinned(at);
      expect(past.status().pinned).toBe(true);
      expect(await past.values("SELECT count(*) FROM items")).toEqual([[400]]);
      expect((await past.values("SELECT * FROM items")).length).toBe(400);
      expect(fetched(past)).toBeGreaterThan(0);
      await past.close();
      // Closing the pinned replica leaves its live replica (and their store) working.
      expect(await first.values("SELECT count(*) FROM items")).toEqual([[403]]);
    } finally {
      await first.close();
    }
    // Another live replica (a fresh process' worth of memory) over the same cacheDir:
    // its pinned replica reads the past's pages from the directory, not from storage.
    const second = await openReplica(url, opts);
    try {
      const past = await second.pinned(at);
      try {
        expect((await past.values("SELECT * FROM items")).length).toBe(400);
        expect(fetched(past)).toBe(0);
        expect(past.status().persistentCache?.hits).toBeGreaterThan(0);
      } finally {
        await past.close();
      }
    } finally {
      await second.close();
    }
  });

  test("a pinned replica reads the pages its live replica hydrated", async () => {
    const hydrated = await openReplica(url, {
      pollIntervalMs: 0,
      hydrate: true,
      ...(storeOptions ? { storeOptions } : {}),
    });
    try {
      expect((await hydrated.hydrate()).state).toBe("done");
      // Hydrated pages live beside the page cache, not in it: still shared.
      // No hydrate option: a pinned replica of a hydrating one does not hydrate a copy.
      const past = await hydrated.pinned({ txid: states.at(-1)!.txid });
      try {
        expect((await past.values("SELECT * FROM items")).length).toBe(403);
        const q = past.status().requests;
        expect(q.page.requests + q.bulk.requests + q.hydrate.requests).toBe(0);
        expect(past.status().hydration.state).toBe("off");
      } finally {
        await past.close();
      }
    } finally {
      await hydrated.close();
    }
  });

  test("pinned: bad `at` is a typed error; the store outlives the live replica while a past one is open", async () => {
    const own = await openReplica(url, {
      pollIntervalMs: 0,
      ...(storeOptions ? { storeOptions } : {}),
    });
    await expect(own.pinned(undefined)).rejects.toMatchObject({
      code: "REPLICA_INVALID_ARGUMENT",
    });
    await expect(own.pinned("yesterday-ish")).rejects.toMatchObject({
      code: "REPLICA_INVALID_ARGUMENT",
    });
    const past = await own.pinned({ txid: states[1]!.txid }, { hydrate: false });
    await own.close();
    await expect(own.pinned({ txid: 1 })).rejects.toMatchObject({ code: "REPLICA_CLOSED" });
    // The past replica still reads (from storage too: the live replica's cache is gone).
    expect(await past.values("SELECT count(*) FROM items")).toEqual([[401]]);
    expect((await past.values("SELECT name FROM items WHERE id = 401"))[0]).toEqual(["new 0"]);
    await past.close();
  });
});
