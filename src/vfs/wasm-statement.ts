/**
 * Stepping and reading a prepared statement through the wa-sqlite module's
 * raw exports instead of its always-async API wrappers.
 *
 * With the Asyncify build, emscripten's `ccall` without the `async` option
 * returns the result itself when the call completed without suspending, and a
 * promise only when a VFS method suspended SQLite (a page fetch). Warm queries
 * (every page cached) therefore run start to finish synchronously: no promise
 * per step, no per-call name lookups or argument arrays, no string decoding of
 * column names per query.
 */

/** The parts of wa-sqlite's emscripten module used here. */
export interface WasmSqliteModule {
  /** Re-assigned when WebAssembly memory grows: always read it afresh. */
  readonly HEAPU8: Uint8Array;
  ccall(
    name: string,
    returnType: "number",
    argTypes: readonly string[],
    args: readonly number[],
  ): number | Promise<number>;
  getTempRet0(): number;
  UTF8ToString(ptr: number): string;
  _sqlite3_column_count(stmt: number): number;
  _sqlite3_column_type(stmt: number, i: number): number;
  _sqlite3_column_int64(stmt: number, i: number): number;
  _sqlite3_column_double(stmt: number, i: number): number;
  _sqlite3_column_text(stmt: number, i: number): number;
  _sqlite3_column_blob(stmt: number, i: number): number;
  _sqlite3_column_bytes(stmt: number, i: number): number;
  _sqlite3_column_name(stmt: number, i: number): number;
  _sqlite3_data_count(stmt: number): number;
  _sqlite3_bind_int(stmt: number, i: number, value: number): number;
  _sqlite3_bind_double(stmt: number, i: number, value: number): number;
  _sqlite3_bind_null(stmt: number, i: number): number;
  _sqlite3_bind_text(
    stmt: number,
    i: number,
    ptr: number,
    bytes: number,
    destructor: number,
  ): number;
  _sqlite3_malloc(bytes: number): number;
  _sqlite3_free(ptr: number): void;
  _sqlite3_bind_parameter_count(stmt: number): number;
  _sqlite3_bind_parameter_name(stmt: number, i: number): number;
  _sqlite3_stmt_status(stmt: number, op: number, reset: number): number;
  _sqlite3_errmsg(db: number): number;
  _sqlite3_get_autocommit(db: number): number;
  /** Plain build only: in the async build a direct call cannot suspend. */
  _sqlite3_step(stmt: number): number;
  /** Plain build only (see `_sqlite3_step`). */
  _sqlite3_reset(stmt: number): number;
  _sqlite3_stmt_readonly(stmt: number): number;
  _sqlite3_sql(stmt: number): number;
}

/** A value SQLite returns: INTEGER (bigint beyond 2^53), REAL, TEXT, BLOB, NULL. */
export type SqlValue = number | bigint | string | Uint8Array | null;

const SQLITE_INTEGER = 1;
const SQLITE_FLOAT = 2;
const SQLITE_TEXT = 3;
const SQLITE_BLOB = 4;
/** `SQLITE_STMTSTATUS_REPREPARE`: how often the statement was re-prepared (schema changes). */
const STMTSTATUS_REPREPARE = 5;

const STEP_ARGS = ["number"] as const;
const decoder = new TextDecoder();

/**
 * `sqlite3_step`: the result code now, or a promise of it when a VFS read
 * suspended SQLite (the caller must not enter the module until it settles).
 */
export function stepStatement(module: WasmSqliteModule, stmt: number): number | Promise<number> {
  return module.ccall("sqlite3_step", "number", STEP_ARGS, [stmt]);
}

/**
 * `sqlite3_step` for wa-sqlite's plain build, which never suspends: the raw
 * export, without `ccall`'s name lookup and argument conversion.
 */
export function stepStatementSync(module: WasmSqliteModule, stmt: number): number {
  return module._sqlite3_step(stmt);
}

/** `sqlite3_reset` for the plain build (see {@link stepStatementSync}). */
export function resetStatementSync(module: WasmSqliteModule, stmt: number): number {
  return module._sqlite3_reset(stmt);
}

/** `sqlite3_reset`, same contract as {@link stepStatement}. */
export function resetStatement(module: WasmSqliteModule, stmt: number): number | Promise<number> {
  return module.ccall("sqlite3_reset", "number", STEP_ARGS, [stmt]);
}

/** How often `stmt` was re-prepared (column names may have changed since). */
export function reprepareCount(module: WasmSqliteModule, stmt: number): number {
  return module._sqlite3_stmt_status(stmt, STMTSTATUS_REPREPARE, 0);
}

/** The connection's last error message. */
export function errorMessage(module: WasmSqliteModule, db: number): string {
  return module.UTF8ToString(module._sqlite3_errmsg(db));
}

/**
 * Whether running `stmt` may leave state behind on its connection that later
 * statements depend on: writes (temp tables), settings (PRAGMA), attached
 * databases. Errs on the side of true: every PRAGMA but the reporting ones
 * and bare reads of a few settings, every ATTACH and DETACH.
 */
export function changesConnectionState(module: WasmSqliteModule, stmt: number): boolean {
  if (module._sqlite3_stmt_readonly(stmt) === 0) return true;
  const sql = module.UTF8ToString(module._sqlite3_sql(stmt));
  const pragma = PRAGMA_STATEMENT.exec(sql);
  if (pragma) {
    const name = pragma[1]!.toLowerCase();
    if (pragma[2] === "=") return true;
    if (REPORTING_PRAGMAS.has(name)) return false;
    // Settings read back without a value; `name(value)` would set them.
    return pragma[2] !== undefined || !READABLE_SETTINGS.has(name);
  }
  return ATTACH_STATEMENT.test(sql);
}

/** Whitespace, semicolons and comments before a statement's first keyword. */
const LEADING = String.raw`(?:\s|;|--[^\n]*(?:\n|$)|/\*[\s\S]*?\*/)*`;
const PRAGMA_STATEMENT = new RegExp(
  String.raw`^${LEADING}PRAGMA\s+(?:\w+\s*\.\s*)?(\w+)\s*([=(])?`,
  "i",
);
const ATTACH_STATEMENT = new RegExp(String.raw`^${LEADING}(?:ATTACH|DETACH)\b`, "i");

/** PRAGMAs that only report; an argument names what to report on. */
const REPORTING_PRAGMAS = new Set([
  "collation_list",
  "compile_options",
  "data_version",
  "database_list",
  "foreign_key_check",
  "foreign_key_list",
  "freelist_count",
  "function_list",
  "index_info",
  "index_list",
  "index_xinfo",
  "integrity_check",
  "module_list",
  "page_count",
  "pragma_list",
  "quick_check",
  "table_info",
  "table_list",
  "table_xinfo",
]);

/** Settings whose bare form (no `=`, no argument) only reads them. */
const READABLE_SETTINGS = new Set([
  "application_id",
  "page_size",
  "schema_version",
  "user_version",
]);

/** The statement's column names. */
export function columnNames(module: WasmSqliteModule, stmt: number): string[] {
  const n = module._sqlite3_column_count(stmt);
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(module.UTF8ToString(module._sqlite3_column_name(stmt, i)));
  return names;
}

/** The parameter names of `stmt` by position (index 0 is parameter 1; `null` for plain `?`). */
export function parameterNames(module: WasmSqliteModule, stmt: number): (string | null)[] {
  const n = module._sqlite3_bind_parameter_count(stmt);
  const names: (string | null)[] = [];
  for (let i = 1; i <= n; i++) {
    const ptr = module._sqlite3_bind_parameter_name(stmt, i);
    names.push(ptr === 0 ? null : module.UTF8ToString(ptr));
  }
  return names;
}

/** Decodes UTF-8 text; short ASCII (most keys and names) without a TextDecoder call. */
function decodeText(heap: Uint8Array, ptr: number, n: number): string {
  if (n <= 32) {
    let s = "";
    for (let i = 0; i < n; i++) {
      const b = heap[ptr + i]!;
      if (b >= 0x80) return decoder.decode(heap.subarray(ptr, ptr + n));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decoder.decode(heap.subarray(ptr, ptr + n));
}

/**
 * The current row as an array. Integers beyond the safe range become bigint
 * (as wa-sqlite's API returns them), every integer with `bigints`; TEXT is
 * decoded with its byte length and BLOBs are copied out of WebAssembly memory.
 */
export function readRow(module: WasmSqliteModule, stmt: number, bigints = false): SqlValue[] {
  const n = module._sqlite3_data_count(stmt);
  const row = new Array<SqlValue>(n);
  for (let i = 0; i < n; i++) {
    switch (module._sqlite3_column_type(stmt, i)) {
      case SQLITE_INTEGER: {
        const lo = module._sqlite3_column_int64(stmt, i);
        const hi = module.getTempRet0();
        row[i] =
          bigints || hi > 0x1fffff || hi < -0x200000
            ? (BigInt(hi) << 32n) | (BigInt(lo) & 0xffffffffn)
            : hi * 0x100000000 + (lo >>> 0);
        break;
      }
      case SQLITE_FLOAT:
        row[i] = module._sqlite3_column_double(stmt, i);
        break;
      case SQLITE_TEXT: {
        const ptr = module._sqlite3_column_text(stmt, i);
        const bytes = module._sqlite3_column_bytes(stmt, i);
        row[i] = decodeText(module.HEAPU8, ptr, bytes);
        break;
      }
      case SQLITE_BLOB: {
        const ptr = module._sqlite3_column_blob(stmt, i);
        const bytes = module._sqlite3_column_bytes(stmt, i);
        row[i] = bytes === 0 ? new Uint8Array(0) : module.HEAPU8.slice(ptr, ptr + bytes);
        break;
      }
      default:
        row[i] = null;
    }
  }
  return row;
}

/** `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the call returns. */
const SQLITE_TRANSIENT = -1;
const SQLITE_NOMEM = 7;
/** Largest scratch buffer kept for binding TEXT. */
const MAX_SCRATCH_BYTES = 1024 * 1024;
const encoder = new TextEncoder();

/**
 * Binds TEXT through one reusable buffer in WebAssembly memory (SQLite copies
 * it), instead of a malloc, an encode into a fresh array and a free per value.
 * The byte length is passed, so embedded NULs survive.
 */
export class TextBinder {
  readonly #module: WasmSqliteModule;
  #ptr = 0;
  #capacity = 0;

  constructor(module: WasmSqliteModule) {
    this.#module = module;
  }

  /** `sqlite3_bind_text` of `value` to parameter `i`; returns SQLite's code. */
  bind(stmt: number, i: number, value: string): number {
    const m = this.#module;
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const worst = value.length * 3;
    if (worst > MAX_SCRATCH_BYTES) return this.#bindLarge(stmt, i, value);
    if (worst > this.#capacity && !this.#grow(worst)) return SQLITE_NOMEM;
    const heap = m.HEAPU8;
    const ptr = this.#ptr;
    let n = 0;
    // Short ASCII (most keys) without an encoder call.
    if (value.length <= 64) {
      for (; n < value.length; n++) {
        const c = value.charCodeAt(n);
        if (c >= 0x80) break;
        heap[ptr + n] = c;
      }
    }
    if (n < value.length) {
      n = encoder.encodeInto(value, heap.subarray(ptr, ptr + this.#capacity)).written;
    }
    return m._sqlite3_bind_text(stmt, i, ptr, n, SQLITE_TRANSIENT);
  }

  /** A value too large to keep a scratch buffer for: an exact, temporary allocation. */
  #bindLarge(stmt: number, i: number, value: string): number {
    const m = this.#module;
    const bytes = encoder.encode(value);
    const ptr = m._sqlite3_malloc(Math.max(1, bytes.length));
    if (ptr === 0) return SQLITE_NOMEM;
    try {
      m.HEAPU8.set(bytes, ptr);
      return m._sqlite3_bind_text(stmt, i, ptr, bytes.length, SQLITE_TRANSIENT);
    } finally {
      m._sqlite3_free(ptr);
    }
  }

  /** Releases the buffer. */
  free(): void {
    if (this.#ptr !== 0) this.#module._sqlite3_free(this.#ptr);
    this.#ptr = 0;
    this.#capacity = 0;
  }

  /** False when WebAssembly memory is exhausted. */
  #grow(bytes: number): boolean {
    const capacity = Math.max(256, 2 ** Math.ceil(Math.log2(bytes)));
    const ptr = this.#module._sqlite3_malloc(capacity);
    if (ptr === 0) return false;
    this.free();
    this.#ptr = ptr;
    this.#capacity = capacity;
    return true;
  }
}
