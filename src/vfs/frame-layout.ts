/**
 * The frames of one version in file order: for each LTX file the version
 * reads from, its current frames sorted by offset. The page index answers
 * "where is page n"; this answers "which pages lie in this byte range", so a
 * bulk fetch can keep the pages that a coalesced range GET brings along, and
 * hydration can walk every file front to back.
 */
import type { PageIndex, PlanFile } from "./page-index.js";

/** The current frames of one file, sorted by offset. */
export interface FileFrames {
  file: PlanFile;
  pgnos: Uint32Array;
  offsets: Float64Array;
  sizes: Uint32Array;
  /** Sum of `sizes`. */
  bytes: number;
}

/** Every current frame of a version, per file, in file order. */
export class FrameLayout {
  readonly files: FileFrames[];
  readonly #byKey: Map<string, FileFrames>;
  /** Sum of every frame's size: what reading the whole version costs. */
  readonly bytes: number;
  readonly pages: number;

  private constructor(files: FileFrames[]) {
    this.files = files;
    this.#byKey = new Map(files.map((f) => [f.file.key, f]));
    this.bytes = files.reduce((n, f) => n + f.bytes, 0);
    this.pages = files.reduce((n, f) => n + f.pgnos.length, 0);
  }

  /** The layout of `index`'s version. */
  static of(index: PageIndex): FrameLayout {
    // Two walks over the index (count, then fill) into typed arrays: no
    // object per page, which for a large version would survive young
    // collections and grow V8's heap for the process's life.
    const counts = new Map<string, { file: PlanFile; n: number }>();
    index.forEachPage((_pgno, file) => {
      const c = counts.get(file.key);
      if (c) c.n++;
      else counts.set(file.key, { file, n: 1 });
    });
    const byFile = new Map<string, FileFrames & { n: number }>();
    for (const [key, { file, n }] of counts) {
      byFile.set(key, {
        file,
        pgnos: new Uint32Array(n),
        offsets: new Float64Array(n),
        sizes: new Uint32Array(n),
        bytes: 0,
        n: 0,
      });
    }
    index.forEachPage((pgno, file, offset, size) => {
      const ff = byFile.get(file.key)!;
      const i = ff.n++;
      ff.pgnos[i] = pgno;
      ff.offsets[i] = offset;
      ff.sizes[i] = size;
      ff.bytes += size;
    });
    const files: FileFrames[] = [];
    for (const { n: _n, ...ff } of byFile.values()) files.push(sortedByOffset(ff));
    files.sort((a, b) => (a.file.key < b.file.key ? -1 : a.file.key > b.file.key ? 1 : 0));
    return new FrameLayout(files);
  }

  /** The frames of file `key`, if the version reads from it. */
  file(key: string): FileFrames | undefined {
    return this.#byKey.get(key);
  }

  /** Indexes [from, to) of `frames` whose frames lie entirely within [start, end). */
  static within(frames: FileFrames, start: number, end: number): [number, number] {
    let lo = 0;
    let hi = frames.offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (frames.offsets[mid]! < start) lo = mid + 1;
      else hi = mid;
    }
    let to = lo;
    while (to < frames.offsets.length && frames.offsets[to]! + frames.sizes[to]! <= end) to++;
    return [lo, to];
  }
}

/**
 * `ff` with its frames in offset order. An LTX file lists pages in ascending
 * order with contiguous frames, so page order is offset order and this is
 * one pass; anything else is sorted.
 */
function sortedByOffset(ff: FileFrames): FileFrames {
  const n = ff.offsets.length;
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = ff.offsets[i - 1]! <= ff.offsets[i]!;
  if (sorted) return ff;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => ff.offsets[a]! - ff.offsets[b]!,
  );
  return {
    file: ff.file,
    pgnos: Uint32Array.from(order, (i) => ff.pgnos[i]!),
    offsets: Float64Array.from(order, (i) => ff.offsets[i]!),
    sizes: Uint32Array.from(order, (i) => ff.sizes[i]!),
    bytes: ff.bytes,
  };
}
