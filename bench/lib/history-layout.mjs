/**
 * A replica as a writer leaves it after hours of 1-second syncs with
 * Litestream 0.5's default compaction (L1 every 30 s, L2 every 5 min, L3
 * every hour, a daily level-9 snapshot), written directly with pagecast's
 * LTX encoder so that a day of history takes seconds to produce:
 *
 * - TXID 1 is the snapshot (every page of the base database);
 * - each later TXID (one per simulated second) rewrites 1-2 pages of a hot
 *   set of 24 pages (an append-heavy table: its last leaves and index
 *   leaves), with their unchanged images, so every state is the base
 *   database and any plan is valid;
 * - L1/L2/L3 files cover 30 / 300 / 3600 TXIDs with the union of their
 *   pages; the level-0 files of the last 15 s are not compacted yet (older
 *   ones were deleted after compaction, as retention does);
 * - a head object names the latest plan, as the Replicator writes it, with
 *   the snapshot's B-tree skeleton (page 1 and every interior page).
 */
import { readFileSync } from "node:fs";
import { prng } from "./prng.mjs";

const L1_SPAN = 30;
const L2_SPAN = 300;
const L3_SPAN = 3600;
const TAIL_L0 = 15;

function encode(api, header, pgnos, pageOf) {
  const enc = new api.LtxEncoder({
    ...header,
    flags: api.HEADER_FLAG_NO_CHECKSUM,
    preApplyChecksum: 0n,
  });
  const chunks = [enc.headerBytes()];
  for (const p of pgnos) chunks.push(enc.encodePage(p, pageOf(p)));
  const before = enc.bytesWritten;
  chunks.push(enc.finish(0n));
  const size = enc.bytesWritten;
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  const indexOffset = before + api.LTX_PAGE_HEADER_SIZE;
  return { bytes, indexOffset, indexSize: size - api.LTX_TRAILER_SIZE - indexOffset };
}

/**
 * Writes `hours` of history over `basePath` under `store` (through `put`).
 * Returns file counts per level and the TXIDs at hand.
 */
export async function writeHistoryLayout(api, store, { basePath, hours, pageSize = 4096 }) {
  const db = readFileSync(basePath);
  const commit = db.length / pageSize;
  const pageOf = (p) => db.subarray((p - 1) * pageSize, p * pageSize);
  const rand = prng(hours * 7919);
  const hot = [];
  while (hot.length < 24) {
    const p = 2 + Math.floor(rand() * (commit - 1));
    if (!hot.includes(p)) hot.push(p);
  }
  const historyTx = hours * 3600;
  const lastTx = 1 + historyTx + TAIL_L0;
  const start = Date.now() - (lastTx + 1) * 1000;
  const timeOf = (txid) => start + txid * 1000;
  const touched = [];
  for (let tx = 2; tx <= lastTx; tx++) {
    const n = 1 + Math.floor(rand() * 2);
    const pages = new Set();
    for (let i = 0; i < n; i++) pages.add(hot[Math.floor(rand() * hot.length)]);
    touched[tx] = pages;
  }
  const union = (min, max) => {
    const s = new Set();
    for (let tx = min; tx <= max; tx++) for (const p of touched[tx]) s.add(p);
    return [...s].sort((a, b) => a - b);
  };

  const files = [];
  const add = (level, min, max, pgnos) => {
    const header = { pageSize, commit, minTXID: min, maxTXID: max, timestamp: timeOf(max) };
    files.push({ level, min, max, header, pgnos });
  };
  add(
    9,
    1,
    1,
    Array.from({ length: commit }, (_, i) => i + 1),
  );
  const firstHist = 2;
  const lastHist = 1 + historyTx;
  for (let a = firstHist; a <= lastHist; a += L1_SPAN)
    add(1, a, a + L1_SPAN - 1, union(a, a + L1_SPAN - 1));
  for (let a = firstHist; a <= lastHist; a += L2_SPAN)
    add(2, a, a + L2_SPAN - 1, union(a, a + L2_SPAN - 1));
  for (let a = firstHist; a <= lastHist; a += L3_SPAN)
    add(3, a, a + L3_SPAN - 1, union(a, a + L3_SPAN - 1));
  for (let tx = lastHist + 1; tx <= lastTx; tx++) add(0, tx, tx, union(tx, tx));

  const meta = new Map();
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++];
      const enc = encode(api, f.header, f.pgnos, pageOf);
      const key = api.ltxKey(f.level, f.min, f.max);
      await store.put(key, enc.bytes);
      bytes += enc.bytes.length;
      meta.set(key, {
        level: f.level,
        minTXID: f.min,
        maxTXID: f.max,
        key,
        size: enc.bytes.length,
        indexOffset: enc.indexOffset,
        indexSize: enc.indexSize,
        timestamp: f.header.timestamp,
      });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));

  // The skeleton of the snapshot, as the Replicator publishes one with each
  // snapshot: page 1 and the interior b-tree pages, encoded like the snapshot.
  let skeleton;
  if (api.skeletonKey && api.skeletonHeaderTXID) {
    const interior = [];
    for (let p = 1; p <= commit; p++) {
      const type = pageOf(p)[p === 1 ? 100 : 0];
      if (p === 1 || type === 0x02 || type === 0x05) interior.push(p);
    }
    const txid = api.skeletonHeaderTXID(1);
    const enc = encode(
      api,
      { pageSize, commit, minTXID: txid, maxTXID: txid, timestamp: timeOf(1) },
      interior,
      pageOf,
    );
    const key = api.skeletonKey(1);
    await store.put(key, enc.bytes);
    skeleton = { key, size: enc.bytes.length, txid: 1 };
  }

  let headWritten = false;
  if (api.serializeHeadObject && api.planRestore) {
    const listed = [...meta.values()].map((m) => ({
      level: m.level,
      minTXID: m.minTXID,
      maxTXID: m.maxTXID,
      key: m.key,
      size: m.size,
      lastModified: new Date(m.timestamp),
      timestamp: m.timestamp,
    }));
    const plan = api.planRestore(listed);
    await store.put(
      "pagecast-head.json",
      api.serializeHeadObject({
        format: "pagecast-head",
        version: 1,
        writerId: "bench-history",
        generation: `bench-${hours}h`,
        txid: lastTx,
        timestamp: timeOf(lastTx),
        pageSize,
        commit,
        postApplyChecksum: null,
        files: plan.files.map((f) => meta.get(f.key)),
        ...(skeleton ? { skeleton } : {}),
      }),
    );
    headWritten = true;
  }
  const perLevel = {};
  for (const f of files) perLevel[f.level] = (perLevel[f.level] ?? 0) + 1;
  // A past state ~1000 s before the end of the history, on an L1 boundary: the
  // same distance from the end at every history length, so plans differ only
  // by the hours of L3 files in front.
  const pastTxid = 1 + Math.floor((historyTx - 1000) / L1_SPAN) * L1_SPAN;
  return {
    files: files.length,
    perLevel,
    bytes,
    lastTxid: lastTx,
    pastTxid,
    headWritten,
    skeleton: skeleton !== undefined,
    commit,
  };
}
