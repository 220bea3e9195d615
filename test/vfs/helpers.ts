/**
 * Test fixtures for the replica reader: a scripted writer that publishes a
 * SQLite database (better-sqlite3, in memory) as LTX files the way pagecast's
 * replicator or Litestream 0.5 lay them out, and a store wrapper that records
 * every request so tests can count them and measure sequential round trips.
 */
import Database from "better-sqlite3";
import {
  databaseChecksum,
  decodeLtx,
  encodeLtx,
  LTX_TRAILER_SIZE,
  lockPgno,
  ltxKey,
} from "../../src/format/index.js";
import {
  HEAD_OBJECT_KEY,
  type HeadFile,
  type HeadObject,
  type HeadSkeleton,
  serializeHeadObject,
} from "../../src/layout/index.js";
import { buildSkeleton } from "../../src/replicator/skeleton.js";
import type {
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  StoreCounters,
} from "../../src/storage/object-store.js";
import { readSqliteWasm } from "../../src/vfs-node/node-wasm.js";

export { readSqliteWasm };

/** Options of {@link ScriptedWriter}. */
export interface ScriptedWriterOptions {
  /** Write the pagecast head object after each publish (false: Litestream layout). */
  head?: boolean;
  pageSize?: number;
  /** Commit time of each TXID (ms); default: a fake clock starting at 2025-01-01 advancing 1 s per TXID. */
  clock?: () => number;
  /** Publish a B-tree skeleton with every snapshot and name it in the head (as the Replicator does). */
  skeleton?: boolean;
  /** Name page 1's newest frame in the head (as the Replicator does). */
  page1?: boolean;
}

/** A published file, as the head object names it. */
export type PublishedFile = HeadFile;

function pagesOf(image: Uint8Array, pageSize: number): number {
  return image.length / pageSize;
}

/**
 * Publishes the evolving state of an in-memory SQLite database: every
 * `commit()` becomes one TXID and one L0 file; snapshots and compactions on
 * request. Keeps every TXID's image for differential checks.
 */
export class ScriptedWriter {
  readonly db: Database.Database;
  readonly images = new Map<number, Uint8Array>();
  readonly times = new Map<number, number>();
  txid = 0;
  /** The current plan: snapshot first, then covering files. */
  plan: PublishedFile[] = [];
  readonly #store: ObjectStore;
  readonly #head: boolean;
  readonly #clock: () => number;
  readonly #withSkeleton: boolean;
  readonly #withPage1: boolean;
  /** The skeleton of the current snapshot, when published. */
  skeleton: HeadSkeleton | undefined;
  /** Page 1's frame per published file key (`null`: the file has no page 1). */
  readonly #page1Frames = new Map<string, { offset: number; size: number } | null>();
  #fakeTime = Date.UTC(2025, 0, 1);
  #generation = "gen-1";

  constructor(store: ObjectStore, options: ScriptedWriterOptions = {}) {
    this.#store = store;
    this.#head = options.head ?? true;
    this.#clock = options.clock ?? (() => (this.#fakeTime += 1000));
    this.#withSkeleton = options.skeleton ?? false;
    this.#withPage1 = options.page1 ?? false;
    this.db = new Database(":memory:");
    this.db.pragma(`page_size = ${options.pageSize ?? 4096}`);
  }

  get pageSize(): number {
    return this.db.pragma("page_size", { simple: true }) as number;
  }

  /** The database image now (page 1's header as SQLite wrote it). */
  image(): Uint8Array {
    const buf = this.db.serialize();
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Runs `sql` then publishes the change as the next TXID (one L0 file, or a snapshot). */
  async commit(sql: string | (() => void), opts: { snapshot?: boolean } = {}): Promise<number> {
    if (typeof sql === "string") this.db.exec(sql);
    else sql();
    return this.publish(opts);
  }

  /** Publishes the current image as TXID+1. */
  async publish(opts: { snapshot?: boolean } = {}): Promise<number> {
    const pageSize = this.pageSize;
    const image = this.image();
    const prev = this.images.get(this.txid);
    const txid = this.txid + 1;
    const timestamp = this.#clock();
    const snapshot = opts.snapshot || prev === undefined;
    const commit = pagesOf(image, pageSize);
    const lock = lockPgno(pageSize);
    const pages: { pgno: number; data: Uint8Array }[] = [];
    for (let pgno = 1; pgno <= commit; pgno++) {
      if (pgno === lock) continue;
      const data = image.subarray((pgno - 1) * pageSize, pgno * pageSize);
      if (!snapshot && prev) {
        const old = prev.subarray((pgno - 1) * pageSize, pgno * pageSize);
        if (old.length === data.length && Buffer.compare(old, data) === 0) continue;
      }
      pages.push({ pgno, data });
    }
    const level = snapshot ? 9 : 0;
    const minTXID = snapshot ? 1 : txid;
    const bytes = encodeLtx({
      header: {
        pageSize,
        commit,
        minTXID,
        maxTXID: txid,
        timestamp,
        ...(snapshot || !prev ? {} : { preApplyChecksum: databaseChecksum(prev, pageSize) }),
      },
      pages,
      postApplyChecksum: databaseChecksum(image, pageSize),
    });
    const file = await this.#put(level, minTXID, txid, bytes, timestamp);
    this.txid = txid;
    this.images.set(txid, image.slice());
    this.times.set(txid, timestamp);
    if (snapshot) {
      this.#generation = `gen-${txid}`;
      this.plan = [file];
      this.skeleton = undefined;
      if (this.#withSkeleton) {
        const built = buildSkeleton({ pageSize, commit, txid, timestamp }, pages);
        if (built) {
          await this.#store.put(built.key, built.enc.bytes);
          this.skeleton = { key: built.key, size: built.enc.bytes.length, txid };
        }
      }
    } else this.plan.push(file);
    await this.writeHead();
    return txid;
  }

  /**
   * Compacts the plan's files after the snapshot into one file at `level`
   * (the newest image of every page they name), as Litestream's compaction does.
   */
  async compact(level: number): Promise<PublishedFile | undefined> {
    const deltas = this.plan.slice(1);
    if (deltas.length < 2) return undefined;
    const minTXID = deltas[0]!.minTXID;
    const maxTXID = deltas[deltas.length - 1]!.maxTXID;
    const pageSize = this.pageSize;
    const image = this.images.get(maxTXID)!;
    const before = this.images.get(minTXID - 1)!;
    const commit = pagesOf(image, pageSize);
    const lock = lockPgno(pageSize);
    const pages: { pgno: number; data: Uint8Array }[] = [];
    // Every page changed anywhere in the range, at its newest image.
    const changed = new Set<number>();
    for (let t = minTXID; t <= maxTXID; t++) {
      const a = this.images.get(t - 1)!;
      const b = this.images.get(t)!;
      for (let pgno = 1; pgno <= pagesOf(b, pageSize); pgno++) {
        const x = a.subarray((pgno - 1) * pageSize, pgno * pageSize);
        const y = b.subarray((pgno - 1) * pageSize, pgno * pageSize);
        if (x.length !== y.length || Buffer.compare(x, y) !== 0) changed.add(pgno);
      }
    }
    for (let pgno = 1; pgno <= commit; pgno++) {
      if (pgno === lock || !changed.has(pgno)) continue;
      pages.push({ pgno, data: image.subarray((pgno - 1) * pageSize, pgno * pageSize) });
    }
    const timestamp = this.times.get(maxTXID)!;
    const bytes = encodeLtx({
      header: {
        pageSize,
        commit,
        minTXID,
        maxTXID,
        timestamp,
        preApplyChecksum: databaseChecksum(before, pageSize),
      },
      pages,
      postApplyChecksum: databaseChecksum(image, pageSize),
    });
    const file = await this.#put(level, minTXID, maxTXID, bytes, timestamp);
    this.plan = [this.plan[0]!, file];
    await this.writeHead();
    return file;
  }

  /** Rewrites the head object from the current plan (no-op in Litestream layout). */
  async writeHead(): Promise<void> {
    if (!this.#head) return;
    const image = this.images.get(this.txid)!;
    const head: HeadObject = {
      format: "pagecast-head",
      version: 1,
      writerId: "scripted",
      generation: this.#generation,
      txid: this.txid,
      timestamp: this.times.get(this.txid)!,
      pageSize: this.pageSize,
      commit: pagesOf(image, this.pageSize),
      postApplyChecksum: null,
      files: this.plan,
    };
    if (this.skeleton && this.plan[0]?.maxTXID === this.skeleton.txid)
      head.skeleton = this.skeleton;
    if (this.#withPage1) {
      for (let i = this.plan.length - 1; i >= 0; i--) {
        const f = this.plan[i]!;
        const frame = this.#page1Frames.get(f.key);
        if (frame === null) continue;
        if (frame) head.page1 = { key: f.key, ...frame };
        break;
      }
    }
    await this.#store.put(HEAD_OBJECT_KEY, serializeHeadObject(head));
  }

  /** A read-only better-sqlite3 copy of the database as of `txid`. */
  primaryAt(txid: number): Database.Database {
    const image = this.images.get(txid);
    if (!image) throw new Error(`no image for TXID ${txid}`);
    return new Database(Buffer.from(image), { readonly: true });
  }

  close(): void {
    this.db.close();
  }

  async #put(
    level: number,
    minTXID: number,
    maxTXID: number,
    bytes: Uint8Array,
    timestamp: number,
  ): Promise<PublishedFile> {
    const key = ltxKey(level, minTXID, maxTXID);
    await this.#store.put(key, bytes);
    const first = decodeLtx(bytes).pageIndex[0];
    this.#page1Frames.set(
      key,
      first?.pgno === 1 ? { offset: first.offset, size: first.size } : null,
    );
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const varints = Number(view.getBigUint64(bytes.length - LTX_TRAILER_SIZE - 8));
    const indexSize = varints + 8;
    return {
      level,
      minTXID,
      maxTXID,
      key,
      size: bytes.length,
      indexOffset: bytes.length - LTX_TRAILER_SIZE - indexSize,
      indexSize,
      timestamp,
    };
  }
}

/** One recorded request. */
export interface RecordedCall {
  op: "get" | "head" | "list";
  key: string;
  conditional: boolean;
  range: GetOptions["range"];
  /** Logical clock values: a call depends on every call that ended before it started. */
  start: number;
  end: number;
  failed: boolean;
}

/**
 * Wraps a store and records each request with logical start/end times, so a
 * test can count requests and compute sequential depth (the longest chain of
 * requests each starting after the previous one ended).
 */
export class RecordingStore implements ObjectStore {
  calls: RecordedCall[] = [];
  #tick = 0;
  /** Called before each GET; may throw to inject faults, or mutate nothing. */
  beforeGet: ((key: string, options?: GetOptions) => void | Promise<void>) | undefined;
  /** Transforms GET bodies (fault injection). */
  mapBody:
    | ((key: string, body: Uint8Array, options: GetOptions | undefined) => Uint8Array)
    | undefined;

  constructor(readonly inner: ObjectStore) {}

  get url(): string {
    return this.inner.url;
  }

  reset(): void {
    this.calls = [];
  }

  /** Longest chain of dependent calls among `calls` (default: all recorded). */
  depth(calls: RecordedCall[] = this.calls): number {
    const sorted = [...calls].sort((a, b) => a.start - b.start);
    const depthOf = new Map<RecordedCall, number>();
    let max = 0;
    for (const c of sorted) {
      let d = 1;
      for (const p of sorted) {
        if (p.end < c.start) d = Math.max(d, (depthOf.get(p) ?? 1) + 1);
      }
      depthOf.set(c, d);
      max = Math.max(max, d);
    }
    return max;
  }

  async get(key: string, options?: GetOptions): Promise<GetResult> {
    const call: RecordedCall = {
      op: "get",
      key,
      conditional: options?.ifNoneMatch !== undefined,
      range: options?.range,
      start: ++this.#tick,
      end: Number.POSITIVE_INFINITY,
      failed: false,
    };
    this.calls.push(call);
    try {
      await this.beforeGet?.(key, options);
      const res = await this.inner.get(key, options);
      if (!res.notModified && this.mapBody) {
        return { ...res, body: this.mapBody(key, res.body, options) };
      }
      return res;
    } catch (err) {
      call.failed = true;
      throw err;
    } finally {
      call.end = ++this.#tick;
    }
  }

  async head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectMeta | undefined> {
    const call: RecordedCall = {
      op: "head",
      key,
      conditional: false,
      range: undefined,
      start: ++this.#tick,
      end: Number.POSITIVE_INFINITY,
      failed: false,
    };
    this.calls.push(call);
    try {
      return await this.inner.head(key, options);
    } finally {
      call.end = ++this.#tick;
    }
  }

  async list(options?: ListOptions): Promise<ListPage> {
    const call: RecordedCall = {
      op: "list",
      key: options?.prefix ?? "",
      conditional: false,
      range: undefined,
      start: ++this.#tick,
      end: Number.POSITIVE_INFINITY,
      failed: false,
    };
    this.calls.push(call);
    try {
      return await this.inner.list(options);
    } finally {
      call.end = ++this.#tick;
    }
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<PutResult> {
    return this.inner.put(key, body, options);
  }

  deleteMany(keys: string[], options?: { signal?: AbortSignal }): Promise<void> {
    return this.inner.deleteMany(keys, options);
  }

  counters(): StoreCounters {
    return this.inner.counters();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Rows of a better-sqlite3 query as arrays, with BLOBs as Uint8Array (to compare with the replica). */
export function primaryValues(
  db: Database.Database,
  sql: string,
  params: unknown[] = [],
): unknown[][] {
  const stmt = db.prepare(sql);
  if (!stmt.reader) return [];
  stmt.raw(true);
  stmt.safeIntegers(false);
  return (stmt.all(...params) as unknown[][]).map((row) =>
    row.map((v) => (Buffer.isBuffer(v) ? new Uint8Array(v) : v)),
  );
}

/** An app-like database whose trees interleave over the file (page size 1024: deep trees). */
export function fillScattered(db: Database.Database): void {
  db.exec(`
    CREATE TABLE customers(id INTEGER PRIMARY KEY, email TEXT NOT NULL, country TEXT NOT NULL, notes TEXT);
    CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INT NOT NULL, status TEXT NOT NULL,
                        created_at INT NOT NULL, total INT NOT NULL, memo TEXT);
    CREATE UNIQUE INDEX customers_email ON customers(email);
    CREATE INDEX orders_customer ON orders(customer_id);
    CREATE INDEX orders_created ON orders(created_at);
    CREATE INDEX orders_status ON orders(status);`);
  const addCustomer = db.prepare("INSERT INTO customers VALUES (?, ?, ?, ?)");
  const addOrder = db.prepare("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)");
  const setStatus = db.prepare("UPDATE orders SET status = ? WHERE id = ?");
  const drop = db.prepare("DELETE FROM orders WHERE id = ?");
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const statuses = ["pending", "paid", "shipped", "refunded"];
  let customers = 0;
  db.transaction(() => {
    for (let i = 1; i <= 6000; i++) {
      if (i % 4 === 1) {
        customers++;
        addCustomer.run(
          customers,
          `c${customers}@example.com`,
          i % 3 ? "FR" : "JP",
          "n".repeat(20 + (i % 80)),
        );
      }
      // A few orders carry a long memo: overflow pages.
      const memo = i % 53 === 0 ? `memo ${i} `.repeat(400) : null;
      addOrder.run(
        i,
        1 + Math.floor(rand() * customers),
        "pending",
        1_000_000 + i * 60,
        Math.floor(rand() * 10_000),
        memo,
      );
      if (i % 5 === 0)
        setStatus.run(statuses[Math.floor(rand() * 4)], Math.max(1, i - Math.floor(rand() * 100)));
      if (i % 17 === 0) drop.run(i - 9);
    }
  })();
}

/** A query over {@link fillScattered}'s tables. */
export interface ScatteredQuery {
  name: string;
  sql: string;
  params: unknown[];
}

/** One query of each analytic shape over {@link fillScattered}'s tables. */
export const SCATTERED_QUERIES: ScatteredQuery[] = [
  {
    name: "range + rowid lookups",
    sql: "SELECT count(*), sum(total) FROM orders WHERE created_at BETWEEN ? AND ?",
    params: [1_060_000, 1_250_000],
  },
  {
    name: "join by rowid",
    sql: "SELECT c.country, count(*), sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = ? GROUP BY 1 ORDER BY 1",
    params: ["refunded"],
  },
  {
    name: "GROUP BY over a non-covering index",
    sql: "SELECT status, count(*), sum(total) FROM orders INDEXED BY orders_status GROUP BY status",
    params: [],
  },
  {
    name: "ORDER BY ... LIMIT over a non-covering index",
    sql: "SELECT id, total FROM orders ORDER BY created_at DESC LIMIT 30",
    params: [],
  },
  {
    name: "scan with a filter (overflow)",
    sql: "SELECT count(*), sum(length(memo)) FROM orders WHERE memo IS NOT NULL AND total > ?",
    params: [100],
  },
];

/**
 * A {@link ScriptedWriter} (page size 1024, skeleton and page 1 in the head)
 * that published {@link fillScattered}'s database once. Close it when done.
 */
export async function publishScattered(store: ObjectStore): Promise<ScriptedWriter> {
  const writer = new ScriptedWriter(store, { pageSize: 1024, skeleton: true, page1: true });
  await writer.commit(() => fillScattered(writer.db));
  return writer;
}
