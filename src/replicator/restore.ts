/**
 * Restore: rebuilds a database file from a replica at its latest state, a
 * TXID, or a point in time. Plans the fewest files (works on Litestream 0.5
 * replicas, which have no head object), downloads them in parallel with a
 * bounded window, applies them in order into a temporary file, verifies the
 * database checksum where one is known and `PRAGMA integrity_check`, then
 * renames the file into place.
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";
import {
  DatabaseChecksum,
  decodeLtxHeader,
  decodeLtxTrailer,
  hasNoChecksum,
  LTX_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  LtxApplier,
} from "../format/index.js";
import {
  HEAD_OBJECT_KEY,
  type HeadObject,
  listAllLevels,
  parseHeadObject,
  planRestore,
  type ReplicaFile,
  type RestoreTarget,
} from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openNodeStore } from "../storage/open-node-store.js";
import { NotFoundError } from "../storage/store-errors.js";
import { fileApplyTarget } from "./file-apply-target.js";
import type { ReplicatorLogger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { ReplicatorError } from "./replicator-error.js";

/** Progress of a restore, reported after each applied file. */
export interface RestoreProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** Options of {@link restore}. */
export interface RestoreOptions {
  /** Restore this TXID exactly. */
  txid?: number;
  /** Restore the newest state committed at or before this time. */
  timestamp?: Date | number | string;
  /** Files downloaded ahead of the one being applied (default 4): bounds memory to that many files. */
  concurrency?: number;
  /** Run `PRAGMA integrity_check` on the result (default true). */
  integrityCheck?: boolean;
  onProgress?: (p: RestoreProgress) => void;
  logger?: ReplicatorLogger;
}

/** What was restored. */
export interface RestoreResult {
  txid: number;
  /** Commit time of `txid` as far as the replica tells (ms since epoch). */
  timestamp: number;
  pageSize: number;
  /** Database size in pages. */
  commit: number;
  files: number;
  bytes: number;
  /** Database checksum of the restored file. */
  checksum: bigint;
  /** What the checksum was verified against: the head object, an LTX trailer, or nothing available. */
  checksumVerified: "head" | "trailer" | "none";
}

function resolveTarget(o: RestoreOptions): RestoreTarget | undefined {
  if (o.txid !== undefined && o.timestamp !== undefined) {
    throw new ReplicatorError("INVALID_OPTION", "give either txid or timestamp, not both");
  }
  if (o.txid !== undefined) return { txid: o.txid };
  if (o.timestamp !== undefined) {
    const t =
      o.timestamp instanceof Date
        ? o.timestamp.getTime()
        : typeof o.timestamp === "number"
          ? o.timestamp
          : Date.parse(o.timestamp);
    if (!Number.isFinite(t))
      throw new ReplicatorError("INVALID_OPTION", `invalid timestamp ${String(o.timestamp)}`);
    return { timestamp: t };
  }
  return undefined;
}

async function loadHead(store: ObjectStore): Promise<HeadObject | undefined> {
  try {
    const res = await store.get(HEAD_OBJECT_KEY);
    return res.notModified ? undefined : parseHeadObject(res.body);
  } catch (err) {
    // A missing head (Litestream replica) or an unreadable one: plan from the listing alone.
    if (err instanceof NotFoundError || (err as { code?: string }).code === "HEAD_OBJECT_INVALID")
      return undefined;
    throw err;
  }
}

async function fileChecksum(fh: FileHandle, pageSize: number, commit: number): Promise<bigint> {
  const sum = new DatabaseChecksum();
  const batch = Math.max(1, Math.floor((4 << 20) / pageSize));
  for (let first = 1; first <= commit; first += batch) {
    const n = Math.min(batch, commit - first + 1);
    const buf = new Uint8Array(n * pageSize);
    await fh.read(buf, 0, buf.length, (first - 1) * pageSize);
    for (let i = 0; i < n; i++) sum.add(first + i, buf.subarray(i * pageSize, (i + 1) * pageSize));
  }
  return sum.value;
}

/** Restores `source` (a URL or an open store) into `outPath`, which must not exist. */
export async function restore(
  source: string | ObjectStore,
  outPath: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const target = resolveTarget(options);
  const log = options.logger ?? silentLogger;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  if (
    await stat(outPath).then(
      () => true,
      () => false,
    )
  ) {
    throw new ReplicatorError("RESTORE_OUTPUT_EXISTS", `cannot restore: ${outPath} already exists`);
  }
  const store = typeof source === "string" ? await openNodeStore(source) : source;
  const tmp = join(
    dirname(outPath),
    `.${basename(outPath)}.pagecast-restore-${randomBytes(6).toString("hex")}.tmp`,
  );
  let fh: FileHandle | undefined;
  try {
    const [listed, head] = await Promise.all([listAllLevels(store), loadHead(store)]);
    // Header commit times from the head beat upload times for time targets.
    const headTimes = new Map((head?.files ?? []).map((f) => [f.key, f.timestamp]));
    const files: ReplicaFile[] = listed.map((f) => {
      const t = headTimes.get(f.key);
      return t === undefined ? f : { ...f, timestamp: t };
    });
    const plan = planRestore(files, target);
    const bytesTotal = plan.files.reduce((n, f) => n + f.size, 0);
    log.info("restore plan", { files: plan.files.length, txid: plan.txid, bytes: bytesTotal });

    // A sliding window of downloads ahead of the file being applied.
    const downloads: Promise<Uint8Array>[] = [];
    const startDownload = (i: number) => {
      const f = plan.files[i];
      if (!f || downloads[i]) return;
      const p = store.get(f.key).then((res) => {
        if (res.notModified)
          throw new ReplicatorError("RESTORE_FAILED", `unexpected not-modified for ${f.key}`);
        return res.body;
      });
      p.catch(() => {});
      downloads[i] = p;
    };
    for (let i = 0; i < concurrency; i++) startDownload(i);

    fh = await open(tmp, "w+");
    const applyTarget = fileApplyTarget(fh);
    let applier = new LtxApplier(applyTarget, { verifyChecksums: false });
    let bytesDone = 0;
    let last:
      | { pageSize: number; commit: number; txid: number; trailerChecksum: bigint | null }
      | undefined;
    for (let i = 0; i < plan.files.length; i++) {
      const f = plan.files[i]!;
      const bytes = await downloads[i]!;
      downloads[i] = Promise.resolve(new Uint8Array(0));
      startDownload(i + concurrency);
      if (bytes.length < LTX_HEADER_SIZE + LTX_TRAILER_SIZE) {
        throw new ReplicatorError(
          "RESTORE_FAILED",
          `${f.key} is truncated (${bytes.length} bytes)`,
        );
      }
      const header = decodeLtxHeader(bytes.subarray(0, LTX_HEADER_SIZE));
      // A compacted file may re-cover TXIDs already applied (Litestream's
      // planner allows that); re-applying page images is idempotent, so
      // continue from just before it.
      if (last && header.minTXID !== last.txid + 1) {
        applier = new LtxApplier(applyTarget, { verifyChecksums: false });
        await applier.resume({
          txid: header.minTXID - 1,
          pageSize: last.pageSize,
          commit: last.commit,
        });
      }
      const result = await applier.apply([bytes]);
      const trailer = decodeLtxTrailer(bytes.subarray(bytes.length - LTX_TRAILER_SIZE));
      last = {
        pageSize: result.position.pageSize,
        commit: result.position.commit,
        txid: result.position.txid,
        trailerChecksum: hasNoChecksum(header) ? null : trailer.postApplyChecksum,
      };
      bytesDone += bytes.length;
      options.onProgress?.({
        filesDone: i + 1,
        filesTotal: plan.files.length,
        bytesDone,
        bytesTotal,
      });
    }
    if (!last) throw new ReplicatorError("RESTORE_FAILED", "restore plan is empty");
    await fh.sync();

    const checksum = await fileChecksum(fh, last.pageSize, last.commit);
    let checksumVerified: RestoreResult["checksumVerified"] = "none";
    if (head && head.txid === plan.txid && head.postApplyChecksum !== null) {
      if (head.postApplyChecksum !== checksum) {
        throw new ReplicatorError(
          "RESTORE_FAILED",
          `restored database checksum ${checksum.toString(16)} does not match the head's ${head.postApplyChecksum.toString(16)} at TXID ${plan.txid}`,
        );
      }
      checksumVerified = "head";
    } else if (last.trailerChecksum !== null) {
      if (last.trailerChecksum !== checksum) {
        throw new ReplicatorError(
          "RESTORE_FAILED",
          "restored database checksum does not match the last file's post-apply checksum",
        );
      }
      checksumVerified = "trailer";
    }
    await fh.close();
    fh = undefined;

    if (options.integrityCheck ?? true) {
      const db = new Database(tmp, { fileMustExist: true });
      try {
        const rows = db.pragma("integrity_check") as { integrity_check: string }[];
        const problems = rows.map((r) => r.integrity_check).filter((t) => t !== "ok");
        if (problems.length > 0) {
          throw new ReplicatorError(
            "RESTORE_FAILED",
            `restored database failed integrity_check: ${problems.slice(0, 5).join("; ")}`,
          );
        }
      } finally {
        db.close();
      }
    }
    await rename(tmp, outPath);
    const dir = await open(dirname(outPath), "r");
    await dir.sync().catch(() => {});
    await dir.close();
    log.info("restore complete", { txid: plan.txid, path: outPath });
    return {
      txid: plan.txid,
      timestamp: plan.timestamp,
      pageSize: last.pageSize,
      commit: last.commit,
      files: plan.files.length,
      bytes: bytesDone,
      checksum,
      checksumVerified,
    };
  } finally {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true });
    await rm(`${tmp}-wal`, { force: true });
    await rm(`${tmp}-shm`, { force: true });
    if (typeof source === "string") await store.close().catch(() => {});
  }
}
