/**
 * The wa-sqlite async VFS that presents a replica as a read-only database
 * file. SQLite's SHARED lock pins one version (taken when the lock goes from
 * NONE to SHARED, dropped when it returns to NONE), so a read transaction sees
 * exactly one version whatever the replica polls meanwhile. Connections run in
 * exclusive locking mode: the lock, and with it the version and SQLite's page
 * cache, is kept between transactions until the connection lets go of it
 * because the replica moved on (`ReplicaConnection.releaseVersion`). Only
 * reads of pages not cached yet suspend SQLite; every other call answers
 * synchronously. Temporary files (sorters, temp tables) live in memory. Every
 * write fails with SQLITE_READONLY.
 *
 * Registered in wa-sqlite's plain (synchronous) build, the VFS cannot
 * suspend: a read of a page not cached yet starts its fetch, records it as a
 * miss and fails with SQLITE_IOERR_READ; the caller waits for the misses and
 * runs the statement again (see `HybridConnection`).
 */

import { FacadeVFS } from "@journeyapps/wa-sqlite/src/FacadeVFS.js";
import * as VFS from "@journeyapps/wa-sqlite/src/VFS.js";
import type { StatementContext } from "./bulk-fetch.js";
import { AccessTracker } from "./read-ahead.js";
import type { ReplicaCore, ReplicaVersion } from "./replica-core.js";

interface MainFile {
  kind: "main";
  lock: number;
  /** The version this file's current read transaction sees. */
  pinned: ReplicaVersion | undefined;
  tracker: AccessTracker;
  trackerSeq: number;
}

interface TempFile {
  kind: "temp";
  name: string | null;
  data: Uint8Array;
  size: number;
}

type OpenFile = MainFile | TempFile;

/** Largest temporary file kept in memory (temp_store=memory spills nowhere else). */
const MAX_TEMP_FILE_BYTES = 1024 * 1024 * 1024;

/** A VFS serving one replica's database file (registered once per wa-sqlite module). */
export class ReplicaVfs extends FacadeVFS {
  readonly #core: ReplicaCore;
  readonly #dbName: string;
  readonly #files = new Map<number, OpenFile>();
  readonly #readAheadPages: number;
  /** False in the plain build: reads of pages not cached fail and are recorded as misses. */
  readonly #suspend: boolean;
  /** The statement the connection runs (bulk fetching decides on its misses). */
  readonly #statement: StatementContext | undefined;
  /** Fetches of pages whose reads failed since the last {@link takeMisses} (plain build). */
  #misses: Promise<unknown>[] = [];
  /** The last failure of a read, so the query layer can report the cause of SQLITE_IOERR. */
  lastError: unknown;

  constructor(
    name: string,
    module: object,
    core: ReplicaCore,
    dbName: string,
    options: { readAheadPages: number; suspend?: boolean; statement?: StatementContext },
  ) {
    super(name, module);
    this.#core = core;
    this.#dbName = dbName;
    this.#readAheadPages = options.readAheadPages;
    this.#suspend = options.suspend ?? true;
    this.#statement = options.statement;
  }

  /**
   * The fetches of pages that reads failed on (plain build) since the last
   * call, or `undefined` when none did. Wait for them, then run the failed
   * statement again. Their rejections are handled (awaiting them still sees them).
   */
  takeMisses(): Promise<unknown>[] | undefined {
    if (this.#misses.length === 0) return undefined;
    const misses = this.#misses;
    this.#misses = [];
    return misses;
  }

  /** True when reads failed on pages not cached (plain build) since the last {@link takeMisses}. */
  get missed(): boolean {
    return this.#misses.length > 0;
  }

  /**
   * The version SQLite's read lock on the database file pins, if it holds
   * one (in exclusive locking mode, also between transactions).
   */
  get heldVersion(): ReplicaVersion | undefined {
    for (const f of this.#files.values()) if (f.kind === "main" && f.pinned) return f.pinned;
    return undefined;
  }

  override jOpen(
    filename: string | null,
    pFile: number,
    flags: number,
    pOutFlags: DataView,
  ): number {
    if (flags & VFS.SQLITE_OPEN_MAIN_DB) {
      if (filename !== this.#dbName) return VFS.SQLITE_CANTOPEN;
      this.#files.set(pFile, {
        kind: "main",
        lock: VFS.SQLITE_LOCK_NONE,
        pinned: undefined,
        tracker: new AccessTracker({ maxPages: this.#readAheadPages }),
        trackerSeq: -1,
      });
      const out =
        (flags & ~(VFS.SQLITE_OPEN_READWRITE | VFS.SQLITE_OPEN_CREATE)) | VFS.SQLITE_OPEN_READONLY;
      pOutFlags.setInt32(0, out, true);
      return VFS.SQLITE_OK;
    }
    // Journals and WALs of the replica would only exist for writing.
    if (
      flags &
      (VFS.SQLITE_OPEN_MAIN_JOURNAL | VFS.SQLITE_OPEN_WAL | VFS.SQLITE_OPEN_SUPER_JOURNAL)
    ) {
      return VFS.SQLITE_READONLY;
    }
    this.#files.set(pFile, { kind: "temp", name: filename, data: new Uint8Array(0), size: 0 });
    pOutFlags.setInt32(0, flags, true);
    return VFS.SQLITE_OK;
  }

  override jDelete(_filename: string, _syncDir: number): number {
    return VFS.SQLITE_OK;
  }

  override jAccess(filename: string, _flags: number, pResOut: DataView): number {
    // No journal, WAL or other file ever exists next to a replica.
    pResOut.setInt32(0, filename === this.#dbName ? 1 : 0, true);
    return VFS.SQLITE_OK;
  }

  override jClose(pFile: number): number {
    this.#files.delete(pFile);
    return VFS.SQLITE_OK;
  }

  /**
   * Only xRead may suspend SQLite (a page not cached yet). Every other method
   * answers synchronously: an async method costs an Asyncify unwind and rewind
   * of the whole wasm stack per call.
   */
  override hasAsyncMethod(methodName: string): boolean {
    return this.#suspend && methodName === "xRead";
  }

  /**
   * Registered as async, but a read served from the page cache completes
   * synchronously: wa-sqlite's relay hands the result to Asyncify's
   * `handleAsync`, which only unwinds the stack when the returned thenable
   * settles later. A real promise (a page fetch) suspends SQLite as before.
   * In the plain build the result is always a number. Never throws (a throw
   * would cross into wasm).
   */
  override jRead(pFile: number, pData: Uint8Array, iOffset: number): SyncOrAsyncResult | number {
    let rc: number | Promise<number>;
    try {
      rc = this.#read(pFile, pData, iOffset);
    } catch (err) {
      this.lastError = err;
      rc = VFS.SQLITE_IOERR_READ;
    }
    if (typeof rc !== "number") return rc;
    return this.#suspend ? settled(rc) : rc;
  }

  #read(pFile: number, pData: Uint8Array, iOffset: number): number | Promise<number> {
    const file = this.#files.get(pFile);
    if (!file) return VFS.SQLITE_IOERR_READ;
    if (file.kind === "temp") return readTemp(file, pData, iOffset);
    const version = file.pinned ?? this.#core.current;
    if (file.trackerSeq !== version.seq) {
      file.tracker.reset();
      file.trackerSeq = version.seq;
    }
    return this.#readMain(file, version, pData, iOffset, 0);
  }

  /** Copies pages into `pData` from `done` on; continues asynchronously at the first page not cached. */
  #readMain(
    file: MainFile,
    version: ReplicaVersion,
    pData: Uint8Array,
    iOffset: number,
    done: number,
  ): number | Promise<number> {
    const { pageSize, commit } = version.index;
    const total = pData.byteLength;
    while (done < total) {
      const offset = iOffset + done;
      const pgno = Math.floor(offset / pageSize) + 1;
      if (pgno > commit) {
        pData.fill(0, done, total);
        return VFS.SQLITE_IOERR_SHORT_READ;
      }
      const inPage = offset - (pgno - 1) * pageSize;
      const n = Math.min(pageSize - inPage, total - done);
      const page = this.#core.readPage(version, pgno, file.tracker, this.#statement);
      if (page instanceof Promise) {
        if (!this.#suspend) {
          // Nothing may touch pData once this returns: SQLite reuses the buffer.
          page.catch(() => {});
          this.#misses.push(page);
          return VFS.SQLITE_IOERR_READ;
        }
        return this.#readAfter(page, file, version, pData, iOffset, done, inPage, n);
      }
      pData.set(page.subarray(inPage, inPage + n), done);
      done += n;
    }
    return VFS.SQLITE_OK;
  }

  async #readAfter(
    pending: Promise<Uint8Array>,
    file: MainFile,
    version: ReplicaVersion,
    pData: Uint8Array,
    iOffset: number,
    done: number,
    inPage: number,
    n: number,
  ): Promise<number> {
    try {
      const page = await pending;
      // Set after the await: the view re-reads WebAssembly memory, which may have grown.
      pData.set(page.subarray(inPage, inPage + n), done);
      return await this.#readMain(file, version, pData, iOffset, done + n);
    } catch (err) {
      this.lastError = err;
      return VFS.SQLITE_IOERR_READ;
    }
  }

  override jWrite(pFile: number, pData: Uint8Array, iOffset: number): number {
    const file = this.#files.get(pFile);
    if (!file || file.kind === "main") return VFS.SQLITE_READONLY;
    return writeTemp(file, pData, iOffset);
  }

  override jTruncate(pFile: number, size: number): number {
    const file = this.#files.get(pFile);
    if (!file || file.kind === "main") return VFS.SQLITE_READONLY;
    file.size = Math.min(file.size, size);
    return VFS.SQLITE_OK;
  }

  override jSync(_pFile: number, _flags: number): number {
    return VFS.SQLITE_OK;
  }

  override jFileSize(pFile: number, pSize: DataView): number {
    const file = this.#files.get(pFile);
    if (!file) return VFS.SQLITE_IOERR_FSTAT;
    let size: number;
    if (file.kind === "temp") size = file.size;
    else {
      const index = (file.pinned ?? this.#core.current).index;
      size = index.commit * index.pageSize;
    }
    pSize.setBigInt64(0, BigInt(size), true);
    return VFS.SQLITE_OK;
  }

  // Synchronous on purpose (an async VFS method costs an Asyncify unwind per
  // call): the replica polls before a transaction starts, outside SQLite.
  override jLock(pFile: number, lockType: number): number {
    const file = this.#files.get(pFile);
    if (!file || file.kind === "temp") return VFS.SQLITE_OK;
    if (lockType > VFS.SQLITE_LOCK_SHARED) return VFS.SQLITE_READONLY;
    if (file.lock === VFS.SQLITE_LOCK_NONE && lockType === VFS.SQLITE_LOCK_SHARED) {
      try {
        // A new read transaction: pin the newest version until the lock drops to NONE.
        file.pinned = this.#core.current;
      } catch (err) {
        this.lastError = err;
        return VFS.SQLITE_IOERR_LOCK;
      }
    }
    file.lock = lockType;
    return VFS.SQLITE_OK;
  }

  override jUnlock(pFile: number, lockType: number): number {
    const file = this.#files.get(pFile);
    if (!file || file.kind === "temp") return VFS.SQLITE_OK;
    file.lock = lockType;
    if (lockType === VFS.SQLITE_LOCK_NONE) file.pinned = undefined;
    return VFS.SQLITE_OK;
  }

  override jCheckReservedLock(_pFile: number, pResOut: DataView): number {
    pResOut.setInt32(0, 0, true);
    return VFS.SQLITE_OK;
  }

  override jFileControl(_pFile: number, _op: number, _pArg: DataView): number {
    return VFS.SQLITE_NOTFOUND;
  }

  override jDeviceCharacteristics(_pFile: number): number {
    return 0;
  }
}

/** What jRead returns: a result now (a thenable settling synchronously) or later. */
type SyncOrAsyncResult = Promise<number> | Settled;

/** A thenable that calls back synchronously: Asyncify then never unwinds. */
class Settled {
  constructor(readonly rc: number) {}
  // biome-ignore lint/suspicious/noThenProperty: a thenable that settles synchronously is the point (see jRead).
  then(resolve: (rc: number) => void): void {
    resolve(this.rc);
  }
}

const SETTLED = new Map<number, Settled>();

function settled(rc: number): Settled {
  let s = SETTLED.get(rc);
  if (!s) {
    s = new Settled(rc);
    SETTLED.set(rc, s);
  }
  return s;
}

function readTemp(file: TempFile, pData: Uint8Array, iOffset: number): number {
  const n = pData.byteLength;
  const available = Math.max(0, Math.min(n, file.size - iOffset));
  if (available > 0) pData.set(file.data.subarray(iOffset, iOffset + available), 0);
  if (available < n) {
    pData.fill(0, available, n);
    return VFS.SQLITE_IOERR_SHORT_READ;
  }
  return VFS.SQLITE_OK;
}

function writeTemp(file: TempFile, pData: Uint8Array, iOffset: number): number {
  const end = iOffset + pData.byteLength;
  if (end > MAX_TEMP_FILE_BYTES) return VFS.SQLITE_FULL;
  if (end > file.data.length) {
    const grown = new Uint8Array(
      Math.max(end, Math.min(MAX_TEMP_FILE_BYTES, file.data.length * 2)),
    );
    grown.set(file.data.subarray(0, file.size));
    file.data = grown;
  }
  file.data.set(pData.subarray(0, pData.byteLength), iOffset);
  file.size = Math.max(file.size, end);
  return VFS.SQLITE_OK;
}
