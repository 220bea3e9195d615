/**
 * Real SQLite databases (better-sqlite3) through LTX: a snapshot plus incremental
 * files built from page diffs must rebuild byte-identical database files that pass
 * PRAGMA integrity_check.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import {
  databaseChecksum,
  decodeLtx,
  encodeLtx,
  LtxApplier,
  lockPgno,
} from "../../src/format/index.js";
import { BufferTarget, firstDifference, prng, randomChunks } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "pagecast-format-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pagesOf(img: Uint8Array, pageSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < img.length; off += pageSize) out.push(img.subarray(off, off + pageSize));
  return out;
}

function ltxFor(
  before: Uint8Array | undefined,
  after: Uint8Array,
  pageSize: number,
  minTXID: number,
  maxTXID: number,
) {
  const lock = lockPgno(pageSize);
  const old = before ? pagesOf(before, pageSize) : [];
  const pages = pagesOf(after, pageSize)
    .map((data, i) => ({ pgno: i + 1, data }))
    .filter((p) => p.pgno !== lock)
    .filter(
      (p) =>
        !before ||
        old[p.pgno - 1] === undefined ||
        firstDifference(old[p.pgno - 1]!, p.data) !== -1,
    );
  return {
    file: encodeLtx({
      header: {
        pageSize,
        commit: after.length / pageSize,
        minTXID,
        maxTXID,
        timestamp: Date.now(),
        preApplyChecksum: before ? databaseChecksum(before, pageSize) : 0n,
      },
      pages,
      postApplyChecksum: databaseChecksum(after, pageSize),
    }),
    count: pages.length,
  };
}

function integrity(img: Uint8Array, name: string): { check: string; rows: number } {
  const path = join(dir, name);
  writeFileSync(path, img);
  const db = new Database(path, { readonly: true });
  try {
    const check = db.pragma("integrity_check", { simple: true }) as string;
    const rows = (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n;
    return { check, rows };
  } finally {
    db.close();
  }
}

describe.each([512, 4096, 65536])("SQLite interop, page size %i", (pageSize) => {
  test("snapshot + incrementals rebuild a byte-identical, valid database", async () => {
    const path = join(dir, `src-${pageSize}.db`);
    const db = new Database(path);
    db.pragma(`page_size = ${pageSize}`);
    db.pragma("journal_mode = DELETE");
    db.exec(
      "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, body BLOB); CREATE INDEX t_name ON t(name);",
    );
    const rand = prng(pageSize);
    const insert = db.prepare("INSERT INTO t(name, body) VALUES (?, ?)");
    const fill = (n: number) =>
      db.transaction(() => {
        for (let i = 0; i < n; i++) {
          const body = Buffer.alloc(Math.floor(rand() * 3000), Math.floor(rand() * 256));
          insert.run(`name-${Math.floor(rand() * 1e6)}`, body);
        }
      })();
    fill(300);
    const img1 = new Uint8Array(readFileSync(path));

    db.prepare("UPDATE t SET name = 'changed' WHERE id % 7 = 0").run();
    fill(150);
    const img2 = new Uint8Array(readFileSync(path));

    db.prepare("DELETE FROM t WHERE id % 3 = 0").run();
    db.exec("VACUUM");
    const img3 = new Uint8Array(readFileSync(path));
    const rowsAtEnd = (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n;
    db.close();
    expect(img3.length).toBeLessThan(img2.length);

    const s = ltxFor(undefined, img1, pageSize, 1, 3);
    const i1 = ltxFor(img1, img2, pageSize, 4, 4);
    const i2 = ltxFor(img2, img3, pageSize, 5, 8);
    expect(i1.count).toBeLessThan(img2.length / pageSize + 1);
    expect(decodeLtx(s.file).header.commit).toBe(img1.length / pageSize);

    const target = new BufferTarget();
    const applier = new LtxApplier(target);
    const chunked = (f: Uint8Array) => randomChunks(f, prng(f.length), 4096);
    await applier.apply(chunked(s.file));
    expect(firstDifference(target.bytes(), img1)).toBe(-1);
    expect(integrity(target.bytes(), `r1-${pageSize}.db`).check).toBe("ok");
    await applier.apply(chunked(i1.file));
    expect(firstDifference(target.bytes(), img2)).toBe(-1);
    await applier.apply(chunked(i2.file));
    expect(firstDifference(target.bytes(), img3)).toBe(-1);
    expect(applier.position).toEqual({
      txid: 8,
      pageSize,
      commit: img3.length / pageSize,
      checksum: databaseChecksum(img3, pageSize),
    });
    expect(integrity(target.bytes(), `r3-${pageSize}.db`)).toEqual({
      check: "ok",
      rows: rowsAtEnd,
    });
  });
});
