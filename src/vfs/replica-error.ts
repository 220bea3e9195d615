import { PagecastError } from "../errors.js";

/**
 * A deliberate failure of the replica reader.
 *
 * Codes:
 * - `REPLICA_CLOSED`: the replica was used after `close()`.
 * - `REPLICA_INVALID_ARGUMENT`: a bad option (`at`, cache size, ...).
 * - `REPLICA_EMPTY`: the store holds no replica to read.
 * - `REPLICA_INDEX_INVALID`: a page index, head or header that cannot describe the
 *   database (impossible frames, a page count beyond SQLite's limit or beyond the files).
 * - `REPLICA_PAGE_INVALID`: a fetched page frame failed validation (never served).
 * - `REPLICA_PAGE_MISSING`: the page index has no entry for a page inside the database.
 * - `REPLICA_PLAN_STALE`: a file named by the current plan is gone (retention); the replica re-plans.
 * - `REPLICA_TARGET_EXPIRED`: a pinned replica's TXID can no longer be read (retention removed
 *   files it needs, and no other files restore it); open a newer target.
 * - `REPLICA_WASM_MISSING`: no SQLite WebAssembly binary was supplied or registered.
 * - `REPLICA_WASM_INVALID`: the SQLite WebAssembly binary could not be loaded or compiled
 *   (beside the plain build, the async build compiles when a statement first needs it).
 * - `REPLICA_HYDRATION_FAILED`: hydration stopped (recorded in status; pages are then read on demand).
 * - `REPLICA_REQUEST_BUDGET`: a statement needed more storage requests than
 *   `maxRequestsPerQuery` allows (thrown as `RequestBudgetError`; nothing was sent past it).
 * - `REPLICA_CACHE_DIR_UNAVAILABLE`: `cacheDir` was given where there is no file system (use the Cache API).
 */
export class ReplicaError extends PagecastError {}

/**
 * A SQL statement failed inside the replica's SQLite. `sqliteCode` is SQLite's
 * (extended) result code; `code` is `SQLITE_<NAME>` of its primary code, e.g.
 * `SQLITE_IOERR` (storage trouble: worth trying elsewhere), `SQLITE_READONLY`
 * (a write on a replica), `SQLITE_ERROR` (bad SQL).
 */
export class ReplicaQueryError extends PagecastError {
  /** SQLite result code as returned by the engine. */
  readonly sqliteCode: number;

  constructor(sqliteCode: number, message: string, options?: { cause?: unknown }) {
    super(`SQLITE_${primaryCodeName(sqliteCode)}`, message, options);
    this.sqliteCode = sqliteCode;
  }

  /** True when the failure came from reading storage, not from the SQL itself. */
  get isIoError(): boolean {
    return (this.sqliteCode & 0xff) === 10;
  }
}

const PRIMARY_CODE_NAMES: Record<number, string> = {
  1: "ERROR",
  2: "INTERNAL",
  3: "PERM",
  4: "ABORT",
  5: "BUSY",
  6: "LOCKED",
  7: "NOMEM",
  8: "READONLY",
  9: "INTERRUPT",
  10: "IOERR",
  11: "CORRUPT",
  12: "NOTFOUND",
  13: "FULL",
  14: "CANTOPEN",
  15: "PROTOCOL",
  16: "EMPTY",
  17: "SCHEMA",
  18: "TOOBIG",
  19: "CONSTRAINT",
  20: "MISMATCH",
  21: "MISUSE",
  22: "NOLFS",
  23: "AUTH",
  24: "FORMAT",
  25: "RANGE",
  26: "NOTADB",
};

/** `ERROR`, `IOERR`, ... for a SQLite result code (extended codes map to their primary). */
export function primaryCodeName(code: number): string {
  return PRIMARY_CODE_NAMES[code & 0xff] ?? "UNKNOWN";
}
