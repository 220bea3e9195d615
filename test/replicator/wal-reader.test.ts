/**
 * WAL reader: header parsing and checksums in both byte orders, committed
 * frames only, stops at salt changes, broken checksums and torn frames.
 */
import { closeSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, test } from "vitest";
import { ReplicatorError } from "../../src/replicator/replicator-error.js";
import {
  initialCursor,
  parseWalHeader,
  readCommittedFrames,
  readWalHeader,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  walChecksum,
} from "../../src/replicator/wal-reader.js";
import { tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const PS = 512;

/** Builds a WAL image: frames are [pgno, commitSize, fill byte]. */
function buildWal(
  bigEndian: boolean,
  salts: [number, number],
  frames: [number, number, number][],
): Uint8Array {
  const out = new Uint8Array(WAL_HEADER_SIZE + frames.length * (WAL_FRAME_HEADER_SIZE + PS));
  const v = new DataView(out.buffer);
  v.setUint32(0, bigEndian ? 0x377f0683 : 0x377f0682);
  v.setUint32(4, 3007000);
  v.setUint32(8, PS);
  v.setUint32(12, 0);
  v.setUint32(16, salts[0]);
  v.setUint32(20, salts[1]);
  let [s1, s2] = walChecksum(out.subarray(0, 24), bigEndian, 0, 0);
  v.setUint32(24, s1);
  v.setUint32(28, s2);
  frames.forEach(([pgno, commit, fill], i) => {
    const base = WAL_HEADER_SIZE + i * (WAL_FRAME_HEADER_SIZE + PS);
    v.setUint32(base, pgno);
    v.setUint32(base + 4, commit);
    v.setUint32(base + 8, salts[0]);
    v.setUint32(base + 12, salts[1]);
    out.fill(fill, base + WAL_FRAME_HEADER_SIZE, base + WAL_FRAME_HEADER_SIZE + PS);
    [s1, s2] = walChecksum(out.subarray(base, base + 8), bigEndian, s1, s2);
    [s1, s2] = walChecksum(
      out.subarray(base + WAL_FRAME_HEADER_SIZE, base + WAL_FRAME_HEADER_SIZE + PS),
      bigEndian,
      s1,
      s2,
    );
    v.setUint32(base + 16, s1);
    v.setUint32(base + 20, s2);
  });
  return out;
}

async function scan(bytes: Uint8Array) {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const path = join(dir, "x-wal");
  await writeFile(path, bytes);
  const fh = openSync(path, "r");
  cleanups.push(() => closeSync(fh));
  const header = readWalHeader(fh);
  if (!header) return undefined;
  return readCommittedFrames(fh, header, initialCursor(header), { chunkSize: 3 * (PS + 24) });
}

describe("WAL reader", () => {
  test.each([false, true])("committed frames only (big-endian checksums: %s)", async (be) => {
    const wal = buildWal(
      be,
      [11, 22],
      [
        [1, 0, 1],
        [2, 0, 2],
        [1, 3, 3], // commit: db size 3
        [3, 0, 4],
        [4, 5, 5], // commit: db size 5
        [5, 0, 6], // uncommitted tail
      ],
    );
    const seg = (await scan(wal))!;
    expect(seg.transactions).toBe(2);
    expect(seg.commit).toBe(5);
    expect([...seg.pages.entries()].sort((a, b) => a[0] - b[0])).toEqual([
      [1, WAL_HEADER_SIZE + 2 * (PS + 24)],
      [2, WAL_HEADER_SIZE + 1 * (PS + 24)],
      [3, WAL_HEADER_SIZE + 3 * (PS + 24)],
      [4, WAL_HEADER_SIZE + 4 * (PS + 24)],
    ]);
    expect(seg.end.offset).toBe(WAL_HEADER_SIZE + 5 * (PS + 24));
  });

  test("stops at a broken checksum, a foreign salt, or a torn frame", async () => {
    const frames: [number, number, number][] = [
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ];
    const good = buildWal(false, [5, 6], frames);
    const corrupt = good.slice();
    const at = WAL_HEADER_SIZE + (PS + 24) + 100; // second frame's page data
    corrupt[at] = corrupt[at]! ^ 1;
    expect((await scan(corrupt))!.commit).toBe(1);
    const foreign = good.slice();
    new DataView(foreign.buffer).setUint32(WAL_HEADER_SIZE + 2 * (PS + 24) + 8, 999);
    expect((await scan(foreign))!.commit).toBe(2);
    const torn = good.slice(0, good.length - 10);
    expect((await scan(torn))!.commit).toBe(2);
    // Stale frames of an older, longer WAL (other salts) after the end are ignored.
    const older = buildWal(false, [1, 1], [...frames, [4, 4, 4], [5, 5, 5]]);
    const mixed = older.slice();
    mixed.set(buildWal(false, [5, 6], frames.slice(0, 2)));
    expect((await scan(mixed))!.commit).toBe(2);
  });

  test("walChecksum: the word-load path equals the byte-order reference at any alignment", () => {
    const reference = (data: Uint8Array, be: boolean, s1: number, s2: number) => {
      for (let i = 0; i < data.length; i += 8) {
        const w = (j: number) =>
          be
            ? ((data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!) >>> 0
            : ((data[j + 3]! << 24) | (data[j + 2]! << 16) | (data[j + 1]! << 8) | data[j]!) >>> 0;
        s1 = (s1 + w(i) + s2) >>> 0;
        s2 = (s2 + w(i + 4) + s1) >>> 0;
      }
      return [s1, s2];
    };
    const backing = new Uint8Array(4096 + 16).map((_, i) => (i * 167 + (i >>> 5)) & 0xff);
    for (const be of [false, true]) {
      for (const shift of [0, 1, 2, 4, 8]) {
        for (const len of [8, 64, 4096]) {
          const data = backing.subarray(shift, shift + len);
          const seeds: [number, number][] = [
            [0, 0],
            [0xffffffff, 0x80000001],
          ];
          for (const [a, b] of seeds) {
            expect(walChecksum(data, be, a, b)).toEqual(reference(data, be, a, b));
          }
        }
      }
    }
  });

  test("header validation", () => {
    const wal = buildWal(true, [1, 2], []);
    expect(parseWalHeader(wal).bigEndianChecksum).toBe(true);
    const bad = wal.slice();
    bad[27] = bad[27]! ^ 1;
    expect(() => parseWalHeader(bad)).toThrow(ReplicatorError);
    const magic = wal.slice();
    magic[3] = 0x84;
    expect(() => parseWalHeader(magic)).toThrow(/magic/);
    const ps = wal.slice();
    new DataView(ps.buffer).setUint32(8, 1000);
    expect(() => parseWalHeader(ps)).toThrow(/page size/);
  });

  test("reads a real SQLite WAL and resumes from a cursor", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "real.db");
    const db = new Database(dbPath);
    cleanups.push(() => db.close());
    db.pragma("journal_mode = wal");
    db.pragma("wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (x)");
    for (let i = 0; i < 10; i++) db.prepare("INSERT INTO t VALUES (?)").run("x".repeat(3000));
    const fh = openSync(`${dbPath}-wal`, "r");
    cleanups.push(() => closeSync(fh));
    const header = readWalHeader(fh)!;
    const first = readCommittedFrames(fh, header, initialCursor(header));
    expect(first.transactions).toBe(11);
    const pages = Number(db.pragma("page_count", { simple: true }));
    expect(first.commit).toBe(pages);
    db.prepare("INSERT INTO t VALUES (1)").run();
    const second = readCommittedFrames(fh, header, first.end);
    expect(second.transactions).toBe(1);
    expect(second.startOffset).toBe(first.end.offset);
    const raw = await readFile(`${dbPath}-wal`);
    expect(second.end.offset).toBe(raw.length);
  });
});
