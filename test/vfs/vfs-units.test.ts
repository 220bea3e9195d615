import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { UNWRITTEN_GROWTH_SLACK } from "../../src/format/page-growth.js";
import { PageIndexEntries } from "../../src/format/page-index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetResult, ObjectStore } from "../../src/storage/object-store.js";
import {
  interiorChildren,
  isInteriorPage,
  PAGE_TYPE_INTERIOR_TABLE,
  schemaRootPages,
} from "../../src/vfs/btree-page.js";
import { planForward } from "../../src/vfs/discovery.js";
import { type LoadedFile, PageIndex, type PlanFile } from "../../src/vfs/page-index.js";
import { PieceRanges } from "../../src/vfs/piece-ranges.js";
import { AccessTracker } from "../../src/vfs/read-ahead.js";
import { RequestStats, TalliedStore } from "../../src/vfs/request-stats.js";
import { SerialQueue } from "../../src/vfs/serial-queue.js";
import { ScriptedWriter } from "./helpers.js";

function file(key: string, minTXID: number, maxTXID: number, level = 0): PlanFile {
  return { key, minTXID, maxTXID, level, size: 1 << 20 };
}

function loaded(f: PlanFile, pgnos: number[]): LoadedFile {
  return {
    file: f,
    fileSize: 1 << 20,
    entries: PageIndexEntries.from(
      pgnos.map((pgno, i) => ({ pgno, offset: 100 + i * 50, size: 50 })),
    ),
  };
}

describe("PageIndex", () => {
  const meta = (txid: number, commit: number) => ({
    txid,
    commit,
    pageSize: 4096,
    timestamp: txid,
  });

  test("newer files win, pages above Commit are dropped, regrowth does not resurrect old images", () => {
    const snap = file("snap", 1, 1, 9);
    let idx = PageIndex.fromFiles([loaded(snap, [1, 2, 3, 4, 5])], meta(1, 5));
    expect(idx.lookup(3)?.file.key).toBe("snap");
    expect(idx.lookup(6)).toBeUndefined();
    idx = idx.extend([loaded(file("a", 2, 2), [2, 5])], meta(2, 5));
    expect(idx.lookup(2)?.file.key).toBe("a");
    expect(idx.lookup(3)?.file.key).toBe("snap");
    // Shrink to 3 pages, then grow to 6 writing only page 6: 4 and 5 must not come back.
    idx = idx.extend([loaded(file("b", 3, 3), [1])], meta(3, 3));
    expect(idx.lookup(4)).toBeUndefined();
    idx = idx.extend([loaded(file("c", 4, 4), [6])], meta(4, 6));
    expect(idx.lookup(4)).toBeUndefined();
    expect(idx.lookup(5)).toBeUndefined();
    expect(idx.lookup(6)?.file.key).toBe("c");
    expect(idx.lookup(1)?.file.key).toBe("b");
  });

  test("matches a naive model through many overlays and flattenings (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            commit: fc.integer({ min: 1, max: 40 }),
            pages: fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 12 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (updates) => {
          const base = Array.from({ length: 20 }, (_, i) => i + 1);
          let idx = PageIndex.fromFiles([loaded(file("s", 1, 1, 9), base)], meta(1, 20));
          const model = new Map<number, string>(base.map((p) => [p, "s"]));
          updates.forEach((u, i) => {
            const key = `f${i}`;
            const pages = u.pages.filter((p) => p <= u.commit).sort((a, b) => a - b);
            idx = idx.extend([loaded(file(key, i + 2, i + 2), pages)], meta(i + 2, u.commit));
            for (const p of [...model.keys()]) if (p > u.commit) model.delete(p);
            for (const p of pages) model.set(p, key);
            for (let p = 1; p <= 41; p++) {
              expect(idx.lookup(p)?.file.key).toBe(model.get(p));
            }
          });
        },
      ),
      { numRuns: 100 },
    );
  });

  test("a page count is never trusted to size memory: impossible or uncovered claims are refused", () => {
    const snap = loaded(file("snap", 1, 1, 9), [1, 2, 3]);
    for (const commit of [0x3fffffff, 0xffffffff, 2 ** 53]) {
      expect(() => PageIndex.fromFiles([snap], meta(1, commit))).toThrow(
        expect.objectContaining({ code: "REPLICA_INDEX_INVALID" }),
      );
    }
    const idx = PageIndex.fromFiles([snap], meta(1, 3));
    expect(() => idx.extend([loaded(file("a", 2, 2), [2])], meta(2, 0xffffffff))).toThrow(
      expect.objectContaining({ code: "REPLICA_INDEX_INVALID" }),
    );
    // Growth far beyond the pages written: refused before anything is sized by it.
    expect(() => idx.extend([loaded(file("b", 2, 2), [2])], meta(2, 0x3fffffff))).toThrow(
      expect.objectContaining({ code: "REPLICA_INDEX_INVALID" }),
    );
    // Growth without writing some new pages (freed before the commit): allowed
    // within the slack, sized by the pages present.
    const top = 3 + UNWRITTEN_GROWTH_SLACK;
    let grown = idx.extend([loaded(file("b", 2, 2), [2])], meta(2, top));
    for (let i = 0; i < 10; i++) grown = grown.extend([], meta(3 + i, top));
    expect(grown.lookup(top)).toBeUndefined();
    expect(grown.lookup(2)?.file.key).toBe("b");
    expect(grown.lookup(3)?.file.key).toBe("snap");
  });

  test("rejects entries that cannot be frames of the file", () => {
    const bad: LoadedFile = {
      file: file("x", 1, 1, 9),
      fileSize: 1000,
      entries: PageIndexEntries.from([{ pgno: 1, offset: 990, size: 50 }]),
    };
    expect(() => PageIndex.fromFiles([bad], meta(1, 1))).toThrow(/impossible frame/);
  });
});

describe("planForward", () => {
  const f = (level: number, min: number, max: number) => ({ level, minTXID: min, maxTXID: max });
  test("takes the file reaching furthest, allows re-covering applied TXIDs, stops at gaps", () => {
    const files = [f(0, 5, 5), f(0, 6, 6), f(1, 3, 8), f(0, 9, 9), f(0, 11, 11), f(9, 1, 20)];
    expect(planForward(files, 4)).toEqual([f(1, 3, 8), f(0, 9, 9)]);
    expect(planForward(files, 9)).toEqual([]);
    expect(planForward(files, 4, 6)).toEqual([f(0, 5, 5), f(0, 6, 6)]);
  });
});

describe("b-tree hints", () => {
  test("parse interior pages and schema roots of a real database; garbage yields nothing", async () => {
    const writer = new ScriptedWriter(new MemoryStore(), { pageSize: 1024 });
    writer.db.exec("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX a_v ON a(v);");
    const ins = writer.db.prepare("INSERT INTO a (v) VALUES (?)");
    for (let i = 0; i < 3000; i++) ins.run(`value ${i}`.padEnd(60, "."));
    const image = writer.image();
    const page = (p: number) => image.subarray((p - 1) * 1024, p * 1024);
    const commit = image.length / 1024;
    const roots = schemaRootPages(page(1), 1, commit);
    const expected = writer.db
      .prepare("SELECT rootpage FROM sqlite_schema ORDER BY rowid")
      .pluck()
      .all() as number[];
    expect(roots).toEqual(expected);
    const root = roots[0]!;
    expect(isInteriorPage(page(root), root)).toBe(true);
    expect(page(root)[0]).toBe(PAGE_TYPE_INTERIOR_TABLE);
    const children = interiorChildren(page(root), root, commit)!;
    expect(children.length).toBeGreaterThan(1);
    for (const c of children) expect(c).toBeLessThanOrEqual(commit);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 1024 }),
        fc.integer({ min: 1, max: 5 }),
        (bytes, pgno) => {
          interiorChildren(bytes, pgno, 100);
          schemaRootPages(bytes, pgno, 100);
        },
      ),
      { numRuns: 2000 },
    );
    writer.close();
  });
});

describe("AccessTracker", () => {
  test("sequential reads open a doubling window; random reads fetch nothing extra", () => {
    const t = new AccessTracker({ maxPages: 64 });
    expect(t.onRead(10, 1000)).toEqual([]);
    expect(t.onRead(11, 1000)).toEqual([]);
    const w = t.onRead(12, 1000);
    expect(w[0]).toBe(13);
    expect(w.length).toBeGreaterThan(1);
    t.reset();
    for (const p of [500, 17, 300, 42]) expect(t.onRead(p, 1000)).toEqual([]);
  });

  test("a second consecutive child of an interior page prefetches the next siblings", () => {
    const t = new AccessTracker({ maxPages: 64 });
    const children = [90, 7, 55, 12, 300, 41, 8, 77];
    t.onInterior(2, children);
    expect(t.onRead(90, 1000)).toEqual([]);
    const next = t.onRead(7, 1000);
    expect(next.slice(0, 3)).toEqual([55, 12, 300]);
    // A point lookup elsewhere in the parent does not.
    t.reset();
    t.onInterior(2, children);
    expect(t.onRead(300, 1000)).toEqual([]);
  });
});

describe("SerialQueue", () => {
  test("runs tasks one at a time, in order, despite failures", async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const task = (name: string, fail = false) =>
      q.run(async () => {
        running++;
        expect(running).toBe(1);
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, 1));
        log.push(`end ${name}`);
        running--;
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([task("a"), task("b", true), task("c")]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    expect(q.pending).toBe(0);
  });
});

describe("PieceRanges", () => {
  test("reads ranges in any order as the joined bytes would give them (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 50 })), { maxLength: 20 }),
        fc.nat({ max: 1000 }),
        (pieces, wants, base) => {
          const joined = Uint8Array.from(pieces.flatMap((p) => [...p]));
          const ranges = new PieceRanges(pieces, base);
          for (const [start0, len] of wants) {
            if (joined.length === 0) break;
            const start = start0 % joined.length;
            const length = Math.min(len, joined.length - start);
            expect([...ranges.read(base + start, length)]).toEqual([
              ...joined.subarray(start, start + length),
            ]);
          }
        },
      ),
    );
  });

  test("a range in one piece is a view of it; one across pieces a copy; outside is an error", () => {
    const a = Uint8Array.of(1, 2, 3, 4);
    const b = Uint8Array.of(5, 6, 7);
    const ranges = new PieceRanges([a, new Uint8Array(0), b], 100);
    expect(ranges.read(105, 2).buffer).toBe(b.buffer);
    const across = ranges.read(103, 2);
    expect([...across]).toEqual([4, 5]);
    expect(across.buffer).not.toBe(a.buffer);
    expect([...ranges.read(100, 1)]).toEqual([1]);
    expect(() => ranges.read(99, 1)).toThrow(RangeError);
    expect(new PieceRanges([], 5).read(5, 0).length).toBe(0);
    expect(() => ranges.read(106, 2)).toThrow(RangeError);
  });
});

describe("TalliedStore", () => {
  test("counts a body given in pieces without joining it", async () => {
    const pieces = [new Uint8Array(3), new Uint8Array(5)];
    const result = {
      notModified: false,
      get body(): Uint8Array {
        throw new Error("the body was joined");
      },
      pieces,
      meta: { key: "k", size: 8, etag: "e", lastModified: new Date(0) },
      offset: 0,
    } as GetResult;
    const inner = { url: "memory://x", get: async () => result } as unknown as ObjectStore;
    const stats = new RequestStats();
    const store = new TalliedStore(inner, stats, "hydrate");
    expect((await store.get("k", { pieces: true })).pieces).toBe(pieces);
    expect(stats.snapshot().hydrate).toEqual({ requests: 1, bytes: 8, errors: 0 });
  });
});
