/** Page-level reads of the main database file (Node, synchronous: see wal-reader.ts). */
import { fstatSync } from "node:fs";
import { readFully } from "./wal-reader.js";

/** Reads pages `first..first+count-1` into one buffer; bytes past the end of the file read as zeros. */
export function readDbPages(
  fd: number,
  pageSize: number,
  first: number,
  count: number,
): Uint8Array {
  const buf = new Uint8Array(pageSize * count);
  readFully(fd, buf, (first - 1) * pageSize);
  return buf;
}

/**
 * Database size in pages from the file itself: the header's in-header size
 * when it is valid (its version-valid-for field matches the change counter),
 * else the file size.
 */
export function dbSizeInPages(fd: number, pageSize: number): number {
  const header = new Uint8Array(100);
  const bytesRead = readFully(fd, header, 0);
  const filePages = Math.floor(fstatSync(fd).size / pageSize);
  if (bytesRead < 100) return filePages;
  const view = new DataView(header.buffer);
  const inHeader = view.getUint32(28);
  if (inHeader > 0 && view.getUint32(92) === view.getUint32(24)) return inHeader;
  return filePages;
}
