/**
 * Just enough of SQLite's b-tree page format to guess which pages a query will
 * want next (https://www.sqlite.org/fileformat.html#b_tree_pages). Page bytes
 * come from storage and are untrusted: every function bounds-checks and returns
 * `undefined` rather than throwing, since a wrong guess only costs a prefetch.
 */

/** Interior index b-tree page. */
export const PAGE_TYPE_INTERIOR_INDEX = 0x02;
/** Interior table b-tree page. */
export const PAGE_TYPE_INTERIOR_TABLE = 0x05;
/** Leaf index b-tree page. */
export const PAGE_TYPE_LEAF_INDEX = 0x0a;
/** Leaf table b-tree page. */
export const PAGE_TYPE_LEAF_TABLE = 0x0d;

/** Offset of the b-tree header within a page (page 1 starts with the 100-byte database header). */
function headerOffset(pgno: number): number {
  return pgno === 1 ? 100 : 0;
}

/** The b-tree page type byte, or `undefined` when the page is not a b-tree page. */
export function btreePageType(page: Uint8Array, pgno: number): number | undefined {
  const t = page[headerOffset(pgno)];
  return t === PAGE_TYPE_INTERIOR_INDEX ||
    t === PAGE_TYPE_INTERIOR_TABLE ||
    t === PAGE_TYPE_LEAF_INDEX ||
    t === PAGE_TYPE_LEAF_TABLE
    ? t
    : undefined;
}

/** True for interior (0x02/0x05) pages. */
export function isInteriorPage(page: Uint8Array, pgno: number): boolean {
  const t = page[headerOffset(pgno)];
  return t === PAGE_TYPE_INTERIOR_INDEX || t === PAGE_TYPE_INTERIOR_TABLE;
}

/**
 * The child page numbers an interior page names, left to right (cells, then the
 * right-most pointer). `undefined` when the page is not a well-formed interior
 * page. Children outside `1..maxPgno` are dropped.
 */
export function interiorChildren(
  page: Uint8Array,
  pgno: number,
  maxPgno: number,
): number[] | undefined {
  if (!isInteriorPage(page, pgno)) return undefined;
  const h = headerOffset(pgno);
  if (h + 12 > page.length) return undefined;
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const cells = view.getUint16(h + 3);
  if (h + 12 + cells * 2 > page.length) return undefined;
  const out: number[] = [];
  for (let i = 0; i < cells; i++) {
    const cellOffset = view.getUint16(h + 12 + i * 2);
    if (cellOffset + 4 > page.length) return undefined;
    const child = view.getUint32(cellOffset);
    if (child >= 1 && child <= maxPgno) out.push(child);
  }
  const right = view.getUint32(h + 8);
  if (right >= 1 && right <= maxPgno) out.push(right);
  return out;
}

/** Reads a SQLite varint at `pos`; `undefined` when it runs past `end`. */
function readVarint(
  page: Uint8Array,
  pos: number,
  end: number,
): [value: number, next: number] | undefined {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    if (pos + i >= end) return undefined;
    const b = page[pos + i]!;
    if (i === 8) return [value * 256 + b, pos + 9];
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) return [value, pos + i + 1];
  }
  return undefined;
}

/**
 * Offsets of the cells of a leaf page of one of `types`, after checking
 * that the cell pointer array fits the page; `undefined` otherwise.
 */
function leafCells(page: Uint8Array, pgno: number, types: readonly number[]): number[] | undefined {
  const h = headerOffset(pgno);
  if (!types.includes(page[h]!) || h + 8 > page.length) return undefined;
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const cells = view.getUint16(h + 3);
  if (h + 8 + cells * 2 > page.length) return undefined;
  const out: number[] = [];
  for (let i = 0; i < cells; i++) out.push(view.getUint16(h + 8 + i * 2));
  return out;
}

/** Size in bytes of a record value with the given serial type. */
function serialTypeSize(t: number): number {
  if (t <= 4) return t;
  if (t === 5) return 6;
  if (t === 6 || t === 7) return 8;
  if (t < 12) return 0;
  return Math.floor((t - 12) / 2);
}

/** Reads a big-endian integer value of serial type 1..6, or `undefined`. */
function readIntValue(page: Uint8Array, pos: number, t: number): number | undefined {
  if (t === 8) return 0;
  if (t === 9) return 1;
  if (t < 1 || t > 6) return undefined;
  const size = serialTypeSize(t);
  if (pos + size > page.length) return undefined;
  let v = 0;
  for (let i = 0; i < size; i++) v = v * 256 + page[pos + i]!;
  return v;
}

/**
 * Root page numbers of the tables and indexes described by the cells of a
 * `sqlite_schema` table-leaf page (page 1, or a schema leaf below it). Cells
 * whose record does not fit the page locally are skipped.
 */
export function schemaRootPages(page: Uint8Array, pgno: number, maxPgno: number): number[] {
  const roots: number[] = [];
  for (const cell of leafCells(page, pgno, [PAGE_TYPE_LEAF_TABLE]) ?? []) {
    const payloadLen = readVarint(page, cell, page.length);
    if (!payloadLen) continue;
    const rowid = readVarint(page, payloadLen[1], page.length);
    if (!rowid) continue;
    const recordStart = rowid[1];
    const headerLen = readVarint(page, recordStart, page.length);
    if (!headerLen) continue;
    const headerEnd = recordStart + headerLen[0];
    if (headerEnd > page.length) continue;
    // Columns: type, name, tbl_name, rootpage, sql.
    const types: number[] = [];
    let pos = headerLen[1];
    while (pos < headerEnd && types.length < 4) {
      const t = readVarint(page, pos, headerEnd);
      if (!t) break;
      types.push(t[0]);
      pos = t[1];
    }
    if (types.length < 4) continue;
    let valuePos = headerEnd;
    for (let c = 0; c < 3; c++) valuePos += serialTypeSize(types[c]!);
    const root = readIntValue(page, valuePos, types[3]!);
    if (root !== undefined && root >= 2 && root <= maxPgno) roots.push(root);
  }
  return roots;
}

/** True for leaf (0x0a/0x0d) pages. */
export function isLeafPage(page: Uint8Array, pgno: number): boolean {
  const t = page[headerOffset(pgno)];
  return t === PAGE_TYPE_LEAF_INDEX || t === PAGE_TYPE_LEAF_TABLE;
}

/**
 * Usable bytes per page: the page size less the reserved bytes at the end of
 * each page (database header byte 20), read from page 1.
 */
export function usableSize(page1: Uint8Array, pageSize: number): number {
  const reserved = page1.length > 20 ? page1[20]! : 0;
  return pageSize - reserved;
}

/**
 * Bytes of a payload of `payload` bytes stored on the b-tree page itself (the
 * rest spills to overflow pages), per SQLite's file format.
 */
export function localPayload(payload: number, usable: number, table: boolean): number {
  const maxLocal = table ? usable - 35 : Math.floor(((usable - 12) * 64) / 255) - 23;
  if (payload <= maxLocal) return payload;
  const minLocal = Math.floor(((usable - 12) * 32) / 255) - 23;
  const k = minLocal + ((payload - minLocal) % (usable - 4));
  return k <= maxLocal ? k : minLocal;
}

/** One cell of a leaf page whose payload continues on overflow pages. */
export interface OverflowChain {
  /** First overflow page. */
  first: number;
  /** Overflow pages the chain has in all. */
  pages: number;
}

/**
 * The overflow chains that start on a leaf page (table or index), in cell
 * order. Malformed cells are skipped (a guess only costs a prefetch).
 */
export function leafOverflowChains(
  page: Uint8Array,
  pgno: number,
  usable: number,
  maxPgno: number,
): OverflowChain[] {
  const table = page[headerOffset(pgno)] === PAGE_TYPE_LEAF_TABLE;
  const cells = leafCells(page, pgno, [PAGE_TYPE_LEAF_TABLE, PAGE_TYPE_LEAF_INDEX]);
  if (!cells) return [];
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const out: OverflowChain[] = [];
  for (const cell of cells) {
    const len = readVarint(page, cell, page.length);
    if (!len) continue;
    let pos = len[1];
    if (table) {
      const rowid = readVarint(page, pos, page.length);
      if (!rowid) continue;
      pos = rowid[1];
    }
    const payload = len[0];
    const local = localPayload(payload, usable, table);
    if (local >= payload || pos + local + 4 > page.length) continue;
    const first = view.getUint32(pos + local);
    if (first < 1 || first > maxPgno) continue;
    out.push({ first, pages: Math.ceil((payload - local) / (usable - 4)) });
  }
  return out;
}

/** The next page of an overflow chain named by overflow page `page` (0 at the end). */
export function nextOverflowPage(page: Uint8Array): number {
  if (page.length < 4) return 0;
  return new DataView(page.buffer, page.byteOffset, page.byteLength).getUint32(0);
}

/** Reads a record's last column as an integer (an index entry's rowid), or `undefined`. */
function recordLastInteger(page: Uint8Array, start: number, end: number): number | undefined {
  const headerLen = readVarint(page, start, end);
  if (!headerLen) return undefined;
  const headerEnd = start + headerLen[0];
  if (headerEnd > end) return undefined;
  let pos = headerLen[1];
  let valuePos = headerEnd;
  let last: number | undefined;
  let lastPos = 0;
  while (pos < headerEnd) {
    const t = readVarint(page, pos, headerEnd);
    if (!t) return undefined;
    last = t[0];
    lastPos = valuePos;
    valuePos += serialTypeSize(t[0]);
    pos = t[1];
  }
  if (last === undefined || valuePos > end) return undefined;
  return readSignedIntValue(page, lastPos, last);
}

/** A big-endian two's-complement integer of serial type 1..6 (8/9: constants 0/1). */
function readSignedIntValue(page: Uint8Array, pos: number, t: number): number | undefined {
  if (t === 8) return 0;
  if (t === 9) return 1;
  if (t < 1 || t > 6) return undefined;
  const size = serialTypeSize(t);
  if (pos + size > page.length) return undefined;
  let v = 0;
  for (let i = 0; i < size; i++) v = v * 256 + page[pos + i]!;
  const bits = size * 8;
  // Sign: the top bit of the first byte (safe for up to 6 bytes; 8-byte values beyond 2^53 are rare rowids).
  if (page[pos]! & 0x80) v -= 2 ** bits;
  return v;
}

/**
 * The rowids of an index leaf page's entries in key order (the last column of
 * each entry's record), `undefined` for entries whose record spills to
 * overflow pages or does not parse.
 */
export function indexLeafRowids(
  page: Uint8Array,
  pgno: number,
  usable: number,
): (number | undefined)[] {
  const out: (number | undefined)[] = [];
  for (const cell of leafCells(page, pgno, [PAGE_TYPE_LEAF_INDEX]) ?? []) {
    const len = readVarint(page, cell, page.length);
    if (!len || localPayload(len[0], usable, false) < len[0] || len[1] + len[0] > page.length) {
      out.push(undefined);
      continue;
    }
    out.push(recordLastInteger(page, len[1], len[1] + len[0]));
  }
  return out;
}

/**
 * The child of a table interior page that holds `rowid` (the first cell whose
 * key is >= rowid, else the right-most pointer); `undefined` when the page is
 * not a well-formed table interior page.
 */
export function tableInteriorChild(
  page: Uint8Array,
  pgno: number,
  rowid: number,
): number | undefined {
  const h = headerOffset(pgno);
  if (page[h] !== PAGE_TYPE_INTERIOR_TABLE || h + 12 > page.length) return undefined;
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const cells = view.getUint16(h + 3);
  if (h + 12 + cells * 2 > page.length) return undefined;
  let lo = 0;
  let hi = cells - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const cell = view.getUint16(h + 12 + mid * 2);
    if (cell + 5 > page.length) return undefined;
    const key = readVarint(page, cell + 4, page.length);
    if (!key) return undefined;
    // Interior keys are signed 64-bit; a varint read as unsigned exceeds 2^63 only for negatives.
    const k = key[0] >= 2 ** 63 ? key[0] - 2 ** 64 : key[0];
    if (k >= rowid) {
      found = mid;
      hi = mid - 1;
    } else lo = mid + 1;
  }
  if (found < 0) return view.getUint32(h + 8);
  return view.getUint32(view.getUint16(h + 12 + found * 2));
}
