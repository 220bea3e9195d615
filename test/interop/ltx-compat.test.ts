/**
 * `ltxCompat: "0.5.1"`: LTX files whose pages are LZ4 frames, the only page
 * encoding ltx v0.5.1 (Litestream 0.5.0-0.5.15) reads. Checked with a reader
 * written from the specifications (`ltx-v051-reader.ts`, sharing no code with
 * pagecast's format module), which first proves itself on the reference
 * fixtures: it accepts what ltx v0.5.1 wrote (D-s3-legacyframe) and refuses
 * what ltx v0.5.2 wrote with v0.5.1's own message. Every pagecast producer
 * (snapshot builder, capture buffer, compactor merge, skeleton, `ltx encode`)
 * takes the setting; the default stays the LZ4-block encoding.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import {
  DatabaseChecksum,
  decodeLtx,
  encodeLtx,
  LtxEncoder,
  LtxError,
  type LtxHeaderInit,
  lockPgno,
  ltxKey,
  resolveLtxCompat,
} from "../../src/format/index.js";
import { MemoryStore } from "../../src/index.js";
import { CaptureBuffer } from "../../src/replicator/capture-buffer.js";
import { mergeLtxFiles } from "../../src/replicator/compactor.js";
import { restore } from "../../src/replicator/restore.js";
import { SkeletonCollector } from "../../src/replicator/skeleton.js";
import { buildSnapshot } from "../../src/replicator/snapshotter.js";
import type { WalSegment } from "../../src/replicator/wal-reader.js";
import { tempDir } from "../replicator/helpers.js";
import { fixtureReplicas, fixtureState, REPO_ROOT } from "./fixtures.js";
import { decodeV051, readLz4Frame, V051Error } from "./ltx-v051-reader.js";

const tmp = tempDir("pagecast-compat-");
afterAll(() => tmp.cleanup());

/** Byte equality without vitest's element-by-element diffing (slow on 64 KiB pages). */
function same(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.compare(a, b) === 0;
}

function v051Problem(bytes: Uint8Array): string | undefined {
  try {
    decodeV051(bytes);
    return undefined;
  } catch (err) {
    if (err instanceof V051Error) return err.message;
    throw err;
  }
}

/** Pages of varied compressibility, including incompressible ones (stored LZ4 blocks). */
function pageContent(pgno: number, pageSize: number, kind: number): Uint8Array {
  switch (kind % 4) {
    case 0:
      return new Uint8Array(randomBytes(pageSize));
    case 1:
      return new Uint8Array(pageSize);
    case 2: {
      const text = new TextEncoder().encode(`page ${pgno} row data, `.repeat(pageSize));
      return text.slice(0, pageSize);
    }
    default: {
      const page = new Uint8Array(pageSize);
      page.set(randomBytes(pageSize >>> 3), pageSize >>> 1);
      return page;
    }
  }
}

describe("the spec-written v0.5.1 reader behaves like ltx v0.5.1 on the reference fixtures", () => {
  const replicas = fixtureReplicas();

  test("it reads every file ltx v0.5.1 wrote, with the pages pagecast's decoder sees", () => {
    const legacy = replicas.find((r) => r.name.startsWith("D-"))!;
    expect(legacy.files.length).toBeGreaterThan(0);
    for (const f of legacy.files) {
      const bytes = readFileSync(f.path);
      const spec = decodeV051(bytes);
      const ours = decodeLtx(bytes);
      expect(spec.header.minTXID).toBe(f.minTXID);
      expect(spec.header.maxTXID).toBe(f.maxTXID);
      expect(spec.fileChecksum).toBe(ours.trailer.fileChecksum);
      expect(ours.pages.map((p) => p.pgno)).toEqual([...spec.pages.keys()]);
      for (const p of ours.pages) expect(same(spec.pages.get(p.pgno), p.data)).toBe(true);
    }
  });

  test("it refuses ltx v0.5.2's LZ4-block pages the way v0.5.1 does", () => {
    for (const r of replicas.filter((x) => !x.name.startsWith("D-"))) {
      for (const f of r.files) {
        expect(v051Problem(readFileSync(f.path)), f.path).toBe(
          "decode page 0: no flags allowed, reserved for future use",
        );
      }
    }
  });
});

describe('LtxEncoder with compat "0.5.1"', () => {
  test("pages become LZ4 frames that the v0.5.1 reader and pagecast's decoder both read", () => {
    for (const pageSize of [512, 4096, 65536]) {
      const commit = pageSize === 512 ? 40 : 12;
      const pages = Array.from({ length: commit }, (_, i) => ({
        pgno: i + 1,
        data: pageContent(i + 1, pageSize, i),
      }));
      for (const snapshot of [true, false]) {
        const header: LtxHeaderInit = snapshot
          ? { pageSize, commit, minTXID: 1, maxTXID: 3, timestamp: 1_700_000_000_123 }
          : { pageSize, commit, minTXID: 4, maxTXID: 4, flags: 2, timestamp: 1_700_000_000_456 };
        const chosen = snapshot ? pages : pages.filter((p) => p.pgno % 3 !== 0);
        const sum = new DatabaseChecksum();
        for (const p of chosen) sum.add(p.pgno, p.data);
        const postApplyChecksum = snapshot ? sum.value : 0n;
        const compat = encodeLtx({ header, pages: chosen, postApplyChecksum, compat: "0.5.1" });
        const spec = decodeV051(compat);
        expect([...spec.pages.keys()]).toEqual(chosen.map((p) => p.pgno));
        for (const p of chosen) expect(same(spec.pages.get(p.pgno), p.data)).toBe(true);
        expect(spec.header.timestamp).toBe(header.timestamp);
        const ours = decodeLtx(compat);
        expect(ours.trailer.postApplyChecksum).toBe(postApplyChecksum);
        expect(ours.trailer.fileChecksum).toBe(spec.fileChecksum);
        // The default stays the LZ4-block encoding, which v0.5.1 refuses.
        const current = encodeLtx({ header, pages: chosen, postApplyChecksum });
        expect(v051Problem(current)).toMatch(/no flags allowed/);
        const decoded = decodeLtx(current).pages;
        expect(decoded.every((p, i) => same(p.data, chosen[i]!.data))).toBe(true);
      }
    }
  });

  test("frames carry the descriptor ltx v0.5.1 writes; incompressible pages are stored blocks", () => {
    const enc = new LtxEncoder(
      { pageSize: 4096, commit: 2, minTXID: 2, maxTXID: 2, flags: 2 },
      { compat: "0.5.1" },
    );
    expect(enc.compat).toBe("0.5.1");
    enc.headerBytes();
    const random = new Uint8Array(randomBytes(4096));
    const frame = enc.encodePage(2, random);
    // Page header: pgno 2, flags 0; then magic, FLG 0x64, BD 0x40 and the
    // descriptor checksum, exactly as in the v0.5.1 fixture files.
    expect([...frame.subarray(0, 13)]).toEqual([
      0, 0, 0, 2, 0, 0, 0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7,
    ]);
    const legacy = readFileSync(
      fixtureReplicas().find((r) => r.name.startsWith("D-"))!.files[1]!.path,
    );
    expect([...legacy.subarray(106, 113)]).toEqual([...frame.subarray(6, 13)]);
    // Stored block: size with the high bit set, then the page as is.
    expect(frame[16]! & 0x80).toBe(0x80);
    const { data, end } = readLz4Frame(frame, 6, 4096);
    expect(same(data, random)).toBe(true);
    expect(end).toBe(frame.length);
  });

  test("invalid compat values are refused with the valid ones named", () => {
    expect(resolveLtxCompat(undefined)).toBe("0.5.2");
    expect(resolveLtxCompat("0.5.1")).toBe("0.5.1");
    for (const bad of ["0.5", "v0.5.1", "", 51, null]) {
      expect(() => resolveLtxCompat(bad)).toThrow(/expected one of 0\.5\.1, 0\.5\.2/);
      expect(
        () =>
          new LtxEncoder(
            { pageSize: 512, commit: 1, minTXID: 1, maxTXID: 1 },
            { compat: bad as "0.5.1" },
          ),
      ).toThrow(LtxError);
    }
  });

  test("a replica re-encoded page for page in the 0.5.1 encoding restores byte for byte", async () => {
    const source = fixtureReplicas().find((r) => r.name.startsWith("A-"))!;
    const store = new MemoryStore({ name: `compat-${Math.random().toString(36).slice(2)}` });
    const legacy = fixtureReplicas().find((r) => r.name.startsWith("D-"))!;
    for (const f of source.files) {
      const d = decodeLtx(readFileSync(f.path));
      const bytes = encodeLtx({
        header: d.header,
        pages: d.pages,
        postApplyChecksum: d.trailer.postApplyChecksum,
        compat: "0.5.1",
      });
      const spec = decodeV051(bytes);
      // The same pages ltx v0.5.1 itself wrote for this file.
      const reference = legacy.files.find(
        (x) => x.level === f.level && x.minTXID === f.minTXID && x.maxTXID === f.maxTXID,
      )!;
      const referencePages = decodeV051(readFileSync(reference.path)).pages;
      expect([...spec.pages.keys()]).toEqual([...referencePages.keys()]);
      for (const [pgno, page] of spec.pages)
        expect(same(page, referencePages.get(pgno))).toBe(true);
      await store.put(ltxKey(f.level, f.minTXID, f.maxTXID), bytes);
    }
    const out = join(tmp.dir, "reencoded.db");
    const result = await restore(store, out);
    expect(result.txid).toBe(6);
    expect(same(readFileSync(out), fixtureState(6))).toBe(true);
    await store.close();
  });
});

describe("every LTX producer takes the compat setting", () => {
  function makeDb(): { path: string; pageSize: number; commit: number } {
    const path = join(tmp.dir, `producers-${Math.random().toString(36).slice(2)}.db`);
    const db = new Database(path);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB); CREATE INDEX t_v ON t (v)");
    const insert = db.prepare("INSERT INTO t (v, b) VALUES (?, ?)");
    db.transaction(() => {
      for (let i = 0; i < 600; i++) insert.run(`value ${i} `.repeat(1 + (i % 7)), randomBytes(200));
    })();
    db.close();
    const size = readFileSync(path).length;
    return { path, pageSize: 4096, commit: size / 4096 };
  }

  test("snapshot builder, skeleton, capture buffer and compactor merge", async () => {
    const { path, pageSize, commit } = makeDb();
    const fileBytes = new Uint8Array(readFileSync(path));
    const pageOf = (pgno: number) => fileBytes.subarray((pgno - 1) * pageSize, pgno * pageSize);
    for (const compat of ["0.5.1", undefined] as const) {
      const fd = openSync(path, "r");
      let snapshot: Uint8Array;
      let skeleton: Uint8Array;
      try {
        expect(fstatSync(fd).size).toBe(commit * pageSize);
        const collector = new SkeletonCollector({
          pageSize,
          commit,
          txid: 3,
          timestamp: 1000,
          ...(compat ? { compat } : {}),
        });
        const enc = await buildSnapshot({
          db: fd,
          wal: undefined,
          walPages: new Map(),
          salts: { salt1: 0, salt2: 0 },
          pageSize,
          commit,
          txid: 3,
          timestamp: 1000,
          walOffset: 0,
          walSize: 0,
          onPage: (pgno, page) => collector.add(pgno, page),
          ...(compat ? { compat } : {}),
        });
        snapshot = enc.bytes;
        skeleton = collector.finish()!.enc.bytes;
      } finally {
        closeSync(fd);
      }
      const buffer = new CaptureBuffer();
      const changed = new Map([2, 3, 5].map((pgno) => [pgno, pageContent(pgno, pageSize, pgno)]));
      buffer.add(
        {
          segment: {
            startOffset: 32,
            end: { salt1: 1, salt2: 2, offset: 32 + 3 * (pageSize + 24) },
            commit,
            transactions: 1,
            pages: new Map(),
          } as unknown as WalSegment,
          prevCommit: commit,
          pages: changed,
        },
        2000,
      );
      const l0 = buffer.encode({ pageSize, txid: 4, ...(compat ? { compat } : {}) }).bytes;
      const merged = mergeLtxFiles([snapshot, l0], compat ? { compat } : {}).bytes;
      const outputs = { snapshot, skeleton, l0, merged };
      for (const [name, bytes] of Object.entries(outputs)) {
        if (compat !== "0.5.1") {
          expect(v051Problem(bytes), name).toMatch(/no flags allowed/);
          continue;
        }
        const spec = decodeV051(bytes);
        for (const [pgno, page] of spec.pages) {
          const expected = name === "snapshot" || name === "skeleton" ? pageOf(pgno) : undefined;
          const latest = changed.get(pgno) ?? pageOf(pgno);
          expect(same(page, expected ?? latest), `${name} page ${pgno}`).toBe(true);
        }
        if (name === "merged")
          expect(spec.pages.size).toBe(commit - (lockPgno(pageSize) <= commit ? 1 : 0));
      }
      // A skeleton's frames match the snapshot's frame for frame (readers rely on it).
      const snapFrames = new Map(decodeLtx(snapshot).pageIndex.map((e) => [e.pgno, e.size]));
      for (const e of decodeLtx(skeleton).pageIndex) expect(e.size).toBe(snapFrames.get(e.pgno));
    }
  });

  test("pagecast ltx encode --ltx-compat 0.5.1 (as a process), then ltx verify", async () => {
    const bin = join(REPO_ROOT, "bin", "pagecast.js");
    expect(existsSync(join(REPO_ROOT, "dist", "cli", "main.js")), "run npm run build first").toBe(
      true,
    );
    const run = (args: string[]) => promisify(execFile)(process.execPath, [bin, ...args]);
    const { path, pageSize } = makeDb();
    const compat = join(tmp.dir, "compat.ltx");
    const current = join(tmp.dir, "current.ltx");
    await run(["ltx", "encode", path, compat, "--txid", "5", "--ltx-compat", "0.5.1"]);
    await run(["ltx", "encode", path, current, "--txid", "5"]);
    const spec = decodeV051(readFileSync(compat));
    const db = new Uint8Array(readFileSync(path));
    expect(spec.header.maxTXID).toBe(5);
    for (const [pgno, page] of spec.pages) {
      expect(same(page, db.subarray((pgno - 1) * pageSize, pgno * pageSize))).toBe(true);
    }
    expect(v051Problem(readFileSync(current))).toMatch(/no flags allowed/);
    const verified = await run(["ltx", "verify", compat, current]);
    expect(verified.stdout).toMatch(/^ok .*compat\.ltx/m);
    expect(verified.stdout).toMatch(/^ok .*current\.ltx/m);
    const bad = await run([
      "ltx",
      "encode",
      path,
      join(tmp.dir, "x.ltx"),
      "--ltx-compat",
      "0.4",
    ]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toContain("--ltx-compat");
  });
});

// The reference lz4 tool, where installed, agrees that the page payloads are valid LZ4 frames.
const lz4Cli = spawnSync("lz4", ["--version"], { stdio: "ignore" }).status === 0;

describe.skipIf(!lz4Cli)("the lz4 command line decodes compat page frames", () => {
  test("frames of compressible and incompressible pages", () => {
    for (const kind of [0, 1, 2, 3]) {
      const page = pageContent(7, 4096, kind);
      const file = encodeLtx({
        header: { pageSize: 4096, commit: 7, minTXID: 2, maxTXID: 2, flags: 2 },
        pages: [{ pgno: 7, data: page }],
        postApplyChecksum: 0n,
        compat: "0.5.1",
      });
      const entry = decodeLtx(file).pageIndex[0]!;
      const frame = file.subarray(entry.offset + 6, entry.offset + entry.size);
      const out = spawnSync("lz4", ["-d", "-c"], { input: frame });
      expect(out.status).toBe(0);
      expect(same(out.stdout, page)).toBe(true);
    }
  });
});
