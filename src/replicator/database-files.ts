/**
 * The one owner of a live database's files in this process: the replicator's
 * SQLite connections and the raw descriptors it reads pages and WAL frames
 * through. Nothing else in the writer opens, reads or closes these files.
 *
 * Why it matters (SQLite's "How To Corrupt An SQLite Database File", §2.2):
 * POSIX advisory locks belong to a process and a file, so closing *any*
 * descriptor of the database drops *every* lock the process holds on it,
 * its SQLite connections' included (and the application's, when it runs in
 * this process). Another process's connection then believes it is the last
 * one, checkpoints and deletes the WAL the replicator pins. So:
 * - descriptors are opened after the connections and never closed before
 *   them: the WAL's is closed after the connections (SQLite locks the
 *   database and -shm files, never the WAL itself);
 * - the database file's descriptor is never closed while the file still
 *   exists: it is parked in a process-wide table and reused by the next
 *   replicator of the same file (an application in this process may hold
 *   SQLite locks on it after the replicator closed). One descriptor per
 *   database file per process; closed once the file is unlinked.
 * - the paths are only ever `stat`ed to notice a file swapped behind the
 *   connections (a backup copied over, `-wal`/`-shm` deleted): the caller
 *   then closes everything and reopens.
 */
import { closeSync, fstatSync, openSync, type Stats, statSync } from "node:fs";
import { ReplicatorError } from "./replicator-error.js";
import { SqliteConnections } from "./sqlite-connections.js";

interface Identity {
  dev: number;
  ino: number;
}

const parked = new Map<string, { fd: number; users: number }>();
const keyOf = (s: Identity) => `${s.dev}:${s.ino}`;

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** A read descriptor of the database file, shared per file and never closed while the file exists. */
function acquireDbFd(path: string): { fd: number; id: Identity } {
  const st = statOrUndefined(path);
  const known = st ? parked.get(keyOf(st)) : undefined;
  if (st && known) {
    known.users++;
    return { fd: known.fd, id: { dev: st.dev, ino: st.ino } };
  }
  const fd = openSync(path, "r");
  const real = fstatSync(fd);
  const key = keyOf(real);
  const entry = parked.get(key);
  // Path swapped between stat and open onto a file already held: keep both
  // descriptors rather than close one (that would drop locks).
  if (entry) entry.users++;
  else parked.set(key, { fd, users: 1 });
  return { fd, id: { dev: real.dev, ino: real.ino } };
}

function releaseDbFd(fd: number, id: Identity): void {
  const key = keyOf(id);
  const entry = parked.get(key);
  if (entry && entry.fd === fd) entry.users = Math.max(0, entry.users - 1);
  if (!entry || entry.users > 0) return;
  // A file nobody can open by path any more: no lock on it can matter now.
  let unlinked = false;
  try {
    unlinked = fstatSync(fd).nlink === 0;
  } catch {
    unlinked = false;
  }
  if (!unlinked) return;
  parked.delete(key);
  closeSync(fd);
}

/** The replicator's connections and descriptors of one database (see the module comment). */
export class DatabaseFiles {
  readonly path: string;
  readonly conns: SqliteConnections;
  readonly pageSize: number;
  /** Read descriptor of the database file. */
  readonly db: number;
  /** Read descriptor of the WAL file. */
  readonly wal: number;
  readonly #dbId: Identity;
  readonly #walId: Identity;
  readonly #shmId: Identity | undefined;
  #closed = false;

  private constructor(
    path: string,
    conns: SqliteConnections,
    db: { fd: number; id: Identity },
    wal: { fd: number; id: Identity },
    shm: Identity | undefined,
  ) {
    this.path = path;
    this.conns = conns;
    this.pageSize = conns.pageSize;
    this.db = db.fd;
    this.wal = wal.fd;
    this.#dbId = db.id;
    this.#walId = wal.id;
    this.#shmId = shm;
  }

  /**
   * Opens the connections (switching the database to WAL mode), then the
   * descriptors. Throws `DB_MISSING` when the file does not exist, `DB_BUSY`
   * when another connection keeps it from being opened in WAL mode (retry later).
   */
  static open(path: string, busyTimeoutMs: number): DatabaseFiles {
    if (!statOrUndefined(path)) {
      throw new ReplicatorError("DB_MISSING", `database ${path} does not exist`);
    }
    let conns: SqliteConnections;
    try {
      conns = SqliteConnections.open(path, busyTimeoutMs);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code === "DB_NOT_WAL") {
        throw new ReplicatorError(
          "DB_BUSY",
          `database ${path} cannot be opened in WAL mode right now (${(err as Error).message}); retrying`,
          { cause: err },
        );
      }
      throw err;
    }
    let db: { fd: number; id: Identity } | undefined;
    let wal: number | undefined;
    try {
      // The connections read the database in WAL mode: SQLite created the WAL.
      db = acquireDbFd(path);
      wal = openSync(`${path}-wal`, "r");
      const walSt = fstatSync(wal);
      const shm = statOrUndefined(`${path}-shm`);
      const now = statOrUndefined(path);
      if (!now || now.ino !== db.id.ino || now.dev !== db.id.dev) {
        throw new ReplicatorError("DB_BUSY", `database ${path} was replaced while it was opened`);
      }
      return new DatabaseFiles(
        path,
        conns,
        db,
        { fd: wal, id: { dev: walSt.dev, ino: walSt.ino } },
        shm ? { dev: shm.dev, ino: shm.ino } : undefined,
      );
    } catch (err) {
      conns.close();
      if (wal !== undefined) closeSync(wal);
      if (db) releaseDbFd(db.fd, db.id);
      throw err;
    }
  }

  /** Size of the WAL file in bytes. */
  walSize(): number {
    return fstatSync(this.wal).size;
  }

  /** Size of the database file in bytes. */
  dbSize(): number {
    return fstatSync(this.db).size;
  }

  /**
   * What happened to the files behind the connections' back, if anything: a
   * database file deleted or replaced by another one, a WAL or -shm deleted or
   * replaced. SQLite itself never does that while connections are open, so
   * each means a file swap (say, a backup restored) that the connections do
   * not see: they must be closed and reopened.
   */
  changed(): { reason: string; missing?: boolean } | undefined {
    const db = statOrUndefined(this.path);
    if (!db) return { reason: "database file disappeared", missing: true };
    if (db.ino !== this.#dbId.ino || db.dev !== this.#dbId.dev) {
      return { reason: "database file replaced" };
    }
    const wal = statOrUndefined(`${this.path}-wal`);
    if (!wal || wal.ino !== this.#walId.ino || wal.dev !== this.#walId.dev) {
      return { reason: "WAL file deleted or replaced behind the replicator" };
    }
    const shm = statOrUndefined(`${this.path}-shm`);
    if (this.#shmId && (!shm || shm.ino !== this.#shmId.ino || shm.dev !== this.#shmId.dev)) {
      return { reason: "-shm file deleted or replaced behind the replicator" };
    }
    return undefined;
  }

  /** Closes the connections first, then the WAL descriptor; the database's is parked (see above). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conns.close();
    } finally {
      closeSync(this.wal);
      releaseDbFd(this.db, this.#dbId);
    }
  }
}
