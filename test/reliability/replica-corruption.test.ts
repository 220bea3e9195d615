/**
 * Corrupted objects in storage (issue 7): wrong page numbers in frames,
 * damaged flags and size prefixes, pages that decompress to the wrong
 * length, damaged page indexes and truncated files. The replica never serves
 * a damaged page: queries touching it fail with SQLITE_IOERR (others still
 * answer), a file whose index cannot be trusted is never applied (the replica
 * stays on its last good version and says why in status), and a new snapshot
 * from the writer heals it.
 */
import { afterEach, describe, expect, test } from "vitest";
import { PagecastError } from "../../src/errors.js";
import { HEAD_OBJECT_KEY } from "../../src/layout/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import {
  type CorruptedLtx,
  corruptLtx,
  DETECTABLE_LTX_CORRUPTIONS,
  type LtxCorruption,
} from "../../src/testing/ltx-corruption.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica, type Replica, ReplicaQueryError } from "../../src/vfs/index.js";
import { primaryValues, readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";
import { SCHEMA, seedRows } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Damage that leaves the index intact (found when the page is read) vs damage found when loading the index. */
const FRAME_DAMAGE: readonly LtxCorruption[] = [
  "frame-pgno",
  "frame-flags",
  "frame-size",
  "page-length",
];

const QUERIES = [
  "SELECT id, name, age, score, bio FROM users ORDER BY id",
  "SELECT * FROM orders ORDER BY id",
  "SELECT age, count(*) FROM users GROUP BY age ORDER BY age",
  "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
];

async function setup(head = true) {
  const r = prng(31);
  const mem = new MemoryStore();
  const writer = new ScriptedWriter(mem, { head });
  cleanups.push(() => writer.close());
  await writer.commit(SCHEMA);
  await writer.commit(() => seedRows(writer.db, r, 500));
  return { mem, writer, r };
}

async function replicaOn(mem: MemoryStore): Promise<Replica> {
  const replica = await openReplica({ store: mem, wasm: readSqliteWasm, pollIntervalMs: 0 });
  cleanups.push(() => replica.close());
  return replica;
}

/** Replaces `key` in the store with a damaged copy. */
async function damage(
  mem: MemoryStore,
  key: string,
  kind: LtxCorruption,
  seed: number,
): Promise<CorruptedLtx> {
  const original = (await mem.get(key)).body!;
  const bad = corruptLtx(original, kind, prng(seed));
  if (!bad) throw new Error(`nothing to damage with ${kind} in ${key}`);
  await mem.put(key, bad.bytes);
  return bad;
}

/** Every query equals the primary at `txid` or fails with SQLITE_IOERR; returns the number of I/O errors. */
async function answersOrIoErrors(
  replica: Replica,
  writer: ScriptedWriter,
  txid: number,
  label: string,
): Promise<number> {
  const primary = writer.primaryAt(txid);
  cleanups.push(() => primary.close());
  let ioErrors = 0;
  for (const sql of [...QUERIES, "PRAGMA quick_check"]) {
    try {
      const got = await replica.values(sql);
      if (sql.startsWith("PRAGMA") && JSON.stringify(got) !== '[["ok"]]') {
        // quick_check reports unreadable pages in its result instead of failing:
        // only I/O errors (266 = SQLITE_IOERR_READ) may appear, never damage.
        for (const line of got.flat().join("\n").split("\n")) {
          expect(line, label).toMatch(/^\*\*\* in database main \*\*\*$|error code=266$/);
        }
        ioErrors++;
        continue;
      }
      expect(got, `${label}: ${sql}`).toEqual(primaryValues(primary, sql));
    } catch (err) {
      if (!(err instanceof ReplicaQueryError) || err.code !== "SQLITE_IOERR") throw err;
      expect((err.cause as PagecastError).code, label).toBe("REPLICA_PAGE_INVALID");
      ioErrors++;
    }
  }
  return ioErrors;
}

describe("corrupted objects", () => {
  for (const kind of DETECTABLE_LTX_CORRUPTIONS) {
    test(`${kind} in a new file: never served; the replica stays consistent and heals`, async () => {
      const { mem, writer } = await setup();
      const replica = await replicaOn(mem);
      const good = writer.txid;
      expect(await answersOrIoErrors(replica, writer, good, "before")).toBe(0);

      await writer.commit(
        "UPDATE users SET score = score + 1, name = name || '!' WHERE id % 4 = 0",
      );
      const bad = await damage(mem, writer.plan[writer.plan.length - 1]!.key, kind, 5);
      const label = `${kind}: ${bad.what}`;
      const pollError = await replica.poll().then(
        () => undefined,
        (e: unknown) => e,
      );
      if (FRAME_DAMAGE.includes(kind)) {
        // The index is sound: the version advances, the damaged page is never served.
        expect(pollError, label).toBeUndefined();
        expect(replica.status().txid).toBe(writer.txid);
        const ioErrors = await answersOrIoErrors(replica, writer, writer.txid, label);
        expect(ioErrors, label).toBeGreaterThan(0);
        expect(replica.status().lastError, label).toMatchObject({ code: "REPLICA_PAGE_INVALID" });
      } else {
        // The index cannot be trusted: the file is never applied.
        expect(pollError, label).toBeInstanceOf(PagecastError);
        const st = replica.status();
        expect(st.txid, label).toBe(good);
        expect(st.lastError?.code, label).toMatch(/^LTX_/);
        expect(await answersOrIoErrors(replica, writer, good, label)).toBe(0);
      }

      // The writer publishes a fresh snapshot: the replica moves past the damaged file.
      await writer.publish({ snapshot: true });
      await replica.poll();
      expect(replica.status().txid).toBe(writer.txid);
      expect(await answersOrIoErrors(replica, writer, writer.txid, `${label}, healed`)).toBe(0);
    });
  }

  test("damaged snapshot at open: a typed error, or a replica whose damaged page fails alone", async () => {
    for (const [i, kind] of DETECTABLE_LTX_CORRUPTIONS.entries()) {
      const { mem, writer } = await setup();
      const bad = await damage(mem, writer.plan[0]!.key, kind, 40 + i);
      // The snapshot alone is the plan: drop the L0 file after it.
      writer.plan = [writer.plan[0]!];
      writer.txid = writer.plan[0]!.maxTXID;
      await writer.writeHead();
      const label = `${kind}: ${bad.what}`;
      const opened = await openReplica({ store: mem, wasm: readSqliteWasm }).catch(
        (e: unknown) => e,
      );
      if (!FRAME_DAMAGE.includes(kind)) {
        expect(opened, label).toBeInstanceOf(PagecastError);
        expect((opened as PagecastError).code, label).toMatch(/^LTX_|^REPLICA_/);
        continue;
      }
      expect(opened, label).not.toBeInstanceOf(Error);
      const replica = opened as Replica;
      cleanups.push(() => replica.close());
      expect(await answersOrIoErrors(replica, writer, writer.txid, label)).toBeGreaterThan(0);
    }
  });

  test("Litestream layout (no head object): a truncated new file is never applied", async () => {
    const { mem, writer } = await setup(false);
    const replica = await replicaOn(mem);
    const good = writer.txid;
    await writer.commit("DELETE FROM users WHERE id % 3 = 0");
    await damage(mem, writer.plan[writer.plan.length - 1]!.key, "truncate", 9);
    await expect(replica.poll()).rejects.toBeInstanceOf(PagecastError);
    expect(replica.status().txid).toBe(good);
    expect(await answersOrIoErrors(replica, writer, good, "litestream truncate")).toBe(0);
  });

  test("a damaged page is not cached: once storage holds the right bytes again, it is served", async () => {
    const { mem, writer } = await setup();
    const replica = await replicaOn(mem);
    await writer.commit("UPDATE users SET bio = 'changed' WHERE id < 50");
    const key = writer.plan[writer.plan.length - 1]!.key;
    const original = (await mem.get(key)).body!;
    // Same layout as the original: only page headers are damaged.
    await damage(mem, key, "frame-flags", 3);
    await replica.poll();
    expect(await answersOrIoErrors(replica, writer, writer.txid, "damaged")).toBeGreaterThan(0);
    await mem.put(key, original);
    expect(await answersOrIoErrors(replica, writer, writer.txid, "restored")).toBe(0);
  });

  /*
   * KNOWN LIMITATION (LTX v3 format, confirmed): a page-by-page reader cannot
   * detect (1) a bit flip inside a frame's compressed bytes (no per-page
   * checksum; only the whole-file checksum covers it) nor (2) an index entry
   * whose page number is changed to another absent page while staying
   * ascending (the renamed page silently falls back to its previous image).
   * Both make the replica answer WRONG without an error. Reproduction kept
   * skipped; enable it once the writer publishes page or index checksums the
   * reader verifies.
   */
  test.skip("KNOWN LIMITATION: payload bit flips and renamed index entries are served silently", async () => {
    for (const kind of ["payload", "index-pgno"] as const) {
      const { mem, writer } = await setup();
      await writer.commit("UPDATE users SET score = score + 1 WHERE id % 3 = 0");
      await damage(mem, writer.plan[writer.plan.length - 1]!.key, kind, 5);
      const replica = await replicaOn(mem);
      expect(await answersOrIoErrors(replica, writer, writer.txid, kind)).toBeGreaterThan(0);
    }
  });

  /*
   * A head (or LTX header) page count is never trusted to size memory: a
   * claim beyond SQLite's limit or beyond the pages the files hold fails
   * with a typed error (REPLICA_INDEX_INVALID).
   */
  test("a head claiming a 4-billion-page database fails with a typed error", async () => {
    for (const commit of [0xffffffff, 0x3fffffff]) {
      const { mem } = await setup();
      const head = JSON.parse(new TextDecoder().decode((await mem.get(HEAD_OBJECT_KEY)).body!));
      head.commit = commit;
      await mem.put(HEAD_OBJECT_KEY, new TextEncoder().encode(JSON.stringify(head)));
      const err = await openReplica({ store: mem, wasm: readSqliteWasm }).catch((e: unknown) => e);
      expect(err, String(commit)).toBeInstanceOf(PagecastError);
      // Within the head schema's range: refused by the index, not by the head reader.
      if (commit === 0x3fffffff) expect(err).toMatchObject({ code: "REPLICA_INDEX_INVALID" });
    }
  });
});
