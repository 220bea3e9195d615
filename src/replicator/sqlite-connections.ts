/**
 * The replicator's own SQLite connections (better-sqlite3), one per role:
 * - `main` takes the write lock (to seal the WAL before a checkpoint) and makes
 *   the tiny "bump" write that re-pins the WAL after one;
 * - a `pin` holds the long-running read transaction that stops anybody else from
 *   checkpointing past frames not yet replicated, or restarting the WAL. There
 *   are two, so that a new pin can begin before the old one ends
 *   ({@link SqliteConnections.renewPin}). They are read-only and closed last: a read-only connection never checkpoints or
 *   deletes the WAL when it closes, so closing the replicator (say, after
 *   the database file was swapped behind it) never writes stale WAL frames
 *   into the database file nor deletes a WAL by name;
 * - `ckpt` runs our checkpoints (a connection in a transaction cannot) and
 *   observes `PRAGMA data_version`, which moves when any other connection commits.
 */
import Database from "better-sqlite3";
import { ReplicatorError } from "./replicator-error.js";

type Db = Database.Database;

/** Result row of `PRAGMA wal_checkpoint`. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code === "SQLITE_BUSY_SNAPSHOT";
}

/** Opens and owns the three connections. */
export class SqliteConnections {
  readonly main: Db;
  readonly ckpt: Db;
  readonly #pins: [Db, Db];
  #active = 0;
  readonly pageSize: number;
  /** The journal mode the database was in when these connections switched it to WAL (unset: it was in WAL mode). */
  switchedFrom: string | undefined;
  #pinned = false;
  #locked = false;

  private constructor(main: Db, pins: [Db, Db], ckpt: Db, pageSize: number) {
    this.main = main;
    this.#pins = pins;
    this.ckpt = ckpt;
    this.pageSize = pageSize;
  }

  /** Opens the database, switches it to WAL mode, reads the page size. */
  static open(path: string, busyTimeoutMs: number): SqliteConnections {
    const opened: Db[] = [];
    try {
      const open = (readonly = false) => {
        const db = new Database(path, { fileMustExist: true, timeout: busyTimeoutMs, readonly });
        opened.push(db);
        // Our connections never checkpoint on their own; only controlled checkpoints run.
        db.pragma("wal_autocheckpoint = 0");
        return db;
      };
      const main = open();
      let before: unknown;
      try {
        before = main.pragma("journal_mode", { simple: true });
      } catch (err) {
        if ((err as { code?: unknown }).code === "SQLITE_NOTADB") {
          throw new ReplicatorError("DB_INVALID", `not a database: ${path}`, { cause: err });
        }
        throw err;
      }
      const mode = main.pragma("journal_mode = wal", { simple: true });
      if (mode !== "wal") {
        throw new ReplicatorError(
          "DB_NOT_WAL",
          `could not switch ${path} to WAL mode (mode is ${String(mode)})`,
        );
      }
      // A read in WAL mode opens (creating if need be) the WAL file, which the
      // replicator's descriptors need; it exists as long as connections live.
      main.prepare("SELECT count(*) FROM sqlite_master").get();
      const pageSize = Number(main.pragma("page_size", { simple: true }));
      const ckpt = open();
      const pins: [Db, Db] = [open(true), open(true)];
      const conns = new SqliteConnections(main, pins, ckpt, pageSize);
      if (before !== "wal") conns.switchedFrom = String(before);
      return conns;
    } catch (err) {
      for (const db of opened) db.close();
      throw err;
    }
  }

  /** Whether the pin read transaction is open. */
  get pinned(): boolean {
    return this.#pinned;
  }

  /** Opens the long-running read transaction (a SELECT is needed to really take the read lock). */
  takePin(): void {
    if (this.#pinned) return;
    beginRead(this.#pins[this.#active]!);
    this.#pinned = true;
  }

  /**
   * Moves the pin to a new read transaction, begun before the old one ends
   * (never a moment unpinned). A pin begun on a fully checkpointed WAL reads
   * the database file alone, which stops every checkpointer, so the
   * application's automatic checkpoints sort the WAL's frames on each commit
   * in vain; after our bump write the new one holds a read mark instead.
   */
  renewPin(): void {
    if (!this.#pinned) {
      this.takePin();
      return;
    }
    const next = 1 - this.#active;
    beginRead(this.#pins[next]!);
    const old = this.#pins[this.#active]!;
    this.#active = next;
    if (old.inTransaction) old.exec("COMMIT");
  }

  /** Ends the pin read transaction. */
  releasePin(): void {
    if (!this.#pinned) return;
    this.#pinned = false;
    const pin = this.#pins[this.#active]!;
    if (pin.inTransaction) pin.exec("COMMIT");
  }

  /** Takes the write lock (BEGIN IMMEDIATE); false when the database stayed busy. */
  lock(): boolean {
    if (this.#locked) return true;
    try {
      this.main.exec("BEGIN IMMEDIATE");
    } catch (err) {
      if (isBusy(err)) return false;
      throw err;
    }
    this.#locked = true;
    return true;
  }

  /**
   * Commits the locked transaction after rewriting `user_version` with its own
   * value: a no-op for the application, but it writes a WAL frame, which
   * restarts a fully checkpointed WAL and leaves a frame that makes the next
   * pin take a real read mark (a reader of a fully checkpointed WAL does not
   * stop a restart).
   */
  bumpAndUnlock(): void {
    if (!this.#locked) throw new ReplicatorError("INVALID_STATE", "bump without the write lock");
    try {
      const v = Number(this.main.pragma("user_version", { simple: true }));
      this.main.pragma(`user_version = ${v | 0}`);
      this.main.exec("COMMIT");
    } catch (err) {
      if (this.main.inTransaction) this.main.exec("ROLLBACK");
      throw err;
    } finally {
      this.#locked = false;
    }
  }

  /** Releases the write lock without writing. */
  unlock(): void {
    if (!this.#locked) return;
    this.#locked = false;
    if (this.main.inTransaction) this.main.exec("ROLLBACK");
  }

  /** `PRAGMA data_version` of the checkpoint connection. */
  dataVersion(): number {
    return Number(this.ckpt.pragma("data_version", { simple: true }));
  }

  /** Runs `PRAGMA wal_checkpoint(mode)`; BUSY is reported in the result, not thrown. */
  checkpoint(mode: "PASSIVE" | "TRUNCATE"): CheckpointResult {
    try {
      const row = this.ckpt.pragma(`wal_checkpoint(${mode})`) as CheckpointResult[];
      return row[0] ?? { busy: 1, log: -1, checkpointed: -1 };
    } catch (err) {
      if (isBusy(err)) return { busy: 1, log: -1, checkpointed: -1 };
      throw err;
    }
  }

  /**
   * Closes every connection (ending the pin and any lock). The read-only pin
   * goes last: while it is open the others cannot take the exclusive lock a
   * closing connection checkpoints under, and it cannot checkpoint itself.
   */
  close(): void {
    for (const db of [this.main, this.ckpt, ...this.#pins]) {
      try {
        if (db.inTransaction) db.exec("ROLLBACK");
      } catch {
        // Closing anyway.
      }
      db.close();
    }
    this.#pinned = false;
    this.#locked = false;
  }
}

/** Opens a read transaction (a SELECT is needed to really take the read lock). */
function beginRead(db: Db): void {
  db.exec("BEGIN");
  try {
    db.prepare("SELECT count(*) FROM sqlite_master").get();
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}
