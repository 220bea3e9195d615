/**
 * The upload/publish pipeline (Litestream's replica.go): create-only LTX
 * uploads, the head object (compare-and-swap), lease fencing before every
 * write, the published position and the events it emits, and outage mode
 * (failures and stalls noticed, backoff between background attempts). It
 * never touches the database's files; what it publishes comes encoded from
 * the capture side.
 */
import { readLtxPageIndex, storeRangeReader } from "../format/index.js";
import {
  HEAD_OBJECT_MAX_FILES,
  type HeadFile,
  type HeadObject,
  type HeadSkeleton,
  planRestore,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { PreconditionFailedError, StoreRequestError } from "../storage/store-errors.js";
import type { HeadWriter } from "./head-writer.js";
import type { WriterHealth } from "./health.js";
import type { Lease } from "./lease.js";
import type { ReplicatorLogger } from "./logger.js";
import type { UploadableLtx } from "./ltx-builder.js";
import { compareStoredLtx, disposeLtx, putLtx } from "./ltx-upload.js";
import { errorText, isStorageFailure, StorageOutage } from "./outage.js";
import { PageChecksums } from "./page-checksums.js";
import { readReplicaState } from "./replica-state.js";
import { LeaseLostError } from "./replicator-error.js";
import type { BuiltSkeleton } from "./skeleton.js";

/** A file of the replica as this writer knows it. */
export interface KnownFile extends ReplicaFile {
  indexOffset?: number;
  indexSize?: number;
  /** Page 1's frame in the file; `null`: the file has no page 1; absent: unknown. */
  page1?: { offset: number; size: number } | null;
  /**
   * A level-0 file holding the whole database although it does not start at
   * TXID 1 (published after continuity was lost, with no previous state to
   * diff against): compaction keeps it in a run of its own.
   */
  full?: boolean;
}

/** One upload: the file, and what publishing it changes. */
export interface Upload {
  key: string;
  enc: UploadableLtx;
  commit: () => void;
  /** SQLite transactions the file publishes (for stats). */
  transactions?: number;
  /** A snapshot's B-tree skeleton, published (best effort) right after it. */
  skeleton?: BuiltSkeleton;
  /** See {@link KnownFile.full}. */
  full?: boolean;
  /** Uploaded right after this one (becoming `inflight` in turn, so a retry resumes there). */
  next?: Upload;
}

export { errorText, isStorageFailure } from "./outage.js";

/** What the pipeline needs from the rest of the writer. */
export interface PublisherDeps {
  store: ObjectStore;
  lease: Lease;
  head: HeadWriter;
  writerId: string;
  log: ReplicatorLogger;
  health: WriterHealth;
  trackChecksums: boolean;
  compactionCacheBytes: number;
  /** Keep levels 0-2 in memory as compaction inputs. */
  cacheInputs: boolean;
  syncInterval: number;
  outageRetryMaxDelay: number;
  /** An upload running this long (plus 1 s per MiB) counts as a storage failure. */
  stallAfter: number;
  /** Emits an event (after the head naming its file is written). */
  emit: (name: string, payload: unknown) => void;
  /** Asks for a snapshot (the plan reached the head's file limit). */
  requestSnapshot: (reason: string) => void;
  /** Counts an error (stats) without throwing it. */
  error: (err: unknown) => void;
}

/** The pipeline (see the module comment). */
export class Publisher {
  readonly #d: PublisherDeps;
  readonly files = new Map<string, KnownFile>();
  readonly #cache = new Map<string, Uint8Array>();
  #cacheBytes = 0;
  readonly leftHeadAt = new Map<string, number>();
  /** The published position. */
  txid = 0;
  txTime = 0;
  commit = 0;
  pageSize = 0;
  generation: string;
  /** Per-page checksums of the newest encoded file's state (published or in flight). */
  checksums = new PageChecksums();
  /**
   * Whether {@link checksums} describe that state: false until a snapshot
   * read or a resumed head sets them (and always without `trackChecksums`).
   */
  checksumsKnown = false;
  /** The B-tree skeleton published for the newest snapshot, named by the head. */
  skeleton: HeadSkeleton | undefined;
  /** An upload that has not succeeded yet (retried as is: its key must never name other bytes). */
  inflight: Upload | undefined;
  /** The storage request under way (watched for failures and stalls). */
  #op: { what: string; bytes: number; since: number; errors: number } | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  headDirty = false;
  #headUncertain = false;
  readonly #events: [string, unknown][] = [];
  /** Outage mode (see outage.ts). */
  readonly outage: StorageOutage;
  /** A lost lease or another writer's file: the writer stops. */
  fatal: unknown;
  /** L0 files and snapshots published (a sync during which this moved counts as published). */
  published = 0;
  bytesUploaded = 0;

  constructor(deps: PublisherDeps, generation: string) {
    this.#d = deps;
    this.generation = generation;
    this.outage = new StorageOutage(deps.log, deps.syncInterval, deps.outageRetryMaxDelay);
    // Stores that report failed attempts as they happen: no wait for the next sync's look.
    this.#unsubscribe = deps.store.onAttemptFailure?.((f) => {
      const op = this.#op;
      if (!op) return;
      op.errors = deps.store.counters().errors;
      this.#failing(`attempt ${f.attempt} writing ${op.what} failed (${f.reason})`, Date.now());
    });
  }

  /** Adopts the files found at start (with what the head knows of them). */
  adoptListing(listed: ReplicaFile[], head: HeadObject | undefined): void {
    const info = new Map<string, HeadFile>((head?.files ?? []).map((f) => [f.key, f]));
    for (const f of listed) {
      const h = info.get(f.key);
      const known: KnownFile = { ...f };
      if (h && h.size === f.size) {
        known.indexOffset = h.indexOffset;
        known.indexSize = h.indexSize;
        known.timestamp = h.timestamp;
      }
      this.files.set(f.key, known);
    }
  }

  /** Whether the replica holds a level-9 snapshot (the head's plan must start with one). */
  hasSnapshot(): boolean {
    for (const f of this.files.values())
      if (f.level === SNAPSHOT_LEVEL && f.minTXID === 1) return true;
    return false;
  }

  /** Keys of the files the current head names. */
  headKeys(): string[] {
    return (this.#d.head.current?.files ?? []).map((f) => f.key);
  }

  /** Continues at the head's position (resume), `checksums` being the database's there. */
  adoptHead(head: HeadObject, checksums: PageChecksums): void {
    this.checksums = checksums;
    this.txid = head.txid;
    this.txTime = head.timestamp;
    this.commit = head.commit;
    this.pageSize = head.pageSize;
    this.generation = head.generation;
    this.skeleton = head.skeleton;
    this.checksumsKnown = true;
  }

  /**
   * The published state as per-page checksums, to diff a continuity
   * snapshot against: the ones held when known, else rebuilt from the
   * replica's files (see replica-state.ts). Undefined when nothing is
   * published yet, or when the files do not give a consistent state (logged:
   * the snapshot then publishes every page). Storage failures are thrown.
   */
  async publishedState(): Promise<{ checksums: PageChecksums; pageSize: number } | undefined> {
    if (this.txid === 0) return undefined;
    if (this.checksumsKnown) return { checksums: this.checksums, pageSize: this.pageSize };
    const head = this.#d.head.current;
    const expected =
      head && head.txid === this.txid && head.postApplyChecksum !== null
        ? head.postApplyChecksum
        : undefined;
    try {
      const state = await readReplicaState(
        this.#d.store,
        [...this.files.values()],
        this.txid,
        expected,
      );
      this.#d.log.info("rebuilt the replica's state to publish only what changed", {
        txid: state.txid,
        pages: state.commit,
      });
      return state;
    } catch (err) {
      if (isStorageFailure(err) || this.fatal) throw err;
      this.#d.log.warn("cannot rebuild the replica's state: the snapshot holds every page", {
        txid: this.txid,
        error: errorText(err),
      });
      return undefined;
    }
  }

  /** Whether an upload or a head write waits. */
  get busy(): boolean {
    return this.inflight !== undefined || this.headDirty;
  }

  /** Runs storage work; returns the storage failure it met (see {@link StorageOutage.attempt}). */
  tryStorage(fn: () => Promise<void>): Promise<unknown> {
    return this.outage.attempt(fn, () => this.txid);
  }

  /** Since when uploads fail (outage mode), or undefined while storage works. */
  get failingSince(): number | undefined {
    return this.outage.since;
  }

  /**
   * Notices an upload that is failing or hung before the store gives up on
   * it: store errors counted since it began (one per failed attempt), or no
   * answer past the stall threshold. Storage then counts as failing (stats,
   * outage-mode capture) while the upload goes on.
   */
  watch(now: number): void {
    const op = this.#op;
    if (!op) return;
    const errors = this.#d.store.counters().errors;
    const allowed = this.#d.stallAfter + (op.bytes / (1 << 20)) * 1000;
    let problem: string | undefined;
    if (errors > op.errors) {
      problem = `${errors - op.errors} failed attempt(s) writing ${op.what}`;
      op.errors = errors;
    } else if (now - op.since > allowed && this.failingSince === undefined) {
      problem = `writing ${op.what} has taken ${Math.round((now - op.since) / 1000)}s`;
    }
    if (problem) this.#failing(problem, now);
  }

  /** Storage counts as failing from now (stats, outage-mode capture) while the request goes on. */
  #failing(problem: string, now: number): void {
    const err = new StoreRequestError(`${this.#d.store.url}: ${problem}`, { retryable: true });
    if (this.failingSince === undefined) this.#d.error(err);
    this.outage.note(err, now);
  }

  /**
   * Create-only upload; the published state advances only once the object is
   * known to be stored. A failed upload stays in `inflight` and is retried
   * as is before anything else.
   */
  async upload(first: Upload): Promise<void> {
    for (let item: Upload | undefined = first; item; item = item.next) await this.#upload(item);
  }

  async #upload(item: Upload): Promise<void> {
    this.inflight = item;
    await this.#watched(item.key, item.enc.size, () => this.#put(item));
    this.inflight = undefined;
    // The next upload may carry the same body (TXID 1's level-0 file and snapshot).
    if (item.next?.enc !== item.enc) disposeLtx(item.enc);
    this.bytesUploaded += item.enc.size;
    const h = item.enc.header;
    const level = Number.parseInt(item.key.slice(0, 4), 16);
    this.files.set(item.key, {
      level,
      minTXID: h.minTXID,
      maxTXID: h.maxTXID,
      key: item.key,
      size: item.enc.size,
      lastModified: new Date(),
      timestamp: h.timestamp,
      indexOffset: item.enc.indexOffset,
      indexSize: item.enc.indexSize,
      page1: item.enc.page1 ?? null,
      ...(item.full ? { full: true } : {}),
    });
    // Levels 0-2 are the inputs of the next compaction: keep them instead of downloading them
    // again (not a file starting at TXID 1: compaction leaves those where they are).
    if (level < 3 && h.minTXID > 1 && this.#d.cacheInputs && item.enc.bytes)
      this.#cachePut(item.key, item.enc.bytes);
    item.commit();
    this.headDirty = true;
    await this.#uploadSkeleton(item.skeleton);
  }

  async #watched<T>(what: string, bytes: number, fn: () => Promise<T>): Promise<T> {
    this.#op = { what, bytes, since: Date.now(), errors: this.#d.store.counters().errors };
    try {
      return await fn();
    } finally {
      this.#op = undefined;
    }
  }

  async #put(item: Upload): Promise<void> {
    const store = this.#d.store;
    // Fencing: a writer whose lease was taken over (say, during an outage) learns it here, before writing.
    await this.#d.lease.ensure();
    try {
      await putLtx(store, item.key, item.enc, { ifNoneMatch: "*" });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // The key exists: ours only if an earlier attempt of this very upload landed.
      const stored = await compareStoredLtx(store, item.key, item.enc);
      if (stored === "same") return;
      if (stored === "damaged") {
        // Damaged on the way back (every LTX file carries its checksum): look again later.
        throw new StoreRequestError(
          `reading back ${item.key} from ${store.url} returned a damaged body`,
          { retryable: true, cause: err },
        );
      }
      const lost = new LeaseLostError(
        `${item.key} on ${store.url} was written by another writer; this replicator stops`,
        { cause: err },
      );
      this.fatal = lost;
      throw lost;
    }
  }

  /** Events of published uploads wait for the head that names them. */
  queueEvent(name: string, payload: unknown): void {
    this.#events.push([name, payload]);
  }

  #cachePut(key: string, bytes: Uint8Array): void {
    if (bytes.length > this.#d.compactionCacheBytes) return;
    this.#cache.set(key, bytes);
    this.#cacheBytes += bytes.length;
    for (const [k, v] of this.#cache) {
      if (this.#cacheBytes <= this.#d.compactionCacheBytes) break;
      this.#cache.delete(k);
      this.#cacheBytes -= v.length;
    }
  }

  /** A cached compaction input (kept until the output is stored: a failed attempt needs it again). */
  cached(key: string): Uint8Array | undefined {
    return this.#cache.get(key);
  }

  /** Forgets a cached compaction input. */
  uncache(key: string): void {
    const v = this.#cache.get(key);
    if (!v) return;
    this.#cache.delete(key);
    this.#cacheBytes -= v.length;
  }

  /** Publishes a snapshot's B-tree skeleton (see skeleton.ts); best effort: a replica without one opens a little slower. */
  async #uploadSkeleton(skeleton: BuiltSkeleton | undefined): Promise<void> {
    if (!skeleton) return;
    try {
      await this.#d.store.put(skeleton.key, skeleton.enc.bytes);
      this.bytesUploaded += skeleton.enc.bytes.length;
      this.skeleton = { key: skeleton.key, size: skeleton.enc.bytes.length, txid: skeleton.txid };
    } catch (err) {
      this.#d.log.warn("could not publish the snapshot's skeleton", { error: errorText(err) });
    }
  }

  async #headFile(f: KnownFile): Promise<HeadFile> {
    if (f.indexOffset === undefined || f.indexSize === undefined || f.timestamp === undefined) {
      const info = await readLtxPageIndex(storeRangeReader(this.#d.store, f.key));
      f.indexOffset = info.indexOffset;
      f.indexSize = info.indexSize + 8;
      f.timestamp ??= info.header?.timestamp ?? f.lastModified.getTime();
      f.size = info.fileSize;
    }
    const { level, minTXID, maxTXID, key, size, indexOffset, indexSize, timestamp } = f;
    return { level, minTXID, maxTXID, key, size, indexOffset, indexSize, timestamp };
  }

  /** Writes the head naming the current plan (and the writer's health); emits the events it publishes. */
  async publishHead(): Promise<void> {
    const plan = planRestore([...this.files.values()]);
    if (plan.files.length >= HEAD_OBJECT_MAX_FILES) {
      // A plan this long (no compaction, or compaction lagging) is at the
      // head's limit: a snapshot restarts it at one file. Past the limit the
      // head cannot be written, so it stays dirty until the snapshot's head.
      this.#d.requestSnapshot("restore plan at the head object's file limit");
      if (plan.files.length > HEAD_OBJECT_MAX_FILES) {
        this.headDirty = true;
        return;
      }
    }
    if (plan.files[0]!.level !== SNAPSHOT_LEVEL) {
      // A replica without a level-9 snapshot (Litestream's young replicas;
      // ours when a crash came between the first TXID's two files): a head
      // names a plan from one, so one is published first.
      this.#d.requestSnapshot("the replica holds no level-9 snapshot");
      this.headDirty = true;
      return;
    }
    const files: HeadFile[] = [];
    for (const f of plan.files) files.push(await this.#headFile(this.files.get(f.key)!));
    const head: HeadObject = {
      format: "pagecast-head",
      version: 1,
      writerId: this.#d.writerId,
      generation: this.generation,
      txid: this.txid,
      timestamp: this.txTime,
      pageSize: this.pageSize,
      commit: this.commit,
      postApplyChecksum: this.#d.trackChecksums ? this.checksums.value : null,
      files,
    };
    // Page 1's newest image, when every file after it is known not to hold one.
    for (let i = plan.files.length - 1; i >= 0; i--) {
      const f = this.files.get(plan.files[i]!.key);
      if (f?.page1 === undefined) break;
      if (f.page1 === null) continue;
      head.page1 = { key: f.key, offset: f.page1.offset, size: f.page1.size };
      break;
    }
    // Named only while it belongs to the plan's snapshot.
    const skeleton = this.skeleton;
    if (skeleton && files[0]?.level === SNAPSHOT_LEVEL && files[0].maxTXID === skeleton.txid) {
      head.skeleton = skeleton;
    }
    const healthMark = this.#d.health.mark;
    const writer = this.#d.health.headField();
    if (writer) head.writer = writer;
    const previous = this.#d.head.current;
    this.headDirty = true;
    await this.#watched("the head object", 0, () => this.#writeHead(head));
    this.headDirty = false;
    this.#d.health.shown(healthMark);
    for (const [name, payload] of this.#events.splice(0)) this.#d.emit(name, payload);
    const now = Date.now();
    const keys = new Set(files.map((f) => f.key));
    for (const f of previous?.files ?? []) if (!keys.has(f.key)) this.leftHeadAt.set(f.key, now);
    for (const k of keys) this.leftHeadAt.delete(k);
  }

  /**
   * Writes the head (CAS). After a write whose answer was lost, the next CAS
   * fails although nobody else wrote: the stored head then carries our
   * writer id (only this writer uses it), so its ETag is adopted and the
   * write tried once more. A head by another writer stops this one.
   */
  async #writeHead(head: HeadObject): Promise<void> {
    try {
      await this.#d.head.write(head);
    } catch (err) {
      if (!(err instanceof LeaseLostError) || !this.#headUncertain) {
        if (isStorageFailure(err)) this.#headUncertain = true;
        throw err;
      }
      const stored = await this.#d.head.load();
      if (!stored) {
        throw new StoreRequestError(`could not read back the head object on ${this.#d.store.url}`, {
          retryable: true,
          cause: err,
        });
      }
      if (stored.writerId !== this.#d.writerId) {
        this.fatal = err;
        throw err;
      }
      await this.#d.head.write(head);
    }
    this.#headUncertain = false;
  }

  /** Releases what an upload that never made it holds (a spool file), and the uploads after it. */
  dispose(): void {
    for (let item = this.inflight; item; item = item.next) disposeLtx(item.enc);
    this.#unsubscribe?.();
  }
}
