/**
 * The replica's state at a TXID as per-page checksums, rebuilt from its LTX
 * files: what a continuity break diffs the database against when the writer
 * does not hold them (after a restart whose database no longer matches the
 * head, or with `trackChecksums` off). The files stream through a small
 * window of range GETs, pages are checksummed in the pass that verifies each
 * file, and only 8 bytes per page are kept, whatever the database size.
 *
 * The result is what any reader of the replica reconstructs at that TXID, so
 * a level-0 file holding every page whose checksum differs from it brings
 * those readers to the database exactly.
 */
import { LtxDecoder } from "../format/index.js";
import { planRestore, type ReplicaFile } from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { RangedDownloader } from "../storage/ranged-download.js";
import { PageChecksums } from "./page-checksums.js";
import { ReplicatorError } from "./replicator-error.js";

/** The replica's state at a TXID (see the module comment). */
export interface ReplicaState {
  txid: number;
  pageSize: number;
  /** Database size in pages. */
  commit: number;
  checksums: PageChecksums;
}

/** Small window: this runs beside the application, not as a restore. */
const CHUNK_SIZE = 4 << 20;
const CHUNKS_IN_FLIGHT = 4;

/**
 * Rebuilds the state at exactly `txid` from `files` (the plan a restore would
 * use). When `expected` (the head's database checksum at `txid`) is given,
 * the result must match it. Throws the store's errors as they are, and
 * `ReplicatorError(INVALID_STATE)` when the files do not produce a
 * consistent state (no plan, a page size change on the way, a mismatch).
 */
export async function readReplicaState(
  store: ObjectStore,
  files: readonly ReplicaFile[],
  txid: number,
  expected?: bigint,
): Promise<ReplicaState> {
  const plan = planRestore(files, { txid });
  const downloader = new RangedDownloader(
    store,
    plan.files.map((f) => ({ key: f.key, size: f.size })),
    { chunkSize: CHUNK_SIZE, chunksInFlight: CHUNKS_IN_FLIGHT },
  );
  const checksums = new PageChecksums();
  let pageSize = 0;
  let commit = 0;
  try {
    for (let i = 0; i < plan.files.length; i++) {
      const decoder = new LtxDecoder(downloader.chunks(i), { reusePageBuffer: true });
      const header = await decoder.readHeader();
      if (i === 0) {
        pageSize = header.pageSize;
        checksums.reset(pageSize);
      } else if (header.pageSize !== pageSize) {
        await decoder.cancel();
        throw new ReplicatorError(
          "INVALID_STATE",
          `${plan.files[i]!.key} changes the page size to ${header.pageSize}`,
        );
      }
      for await (const page of decoder.pages()) {
        if (page.checksumHi !== undefined && page.checksumLo !== undefined) {
          checksums.setChecksum(page.pgno, page.checksumHi, page.checksumLo);
        } else {
          checksums.set(page.pgno, page.data);
        }
      }
      // Verifies the whole file (its checksum) before its pages count.
      await decoder.finish();
      commit = header.commit;
      checksums.truncate(commit);
    }
  } finally {
    downloader.close();
  }
  if (expected !== undefined && checksums.value !== expected) {
    throw new ReplicatorError(
      "INVALID_STATE",
      `the replica's files give database checksum ${checksums.value.toString(16)} at TXID ${txid}, ` +
        `the head says ${expected.toString(16)}`,
    );
  }
  return { txid: plan.txid, pageSize, commit, checksums };
}
