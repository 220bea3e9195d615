/**
 * The frames of one version in file order: for each LTX file the version
 * reads from, its current frames sorted by offset. The page index answers
 * "where is page n"; this answers "which pages lie in this byte range", so a
 * bulk fetch can keep the pages that a coalesced range GET brings along, and
 * hydration can walk every file front to back.
 */
import type { PageIndex, PageLocation, PlanFile } from "./page-index.js";

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
    const groups = new Map<string, { file: PlanFile; locs: [number, PageLocation][] }>();
    for (let pgno = 1; pgno <= index.commit; pgno++) {
      const loc = index.lookup(pgno);
      if (!loc) continue;
      let g = groups.get(loc.file.key);
      if (!g) {
        g = { file: loc.file, locs: [] };
        groups.set(loc.file.key, g);
      }
      g.locs.push([pgno, loc]);
    }
    const files: FileFrames[] = [];
    for (const { file, locs } of groups.values()) {
      locs.sort((a, b) => a[1].offset - b[1].offset);
      const n = locs.length;
      const ff: FileFrames = {
        file,
        pgnos: new Uint32Array(n),
        offsets: new Float64Array(n),
        sizes: new Uint32Array(n),
        bytes: 0,
      };
      locs.forEach(([pgno, loc], i) => {
        ff.pgnos[i] = pgno;
        ff.offsets[i] = loc.offset;
        ff.sizes[i] = loc.size;
        ff.bytes += loc.size;
      });
      files.push(ff);
    }
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
