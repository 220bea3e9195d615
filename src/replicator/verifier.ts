/**
 * The divergence check: compares the replicated state (the per-page
 * checksums the writer keeps for the newest TXID it encoded) with the
 * database itself, a window of pages at a time, so the replica can never
 * silently drift from the primary.
 *
 * Cost: a full pass reads the whole database once and checksums it, so it
 * runs as a rolling window instead (`verifyPages` pages per sync, default
 * 256 = 1 MiB at 4 KiB pages): a bounded, small cost per sync, and every page
 * is checked once per `pages / verifyPages` syncs. The cheap checks run on
 * every sync anyway (files swapped, WAL restarted, page 1 changed outside
 * SQLite: see capture.ts); this one catches what they cannot, such as pages
 * of the database file rewritten in place.
 *
 * It runs only where the capture position equals the encoded position and
 * nothing newer can be in the database file (see `Capture.verifiable`): the
 * image of a page there is its newest frame in the current WAL generation up
 * to the capture cursor, else the database file (checkpoints cannot pass the
 * pin, which is at or before the cursor).
 */
import { lockPgno, pageChecksumInto } from "../format/checksum.js";
import { readDbPages } from "./database-file.js";
import type { PageChecksums } from "./page-checksums.js";
import { readFramePage, type WalCursor } from "./wal-reader.js";

/** What one verification step compares. */
export interface VerifyInput {
  db: number;
  wal: number;
  walPages: ReadonlyMap<number, number>;
  salts: Pick<WalCursor, "salt1" | "salt2">;
  pageSize: number;
  /** Database size in pages at the capture position. */
  commit: number;
  checksums: PageChecksums;
}

/** Rolling verification state. */
export class RollingVerifier {
  #next = 1;
  readonly #pair = new Uint32Array(2);
  /** Pages compared so far. */
  pages = 0;
  /** Complete passes over the database. */
  passes = 0;
  /** When the last complete pass ended (ms since epoch), if any. */
  lastPassAt: number | null = null;

  /** Starts the next pass from page 1 (after a snapshot, say). */
  restart(): void {
    this.#next = 1;
  }

  /**
   * Compares up to `maxPages` pages from where the last step stopped.
   * Returns the first page whose image does not match its checksum, if any.
   */
  step(input: VerifyInput, maxPages: number): number | undefined {
    const { pageSize, commit, checksums } = input;
    if (commit === 0 || maxPages <= 0) return undefined;
    if (this.#next > commit) this.#next = 1;
    const first = this.#next;
    const count = Math.min(maxPages, commit - first + 1);
    const batch = readDbPages(input.db, pageSize, first, count);
    const lock = lockPgno(pageSize);
    for (let i = 0; i < count; i++) {
      const pgno = first + i;
      if (pgno === lock) continue;
      const frame = input.walPages.get(pgno);
      const page =
        frame !== undefined
          ? readFramePage(input.wal, frame, pgno, input.salts, pageSize)
          : batch.subarray(i * pageSize, (i + 1) * pageSize);
      pageChecksumInto(pgno, page, this.#pair);
      if (!checksums.matches(pgno, this.#pair[0]!, this.#pair[1]!)) {
        this.#next = 1;
        return pgno;
      }
    }
    this.pages += count;
    this.#next = first + count;
    if (this.#next > commit) {
      this.#next = 1;
      this.passes++;
      this.lastPassAt = Date.now();
    }
    return undefined;
  }
}
