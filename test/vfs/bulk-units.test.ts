/**
 * Units of bulk fetching and the persistent cache: statement plans read from
 * bytecode, range planning, the B-tree map and page parsers against SQLite's
 * own view of a database (dbstat), and the persistent cache's entries
 * (merging, checksums, corruption).
 */
import Database from "better-sqlite3";
import { describe, expect, test } from "vitest";
import { BtreeMap } from "../../src/vfs/btree-map.js";
import {
  indexLeafRowids,
  leafOverflowChains,
  tableInteriorChild,
  usableSize,
} from "../../src/vfs/btree-page.js";
import type { PageRequest } from "../../src/vfs/page-fetcher.js";
import type { PlanFile } from "../../src/vfs/page-index.js";
import {
  PersistentCache,
  type PersistentCacheBackend,
  serializeEntry,
} from "../../src/vfs/persistent-cache.js";
import { planRuns } from "../../src/vfs/range-planner.js";
import { analyzeBytecode, type StatementPlan } from "../../src/vfs/statement-plan.js";

const SCHEMA = `
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, country TEXT);
CREATE TABLE items(id INTEGER PRIMARY KEY, user_id INT, sku TEXT, created_at INT, price INT, body TEXT);
CREATE INDEX items_user ON items(user_id);
CREATE INDEX items_created ON items(created_at);`;

function planOf(db: Database.Database, sql: string): StatementPlan {
  const n = (sql.match(/\?/g) ?? []).length;
  const ops = db.prepare(`EXPLAIN ${sql}`).all(...Array(n).fill(1)) as {
    addr: number;
    opcode: string;
    p1: number;
    p2: number;
    p3: number;
  }[];
  return analyzeBytecode(ops);
}

function rootOf(db: Database.Database, name: string): number {
  return db
    .prepare("SELECT rootpage FROM sqlite_schema WHERE name = ?")
    .pluck()
    .get(name) as number;
}

describe("statement plans from bytecode", () => {
  const db = new Database(":memory:");
  db.exec(SCHEMA);
  const users = rootOf(db, "users");
  const items = rootOf(db, "items");
  const byUser = rootOf(db, "items_user");
  const byCreated = rootOf(db, "items_created");

  test("a join: the outer table is scanned, the inner index looked up per row (eagerly)", () => {
    const plan = planOf(
      db,
      "SELECT u.country, count(*) FROM users u JOIN items i ON i.user_id = u.id WHERE u.country = ? GROUP BY 1",
    );
    expect(plan.trees.get(users)).toMatchObject({ access: "scan" });
    expect(plan.trees.get(byUser)).toMatchObject({ access: "loop", eager: true });
    expect(plan.trees.has(items)).toBe(false);
  });

  test("a range over a non-covering index: the index is a range, the table looked up through it", () => {
    const plan = planOf(db, "SELECT sum(price) FROM items WHERE created_at BETWEEN ? AND ?");
    expect(plan.trees.get(byCreated)).toMatchObject({ access: "range" });
    expect(plan.trees.get(items)).toMatchObject({
      access: "loop",
      eager: false,
      viaIndex: byCreated,
    });
  });

  test("point lookups, IN lists and LIMITs never look like whole-tree reads", () => {
    expect(planOf(db, "SELECT * FROM items WHERE id = ?").trees.get(items)?.access).toBe("point");
    expect(planOf(db, "SELECT * FROM items WHERE id IN (1, 2, 3)").trees.get(items)?.access).toBe(
      "point",
    );
    expect(planOf(db, "SELECT * FROM items LIMIT 10").trees.get(items)?.access).toBe("range");
    const top = planOf(db, "SELECT * FROM items ORDER BY created_at DESC LIMIT 10");
    expect(top.trees.get(byCreated)?.access).toBe("range");
    expect(top.trees.get(items)).toMatchObject({
      access: "point",
      viaIndex: byCreated,
      descending: true,
    });
  });

  test("counts and full scans are scans; a join by rowid is a loop over the scanned table", () => {
    expect(planOf(db, "SELECT count(*) FROM users").trees.get(users)?.access).toBe("scan");
    const join = planOf(
      db,
      "SELECT i.id, u.name FROM items i JOIN users u ON u.id = i.user_id WHERE i.price > ?",
    );
    expect(join.trees.get(items)?.access).toBe("scan");
    expect(join.trees.get(users)).toMatchObject({ access: "loop", eager: true });
  });
});

function file(key: string): PlanFile {
  return { level: 9, minTXID: 1, maxTXID: 1, key };
}

function frames(f: PlanFile, specs: [number, number][]): PageRequest[] {
  return specs.map(([offset, size], i) => ({ pgno: i + 2, loc: { file: f, offset, size } }));
}

describe("range planning", () => {
  const a = file("a");
  const b = file("b");

  test("touching frames share a GET; separate files never do", () => {
    const runs = planRuns(
      [
        ...frames(a, [
          [100, 10],
          [110, 10],
          [200, 10],
        ]),
        ...frames(b, [[120, 10]]),
      ],
      { maxRuns: 100, maxWasteBytes: 0, maxRangeBytes: 1 << 20 },
    );
    expect(runs.map((r) => [r.file.key, r.start, r.end])).toEqual([
      ["a", 100, 120],
      ["a", 200, 210],
      ["b", 120, 130],
    ]);
  });

  test("the smallest gaps are bridged first, within the waste budget", () => {
    const reqs = frames(a, [
      [0, 10],
      [15, 10], // gap 5
      [100, 10], // gap 75
      [120, 10], // gap 10
    ]);
    const two = planRuns(reqs, { maxRuns: 2, maxWasteBytes: 1000, maxRangeBytes: 1 << 20 });
    expect(two.map((r) => [r.start, r.end])).toEqual([
      [0, 25],
      [100, 130],
    ]);
    const capped = planRuns(reqs, { maxRuns: 1, maxWasteBytes: 15, maxRangeBytes: 1 << 20 });
    expect(capped.map((r) => [r.start, r.end])).toEqual([
      [0, 25],
      [100, 130],
    ]);
    const one = planRuns(reqs, { maxRuns: 1, maxWasteBytes: 1000, maxRangeBytes: 1 << 20 });
    expect(one.map((r) => [r.start, r.end, r.items.length])).toEqual([[0, 130, 4]]);
  });

  test("runs longer than the range limit are split at frame boundaries", () => {
    const reqs = frames(
      a,
      Array.from({ length: 10 }, (_, i) => [i * 100, 100] as [number, number]),
    );
    const runs = planRuns(reqs, { maxRuns: 1, maxWasteBytes: 0, maxRangeBytes: 350 });
    expect(runs.map((r) => [r.start, r.end])).toEqual([
      [0, 300],
      [300, 600],
      [600, 900],
      [900, 1000],
    ]);
    expect(runs.flatMap((r) => r.items).length).toBe(10);
  });
});

/** A scattered database (two tables and an index written in interleaved order, with deletes). */
function scattered(): { db: Database.Database; image: Uint8Array; pageSize: number } {
  const db = new Database(":memory:");
  db.pragma("page_size = 1024");
  db.exec(SCHEMA);
  const user = db.prepare("INSERT INTO users VALUES (?, ?, ?)");
  const item = db.prepare("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)");
  db.transaction(() => {
    for (let i = 1; i <= 3000; i++) {
      if (i % 3 === 0) user.run(i / 3, `user ${i}`.padEnd(60, "u"), i % 7 ? "FR" : "DE");
      const body = i % 97 === 0 ? "x".repeat(5000 + i) : `item ${i}`.padEnd(40, "i");
      item.run(i, (i * 7) % 1000, `sku-${i}`, 1_000_000 - i * 13, i % 500, body);
      if (i % 10 === 0) db.prepare("DELETE FROM items WHERE id = ?").run(i - 5);
    }
  })();
  const buf = db.serialize();
  return { db, image: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), pageSize: 1024 };
}

/** Rowids of a table leaf page (not page 1), read the plain way. */
function tableLeafRowids(page: Uint8Array): number[] {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const varint = (pos: number): [number, number] => {
    let v = 0;
    for (let i = 0; i < 9; i++) {
      const b = page[pos + i]!;
      if (i === 8) return [v * 256 + b, pos + 9];
      v = v * 128 + (b & 0x7f);
      if (!(b & 0x80)) return [v, pos + i + 1];
    }
    return [v, pos + 9];
  };
  const out: number[] = [];
  for (let i = 0; i < view.getUint16(3); i++) {
    const cell = view.getUint16(8 + i * 2);
    out.push(varint(varint(cell)[1])[0]);
  }
  return out;
}

describe("B-tree map and page parsers against dbstat", () => {
  const { db, image, pageSize } = scattered();
  const commit = image.length / pageSize;
  const page = (p: number) => image.subarray((p - 1) * pageSize, p * pageSize);
  const map = BtreeMap.build(commit, page);
  const leavesOf = (name: string) =>
    db
      .prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path")
      .pluck()
      .all(name) as number[];

  test("every tree's leaves, in key order, and which tree each page belongs to", () => {
    for (const name of ["users", "items", "items_user", "items_created"]) {
      const root = rootOf(db, name);
      const tree = map.tree(root)!;
      expect(tree.leaves).toEqual(leavesOf(name));
      expect(tree.unknown).toBe(0);
      expect(tree.table).toBe(name === "users" || name === "items");
      for (const [i, leaf] of tree.leaves.entries()) {
        expect(map.treeOf(leaf)?.root).toBe(root);
        expect(map.leafPos(leaf)).toBe(i);
      }
    }
    // The leaves really are scattered (the case bulk fetching is for).
    const items = leavesOf("items");
    const adjacent = items.filter((p, i) => i > 0 && p === items[i - 1]! + 1).length;
    expect(adjacent / items.length).toBeLessThan(0.9);
  });

  test("a map built from interior pages alone takes uncached children for leaves", () => {
    const interiorOnly = BtreeMap.build(commit, (p) => {
      const t = page(p)[p === 1 ? 100 : 0];
      return p === 1 || t === 0x02 || t === 0x05 ? page(p) : undefined;
    });
    for (const name of ["items", "items_created"]) {
      const tree = interiorOnly.tree(rootOf(db, name))!;
      expect(tree.leaves).toEqual(leavesOf(name));
      expect(tree.unknown).toBe(tree.leaves.length);
    }
  });

  test("index leaf rowids and table interior descent find the rows' leaves", () => {
    const usable = usableSize(page(1), pageSize);
    const tableRoot = rootOf(db, "items");
    const leafOf = (rowid: number) => {
      let p = tableRoot;
      for (;;) {
        const child = tableInteriorChild(page(p), p, rowid);
        if (child === undefined) return p;
        p = child;
      }
    };
    const index = map.tree(rootOf(db, "items_created"))!;
    let checked = 0;
    for (const leaf of index.leaves.slice(0, 20)) {
      const rowids = indexLeafRowids(page(leaf), leaf, usable);
      expect(rowids.length).toBeGreaterThan(0);
      for (const r of rowids) {
        expect(r).toBeDefined();
        const target = leafOf(r!);
        expect(map.treeOf(target)?.root).toBe(tableRoot);
        expect(tableLeafRowids(page(target))).toContain(r);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    // Rows in the order of created_at are the index entries' order.
    const firstLeaf = index.leaves[0]!;
    const want = db
      .prepare("SELECT id FROM items ORDER BY created_at LIMIT ?")
      .pluck()
      .all(indexLeafRowids(page(firstLeaf), firstLeaf, usable).length);
    expect(indexLeafRowids(page(firstLeaf), firstLeaf, usable)).toEqual(want);
  });

  test("overflow chains of table leaves match dbstat's overflow pages", () => {
    const usable = usableSize(page(1), pageSize);
    const chains = map
      .tree(rootOf(db, "items"))!
      .leaves.flatMap((leaf) => leafOverflowChains(page(leaf), leaf, usable, commit));
    const overflowPages = db
      .prepare("SELECT count(*) FROM dbstat WHERE name = 'items' AND pagetype = 'overflow'")
      .pluck()
      .get() as number;
    expect(chains.length).toBeGreaterThan(10);
    expect(chains.reduce((n, c) => n + c.pages, 0)).toBe(overflowPages);
  });
});

/** A backend in memory that tests can tamper with. */
class MemoryBackend implements PersistentCacheBackend {
  readonly entries = new Map<string, Uint8Array>();
  async get(key: string) {
    return this.entries.get(key);
  }
  async put(key: string, value: Uint8Array) {
    this.entries.set(key, value.slice());
  }
  async delete(key: string) {
    this.entries.delete(key);
  }
}

describe("persistent cache", () => {
  const bytes = (n: number, seed: number) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

  test("ranges across blocks come back as written; pieces merge; absent ranges are holes", async () => {
    const backend = new MemoryBackend();
    const cache = new PersistentCache(backend, { blockSize: 1000 });
    const data = bytes(5000, 7);
    await cache.write("obj", 500, data.subarray(500, 2600));
    await cache.write("obj", 3000, data.subarray(3000, 3500));
    expect(await cache.readWhole("obj", 600, 1900)).toEqual(data.subarray(600, 2500));
    const pieces = await cache.read("obj", 0, 4000);
    expect(pieces.map((p) => [p.offset, p.bytes.length])).toEqual([
      [500, 2100],
      [3000, 500],
    ]);
    // A later write fills the hole; the pieces join.
    await cache.write("obj", 2600, data.subarray(2600, 3000));
    expect(await cache.readWhole("obj", 500, 3000)).toEqual(data.subarray(500, 3500));
    // Other objects never see these bytes.
    expect(await cache.read("other", 500, 100)).toEqual([]);
    // A fresh cache over the same backend (another process) reads them too.
    const again = new PersistentCache(backend, { blockSize: 1000 });
    expect(await again.readWhole("obj", 500, 3000)).toEqual(data.subarray(500, 3500));
  });

  test("a corrupt part is detected by its checksum, dropped, and refilled by the next write", async () => {
    const backend = new MemoryBackend();
    const writer = new PersistentCache(backend, { blockSize: 1000 });
    const data = bytes(1000, 3);
    await writer.write("obj", 0, data.subarray(0, 300));
    await writer.write("obj", 500, data.subarray(500, 900));
    const [key] = [...backend.entries.keys()];
    const entry = backend.entries.get(key!)!;
    // Flip one byte of the second part's data (the entry's last bytes).
    entry[entry.length - 10]! ^= 0xff;
    const reader = new PersistentCache(backend, { blockSize: 1000 });
    const pieces = await reader.read("obj", 0, 1000);
    expect(pieces.map((p) => [p.offset, p.bytes.length])).toEqual([[0, 300]]);
    expect(reader.stats().corrupt).toBe(1);
    // The good part was kept, the bad one left out of the stored entry.
    const fresh = new PersistentCache(backend, { blockSize: 1000 });
    expect((await fresh.read("obj", 0, 1000)).length).toBe(1);
    expect(fresh.stats().corrupt).toBe(0);
    await fresh.write("obj", 500, data.subarray(500, 900));
    expect(
      await new PersistentCache(backend, { blockSize: 1000 }).readWhole("obj", 500, 400),
    ).toEqual(data.subarray(500, 900));
  });

  test("garbage, truncated entries and entries of another object are misses, never data", async () => {
    const backend = new MemoryBackend();
    const cache = new PersistentCache(backend, { blockSize: 1000 });
    await cache.write("obj", 0, bytes(100, 1));
    const [key] = [...backend.entries.keys()];
    const good = backend.entries.get(key!)!;
    for (const bad of [
      new Uint8Array(0),
      good.subarray(0, good.length - 1),
      Uint8Array.from(good, (b, i) => (i === 0 ? b ^ 1 : b)),
      serializeEntry("someone else", 0, [{ start: 0, bytes: bytes(100, 1) }]),
    ]) {
      backend.entries.set(key!, bad);
      const reader = new PersistentCache(backend, { blockSize: 1000 });
      expect(await reader.read("obj", 0, 100)).toEqual([]);
      expect(reader.stats().corrupt).toBeGreaterThan(0);
    }
  });

  test("a failing backend is a miss, not an error", async () => {
    const failing: PersistentCacheBackend = {
      get: () => Promise.reject(new Error("disk gone")),
      put: () => Promise.reject(new Error("disk gone")),
      delete: () => Promise.reject(new Error("disk gone")),
    };
    const cache = new PersistentCache(failing);
    await cache.write("obj", 0, bytes(10, 1));
    expect(await cache.read("obj", 0, 10)).toEqual([]);
    expect(cache.stats().errors).toBeGreaterThan(0);
  });
});
