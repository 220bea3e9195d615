/**
 * Committed WAL changes captured but not uploaded yet. Normally a buffer
 * holds one sync's capture and is encoded as its L0 file at once; while
 * storage fails, successive captures are merged into it (the newest image of
 * each page, the database size of the last one), so that checkpoints can
 * keep the WAL small: the frames live on here instead of in the WAL. When
 * storage returns, the whole buffer becomes one L0 file at one TXID, as if
 * the sync interval had been that long.
 */
import type { LtxCompat } from "../format/index.js";
import { type EncodedLtx, LtxBuilder } from "./ltx-builder.js";
import type { PageChecksums } from "./page-checksums.js";
import type { CapturedSegment } from "./segment-capture.js";
import type { WalCursor } from "./wal-reader.js";

/** Captured changes awaiting upload (see the module comment). */
export class CaptureBuffer {
  readonly #pages = new Map<number, Uint8Array>();
  #bytes = 0;
  #captures = 0;
  #transactions = 0;
  /** Database size in pages before the first capture (the published state). */
  #prevCommit = 0;
  #commit = 0;
  #startOffset = 0;
  #end: WalCursor | undefined;
  /** False once two captures were not back to back in one WAL generation. */
  #contiguous = true;
  #capturedAt = 0;
  #page1: Uint8Array | undefined;

  /** True when nothing was captured. */
  get empty(): boolean {
    return this.#captures === 0;
  }

  /** Bytes of page images held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** SQLite transactions (commit frames) captured. */
  get transactions(): number {
    return this.#transactions;
  }

  /** Database size in pages after the last capture. */
  get commit(): number {
    return this.#commit;
  }

  /** Time of the last capture (ms since epoch): the commit time the L0 file records. */
  get capturedAt(): number {
    return this.#capturedAt;
  }

  /** Page 1's newest image, when a capture changed it. */
  get page1(): Uint8Array | undefined {
    return this.#page1;
  }

  /** Merges a capture (newer than every capture before it) into the buffer. */
  add(captured: CapturedSegment, at: number): void {
    const { segment } = captured;
    if (this.#captures === 0) {
      this.#prevCommit = captured.prevCommit;
      this.#startOffset = segment.startOffset;
    } else if (
      !this.#end ||
      this.#end.salt1 !== segment.end.salt1 ||
      this.#end.salt2 !== segment.end.salt2 ||
      this.#end.offset !== segment.startOffset
    ) {
      // A checkpoint restarted the WAL in between: no single WAL range describes the file.
      this.#contiguous = false;
    }
    for (const [pgno, page] of captured.pages) {
      const old = this.#pages.get(pgno);
      if (old) this.#bytes -= old.length;
      this.#pages.set(pgno, page);
      this.#bytes += page.length;
    }
    if (segment.commit < this.#commit) {
      // The database shrank: pages past its end are gone (and free their memory now).
      for (const [pgno, page] of this.#pages) {
        if (pgno <= segment.commit) continue;
        this.#pages.delete(pgno);
        this.#bytes -= page.length;
      }
    }
    const p1 = captured.pages.get(1);
    if (p1) this.#page1 = p1;
    this.#commit = segment.commit;
    this.#end = segment.end;
    this.#transactions += segment.transactions;
    this.#captures++;
    this.#capturedAt = Math.max(this.#capturedAt, at);
  }

  /**
   * Encodes the L0 file `0000/<txid>-<txid>.ltx` and records its pages in
   * `checksums`. A single capture names its WAL range and salts, as Litestream
   * does (a restart may resume from it); a merge of captures from several WAL
   * generations names none (zero salts), so a restart never trusts it and
   * publishes a snapshot instead.
   */
  encode(input: {
    pageSize: number;
    txid: number;
    checksums?: PageChecksums;
    /** Page encoding (default `"0.5.2"`), see `LtxCompat`. */
    compat?: LtxCompat;
  }): EncodedLtx {
    const end = this.#end;
    const range =
      end && this.#contiguous
        ? {
            walOffset: this.#startOffset,
            walSize: end.offset - this.#startOffset,
            walSalt1: end.salt1,
            walSalt2: end.salt2,
          }
        : { walOffset: 0, walSize: 0, walSalt1: 0, walSalt2: 0 };
    const builder = new LtxBuilder(
      {
        pageSize: input.pageSize,
        commit: this.#commit,
        minTXID: input.txid,
        maxTXID: input.txid,
        timestamp: this.#capturedAt,
        ...range,
      },
      input.compat !== undefined ? { compat: input.compat } : {},
    );
    for (const pgno of [...this.#pages.keys()].sort((a, b) => a - b)) {
      const page = this.#pages.get(pgno)!;
      builder.page(pgno, page);
      // The encoder already computed the page's checksum: reuse it.
      input.checksums?.setChecksum(pgno, builder.lastPageChecksumHi, builder.lastPageChecksumLo);
    }
    // Every page up to the final size that changed is in the file; pages past it are gone.
    if (this.#commit < this.#prevCommit) input.checksums?.truncate(this.#commit);
    return builder.finish();
  }
}
