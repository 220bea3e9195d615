/**
 * Maintenance (Litestream's compactor.go and retention): merging level-N
 * files into level N+1 when due, and deleting what a kept snapshot covers
 * after the retention window. Acts only on files this writer knows of (no
 * LISTs), through the upload pipeline, and only while storage works.
 */
import { decodeLtx, decodeLtxHeader, type LtxCompat, LtxError, ltxKey } from "../format/index.js";
import { legacySkeletonKey, SNAPSHOT_LEVEL, skeletonKey } from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { compactionRuns, mergeLtxFiles } from "./compactor.js";
import type { Lease } from "./lease.js";
import type { ReplicatorLogger } from "./logger.js";
import { errorText, isStorageFailure, type Publisher } from "./publisher.js";
import { ReplicatorError } from "./replicator-error.js";
import { selectExpiredFiles } from "./retention.js";

type Level = 1 | 2 | 3;
/** The compaction levels, oldest first. */
export const COMPACTION_LEVELS: Level[] = [1, 2, 3];

/** Options of {@link Maintenance}. */
export interface MaintenanceOptions {
  store: ObjectStore;
  lease: Lease;
  log: ReplicatorLogger;
  /** Compaction intervals for L1, L2, L3 (ms), or undefined when compaction is off. */
  intervals: Record<Level, number> | undefined;
  retention: number;
  retentionGrace: number;
  /** Assumed time a file left the head when unknown (the writer's start). */
  startedAt: number;
  /** Page encoding of compacted files. */
  ltxCompat: LtxCompat;
}

/** Compaction and retention (see the module comment). */
export class Maintenance {
  readonly #o: MaintenanceOptions;
  readonly #pub: Publisher;
  #next: Record<Level, number> = { 1: 0, 2: 0, 3: 0 };
  #lastRetention = 0;
  readonly compactions: Record<number, number> = { 1: 0, 2: 0, 3: 0 };
  retentionDeletes = 0;

  constructor(options: MaintenanceOptions, publisher: Publisher) {
    this.#o = options;
    this.#pub = publisher;
    const now = Date.now();
    if (options.intervals) {
      for (const l of COMPACTION_LEVELS) this.#next[l] = now + options.intervals[l];
    }
  }

  /** Compaction and retention when due. */
  async due(): Promise<void> {
    const intervals = this.#o.intervals;
    if (!intervals) return;
    const now = Date.now();
    for (const level of COMPACTION_LEVELS) {
      if (now < this.#next[level]) continue;
      this.#next[level] = now + intervals[level];
      await this.compact(level);
    }
    if (
      this.#o.retention > 0 &&
      now - this.#lastRetention >= Math.min(intervals[3], this.#o.retention)
    ) {
      this.#lastRetention = now;
      await this.enforceRetention();
    }
  }

  /**
   * Merges every pending run of level `level - 1` into `level` (see
   * `compactionRuns`), publishing the head after each. A run whose files
   * change page size (a database rebuilt with another one) is merged up to
   * the change; the rest is the next run.
   */
  async compact(level: Level): Promise<void> {
    for (;;) {
      const files = [...this.#pub.files.values()];
      const destMax = Math.max(0, ...files.filter((f) => f.level === level).map((f) => f.maxTXID));
      const snapshotMax = Math.max(
        0,
        ...files.filter((f) => f.level === SNAPSHOT_LEVEL && f.minTXID === 1).map((f) => f.maxTXID),
      );
      const run = compactionRuns(
        files.filter((f) => f.level === level - 1),
        destMax,
        snapshotMax,
      )[0];
      if (!run) return;
      const inputs: Uint8Array[] = [];
      let pageSize: number | undefined;
      for (const f of run) {
        const bytes = this.#pub.cached(f.key) ?? (await this.#download(f.key));
        if (!bytes) return;
        const size = decodeLtxHeader(bytes).pageSize;
        if (pageSize !== undefined && size !== pageSize) break;
        pageSize = size;
        inputs.push(bytes);
      }
      const merged = run.slice(0, inputs.length);
      const enc = mergeLtxFiles(inputs, { compat: this.#o.ltxCompat });
      const first = merged[0]!;
      const last = merged[merged.length - 1]!;
      await this.#pub.upload({
        key: ltxKey(level, first.minTXID, last.maxTXID),
        enc,
        ...(merged.length === 1 && first.full ? { full: true } : {}),
        commit: () => {
          for (const f of merged) this.#pub.uncache(f.key);
          this.compactions[level] = (this.compactions[level] ?? 0) + 1;
          this.#pub.queueEvent("compaction", {
            level,
            minTXID: first.minTXID,
            maxTXID: last.maxTXID,
          });
        },
      });
      await this.#pub.publishHead();
    }
  }

  /**
   * Downloads a compaction input, verified (every LTX file carries its
   * checksum, so a body damaged in transit shows). A few attempts: a run of
   * many inputs must not keep failing on one unlucky request. An input that
   * stays invalid (not an LTX file, whatever its name says) is dropped from
   * what this writer builds on, with a warning: undefined.
   */
  async #download(key: string): Promise<Uint8Array | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.#o.store.get(key);
        if (res.notModified) {
          throw new ReplicatorError("INVALID_STATE", `unexpected not-modified for ${key}`);
        }
        decodeLtx(res.body);
        return res.body;
      } catch (err) {
        if (attempt < 3 && (isStorageFailure(err) || err instanceof LtxError)) continue;
        if (!(err instanceof LtxError)) throw err;
        this.#o.log.warn("ignoring a replica file that is not a valid LTX file", {
          key,
          error: errorText(err),
        });
        this.#pub.files.delete(key);
        return undefined;
      }
    }
  }

  /** Deletes what retention allows (see retention.ts), with the skeletons of deleted snapshots. */
  async enforceRetention(): Promise<void> {
    const pub = this.#pub;
    const keys = selectExpiredFiles({
      files: [...pub.files.values()],
      now: Date.now(),
      retentionMs: this.#o.retention,
      graceMs: this.#o.retentionGrace,
      headKeys: new Set(pub.headKeys()),
      leftHeadAt: pub.leftHeadAt,
      fallbackLeftAt: this.#o.startedAt,
    });
    if (keys.length === 0) return;
    await this.#o.lease.ensure();
    await this.#o.store.deleteMany(keys);
    // A deleted snapshot's skeleton goes with it, under either name (absent ones are ignored).
    const skeletons = keys.flatMap((k) => {
      const f = pub.files.get(k);
      return f?.level === SNAPSHOT_LEVEL
        ? [skeletonKey(f.maxTXID), legacySkeletonKey(f.maxTXID)]
        : [];
    });
    if (skeletons.length > 0) await this.#o.store.deleteMany(skeletons);
    for (const k of keys) {
      pub.files.delete(k);
      pub.leftHeadAt.delete(k);
      pub.uncache(k);
    }
    this.retentionDeletes += keys.length;
    this.#o.log.info("retention deleted files", { count: keys.length });
  }
}
