/**
 * The 100-byte header at the start of every SQLite database file
 * (https://www.sqlite.org/fileformat.html#the_database_header). Reader-safe.
 */
import { PagecastError } from "../errors.js";

/** Size of the SQLite database header in bytes. */
export const SQLITE_HEADER_SIZE = 100;

const MAGIC = "SQLite format 3\u0000";

/** The header fields pagecast needs. */
export interface SqliteHeaderInfo {
  pageSize: number;
  /** Database size in pages (byte 28), valid only when `sizeValid`. */
  pageCount: number;
  /** True when the in-header page count can be trusted (version-valid-for matches change counter). */
  sizeValid: boolean;
  /** File change counter (byte 24). */
  changeCounter: number;
  /** 1 = rollback journal, 2 = WAL (bytes 18/19). */
  writeVersion: number;
  readVersion: number;
}

/** Thrown when bytes are not a SQLite database header. */
export class SqliteHeaderError extends PagecastError {
  constructor(message: string) {
    super("SQLITE_HEADER_INVALID", message);
  }
}

/** Parses and validates the SQLite database header from the first 100 bytes of a file. */
export function parseSqliteHeader(bytes: Uint8Array): SqliteHeaderInfo {
  if (bytes.length < SQLITE_HEADER_SIZE) {
    throw new SqliteHeaderError(`not a SQLite database: only ${bytes.length} bytes`);
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC.charCodeAt(i)) {
      throw new SqliteHeaderError("not a SQLite database: bad magic string");
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, SQLITE_HEADER_SIZE);
  const rawPageSize = view.getUint16(16);
  // SQLite stores 65536 as 1 because it does not fit in 16 bits.
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new SqliteHeaderError(`not a SQLite database: invalid page size ${rawPageSize}`);
  }
  const changeCounter = view.getUint32(24);
  const pageCount = view.getUint32(28);
  const versionValidFor = view.getUint32(92);
  return {
    pageSize,
    pageCount,
    sizeValid: pageCount > 0 && versionValidFor === changeCounter,
    changeCounter,
    writeVersion: bytes[18]!,
    readVersion: bytes[19]!,
  };
}
