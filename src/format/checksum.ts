import { CHECKSUM_FLAG, MAX_PAGE_SIZE, MIN_PAGE_SIZE, PENDING_BYTE } from "./constants.js";
import { Crc64 } from "./crc64.js";
import { invalidArgument } from "./ltx-error.js";

/** True when `size` is a valid SQLite page size (a power of two in 512..65536). */
export function isValidPageSize(size: unknown): size is number {
  return (
    typeof size === "number" &&
    Number.isInteger(size) &&
    size >= MIN_PAGE_SIZE &&
    size <= MAX_PAGE_SIZE &&
    (size & (size - 1)) === 0
  );
}

/** Page number of SQLite's lock page for `pageSize`: (0x40000000 / pageSize) + 1. */
export function lockPgno(pageSize: number): number {
  if (!isValidPageSize(pageSize)) throw invalidArgument(`invalid page size: ${String(pageSize)}`);
  return PENDING_BYTE / pageSize + 1;
}

function assertPage(pgno: number, page: Uint8Array): void {
  if (!Number.isInteger(pgno) || pgno < 1 || pgno > 0xffffffff) {
    throw invalidArgument(`invalid page number: ${String(pgno)}`);
  }
  if (!(page instanceof Uint8Array) || !isValidPageSize(page.length)) {
    throw invalidArgument("page must be a Uint8Array whose length is a valid page size");
  }
}

const scratch = new Crc64();

/**
 * Computes the two uint32 halves of a page checksum into `out` (`out[0]` = high
 * half with bit 63 set, `out[1]` = low half). Internal fast path: no BigInt.
 */
export function pageChecksumInto(pgno: number, page: Uint8Array, out: Uint32Array): void {
  scratch.reset();
  scratch.updateU32BE(pgno).update(page);
  out[0] = (scratch.hi | 0x80000000) >>> 0;
  out[1] = scratch.lo;
}

/** Litestream's page checksum: CRC-64/ISO(pgno as BE u32 ‖ page) with bit 63 set. */
export function pageChecksum(pgno: number, page: Uint8Array): bigint {
  assertPage(pgno, page);
  pageChecksumInto(pgno, page, PAIR);
  return (BigInt(PAIR[0]!) << 32n) | BigInt(PAIR[1]!);
}

const PAIR = new Uint32Array(2);

/**
 * Rolling database checksum as Litestream tracks it: bit 63 | XOR of the page
 * checksums of every page except the lock page. XOR makes it order-free and
 * lets a page's old contribution be removed when it is overwritten. The
 * checksum of an empty database is {@link CHECKSUM_FLAG}.
 */
export class DatabaseChecksum {
  #hi = 0;
  #lo = 0;
  readonly #pair = new Uint32Array(2);

  /** Starts from a known database checksum (default: empty database). */
  constructor(initial: bigint = CHECKSUM_FLAG) {
    this.value = initial;
  }

  /** Adds a page's contribution. The lock page (derived from `page.length`) is ignored. */
  add(pgno: number, page: Uint8Array): void {
    this.#toggle(pgno, page);
  }

  /** Removes a page's earlier contribution (XOR is its own inverse). */
  remove(pgno: number, page: Uint8Array): void {
    this.#toggle(pgno, page);
  }

  /** XORs a precomputed page checksum (as returned by {@link pageChecksum}) in or out. */
  xor(pageChecksumValue: bigint): void {
    const v = BigInt.asUintN(64, pageChecksumValue);
    this.#hi = (this.#hi ^ Number(v >> 32n)) >>> 0;
    this.#lo = (this.#lo ^ Number(v & 0xffffffffn)) >>> 0;
  }

  #toggle(pgno: number, page: Uint8Array): void {
    assertPage(pgno, page);
    if (pgno === PENDING_BYTE / page.length + 1) return;
    pageChecksumInto(pgno, page, this.#pair);
    this.#hi = (this.#hi ^ this.#pair[0]!) >>> 0;
    this.#lo = (this.#lo ^ this.#pair[1]!) >>> 0;
  }

  /** The current database checksum (always has bit 63 set). */
  get value(): bigint {
    return (BigInt((this.#hi | 0x80000000) >>> 0) << 32n) | BigInt(this.#lo);
  }

  /** Replaces the current value. */
  set value(v: bigint) {
    const u = BigInt.asUintN(64, v);
    this.#hi = Number(u >> 32n);
    this.#lo = Number(u & 0xffffffffn);
  }
}

/**
 * Database checksum of a whole SQLite file image (`db.length` a multiple of
 * `pageSize`), as Litestream computes it for a restored database.
 */
export function databaseChecksum(db: Uint8Array, pageSize: number): bigint {
  if (!isValidPageSize(pageSize)) throw invalidArgument(`invalid page size: ${String(pageSize)}`);
  if (!(db instanceof Uint8Array) || db.length % pageSize !== 0) {
    throw invalidArgument("database length must be a multiple of the page size");
  }
  const sum = new DatabaseChecksum();
  const n = db.length / pageSize;
  for (let pgno = 1; pgno <= n; pgno++) {
    sum.add(pgno, db.subarray((pgno - 1) * pageSize, pgno * pageSize));
  }
  return sum.value;
}
