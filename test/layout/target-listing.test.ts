/**
 * planTarget: plans for TXID, time and latest targets equal those of a full
 * listing (files and errors), with and without a head object; and the round
 * trips it takes do not grow with the history's length (a long history in
 * small LIST pages would take several sequential pages per level otherwise).
 */
import { describe, expect, test } from "vitest";
import {
  HEADER_FLAG_NO_CHECKSUM,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  LtxEncoder,
} from "../../src/format/index.js";
import {
  HEAD_OBJECT_KEY,
  type HeadFile,
  listAllLevels,
  planRestoreWithTimes,
  planTarget,
  type RestoreTarget,
  readUsableHead,
  serializeHeadObject,
} from "../../src/layout/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { ListOptions, ListPage } from "../../src/storage/object-store.js";
import { RecordingStore } from "../vfs/helpers.js";

const T0 = 1_700_000_000_000;
const PAGE = 512;
const COMMIT = 4;
/** Compaction spans (TXIDs per file) of levels 1-3, as Litestream's 30 s / 5 min / 1 h at 1 tx/s, scaled. */
const SPANS: [number, number][] = [
  [1, 5],
  [2, 25],
  [3, 125],
];
const TAIL_L0 = 7;

const timeOf = (txid: number) => T0 + txid * 1000;

/** LIST pages of at most `pageSize` keys: a long history in few files. */
class SmallPages extends RecordingStore {
  constructor(
    inner: MemoryStore,
    readonly pageSize: number,
  ) {
    super(inner);
  }
  override list(options?: ListOptions): Promise<ListPage> {
    return super.list({ ...options, maxKeys: this.pageSize });
  }
}

function encode(level: number, min: number, max: number): { bytes: Uint8Array; head: HeadFile } {
  const enc = new LtxEncoder({
    pageSize: PAGE,
    commit: COMMIT,
    minTXID: min,
    maxTXID: max,
    timestamp: timeOf(max),
    flags: HEADER_FLAG_NO_CHECKSUM,
    preApplyChecksum: 0n,
  });
  const parts = [enc.headerBytes()];
  const pages = min === 1 ? [1, 2, 3, 4] : [1 + (max % COMMIT)];
  for (const p of pages) parts.push(enc.encodePage(p, new Uint8Array(PAGE).fill(max & 0xff)));
  const before = enc.bytesWritten;
  parts.push(enc.finish(0n));
  const bytes = new Uint8Array(enc.bytesWritten);
  let off = 0;
  for (const part of parts) {
    bytes.set(part, off);
    off += part.length;
  }
  const indexOffset = before + LTX_PAGE_HEADER_SIZE;
  const key = `${level.toString(16).padStart(4, "0")}/${min.toString(16).padStart(16, "0")}-${max.toString(16).padStart(16, "0")}.ltx`;
  return {
    bytes,
    head: {
      level,
      minTXID: min,
      maxTXID: max,
      key,
      size: bytes.length,
      indexOffset,
      indexSize: bytes.length - LTX_TRAILER_SIZE - indexOffset,
      timestamp: timeOf(max),
    },
  };
}

/**
 * `periods` compaction periods of level 3 after a snapshot at TXID 1, level-0
 * files only for the last few TXIDs (older ones compacted away); a head
 * naming the latest plan unless `head` is false. Returns the newest TXID.
 */
async function writeHistory(store: MemoryStore, periods: number, head = true): Promise<number> {
  const last = 1 + periods * 125;
  const files: HeadFile[] = [];
  const put = async (level: number, min: number, max: number) => {
    const { bytes, head: h } = encode(level, min, max);
    await store.put(h.key, bytes);
    files.push(h);
  };
  await put(9, 1, 1);
  for (const [level, span] of SPANS) {
    for (let a = 2; a <= last; a += span) await put(level, a, a + span - 1);
  }
  for (let t = last + 1; t <= last + TAIL_L0; t++) await put(0, t, t);
  const newest = last + TAIL_L0;
  if (head) {
    const all = await listAllLevels(store);
    const plan = await planRestoreWithTimes(store, all);
    const byKey = new Map(files.map((f) => [f.key, f]));
    await store.put(
      HEAD_OBJECT_KEY,
      serializeHeadObject({
        format: "pagecast-head",
        version: 1,
        writerId: "test",
        generation: "g1",
        txid: newest,
        timestamp: timeOf(newest),
        pageSize: PAGE,
        commit: COMMIT,
        postApplyChecksum: null,
        files: plan.files.map((f) => byKey.get(f.key)!),
      }),
    );
  }
  return newest;
}

function describePlan(p: { files: { key: string }[]; txid: number; timestamp: number }) {
  return { keys: p.files.map((f) => f.key), txid: p.txid, timestamp: p.timestamp };
}

/** What restore planned before: the whole listing, with the head's commit times. */
async function fullPlan(store: MemoryStore, target: RestoreTarget | undefined) {
  try {
    const head = await readUsableHead(store);
    const times = new Map(head?.files.map((f) => [f.key, f.timestamp]) ?? []);
    const files = (await listAllLevels(store)).map((f) => {
      const t = times.get(f.key);
      return t === undefined ? f : { ...f, timestamp: t };
    });
    return describePlan(await planRestoreWithTimes(store, files, target));
  } catch (err) {
    return { error: (err as { code?: string }).code };
  }
}

async function boundedPlan(store: SmallPages, target: RestoreTarget | undefined) {
  try {
    const plan = await planTarget(store, target);
    return { ...describePlan(plan), listing: plan.listing };
  } catch (err) {
    return { error: (err as { code?: string }).code };
  }
}

describe("planTarget", () => {
  test("plans equal a full listing's for TXID, time and latest targets, with and without a head", async () => {
    for (const withHead of [true, false]) {
      const inner = new MemoryStore();
      const newest = await writeHistory(inner, 6, withHead);
      const store = new SmallPages(inner, 40);
      const targets: (RestoreTarget | undefined)[] = [undefined];
      for (const txid of [
        1,
        2,
        6,
        7,
        26,
        27,
        126,
        127,
        300,
        376,
        377,
        700,
        751,
        newest - 1,
        newest,
      ]) {
        targets.push({ txid });
        targets.push({ timestamp: timeOf(txid) });
        targets.push({ timestamp: timeOf(txid) + 500 });
      }
      // Errors: before the snapshot, beyond the newest, inside a compacted file only.
      targets.push({ txid: newest + 1 }, { timestamp: T0 }, { txid: 3 });
      for (const target of targets) {
        const want = await fullPlan(inner, target);
        const got = await boundedPlan(store, target);
        const { listing: _listing, ...plan } = got as { listing?: string };
        expect(plan, `${withHead ? "head" : "no head"} ${JSON.stringify(target)}`).toEqual(want);
      }
    }
  });

  test("a file deleted between the listing and the read of its header (retention) is planned around, not an error", async () => {
    // No head: planning a time reads the snapshots' headers for their commit times.
    const inner = new MemoryStore();
    const newest = await writeHistory(inner, 1, false);
    const snapshot = encode(9, 1, newest);
    await inner.put(snapshot.head.key, snapshot.bytes);
    const oldest = encode(9, 1, 1).head.key;
    const store = new RecordingStore(inner);
    let deleted = false;
    store.beforeGet = async (key) => {
      if (!deleted && key === oldest) {
        deleted = true;
        await inner.deleteMany([key]);
      }
    };
    const plan = await planTarget(store, { timestamp: timeOf(newest) });
    expect(deleted).toBe(true);
    expect(plan.txid).toBe(newest);
    expect(plan.files[0]!.key).toBe(snapshot.head.key);
  });

  test("with a head: the same round trips after a short and a long history", async () => {
    const depths: number[] = [];
    const lists: number[] = [];
    for (const periods of [2, 24]) {
      const inner = new MemoryStore();
      const newest = await writeHistory(inner, periods);
      // 40 keys per LIST page: level 1 of the long history needs 15 of them.
      const store = new SmallPages(inner, 40);
      for (const target of [
        { txid: newest - 62 },
        { timestamp: timeOf(newest - 62) + 200 },
      ] as RestoreTarget[]) {
        store.reset();
        const plan = await planTarget(store, target);
        expect(plan.listing).toBe("bounded");
        expect(plan.txid).toBe(newest - 62);
        depths.push(store.depth());
        lists.push(store.calls.filter((c) => c.op === "list").length);
      }
    }
    // TXID target: head + snapshots, then the range's levels; a time target adds
    // the header reads of the few files in that range.
    expect(depths).toEqual([2, 3, 2, 3]);
    // Levels 0-2 below the level-3 file holding the target, one page each, plus the snapshots.
    expect(lists).toEqual([4, 4, 4, 4]);
  });

  test("without a head: long levels are listed in parallel sub-ranges", async () => {
    const depths: number[] = [];
    for (const periods of [2, 24]) {
      const inner = new MemoryStore();
      const newest = await writeHistory(inner, periods, false);
      const store = new SmallPages(inner, 40);
      store.reset();
      const plan = await planTarget(store, { txid: newest - 62 });
      expect(plan.txid).toBe(newest - 62);
      depths.push(store.depth());
    }
    // Snapshots, first page of each level, then the rest of level 1 (600 files
    // in pages of 40) at once, not 15 pages one after another.
    expect(depths).toEqual([2, 3]);
  });
});
