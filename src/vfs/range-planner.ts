/**
 * Turns a set of wanted page frames into few range GETs. Frames of one file
 * that touch are always read together; beyond that, the smallest gaps are
 * bridged first (the unwanted bytes between two wanted frames are read and
 * thrown away, or kept when they hold useful pages) until the number of
 * requests fits one parallel wave or the unwanted bytes reach their budget:
 * on a file whose B-trees interleave, a tree's leaves are scattered and one
 * GET per leaf would cost hundreds of requests.
 */
import type { PageRequest } from "./page-fetcher.js";
import type { PlanFile } from "./page-index.js";

/** One planned range GET. */
export interface PlannedRun {
  file: PlanFile;
  start: number;
  end: number;
  /** The wanted frames it covers, by offset. */
  items: PageRequest[];
}

/** Options of {@link planRuns}. */
export interface RunPlanOptions {
  /** Stop bridging gaps once there are at most this many runs. */
  maxRuns: number;
  /** Most unwanted bytes bridged to get down to `maxRuns`. */
  maxWasteBytes: number;
  /**
   * Gaps this small are always bridged (reading them costs less than a
   * request), whatever `maxRuns`; default 0.
   */
  freeGapBytes?: number;
  /** Most unwanted bytes bridged in all, free gaps included (default: unbounded). */
  maxTotalWasteBytes?: number;
  /** Largest single range; longer runs are split at frame boundaries. */
  maxRangeBytes: number;
}

/** Plans range GETs for `reqs` (distinct frames). */
export function planRuns(reqs: readonly PageRequest[], options: RunPlanOptions): PlannedRun[] {
  const byFile = new Map<string, PageRequest[]>();
  for (const r of reqs) {
    const list = byFile.get(r.loc.file.key);
    if (list) list.push(r);
    else byFile.set(r.loc.file.key, [r]);
  }
  // Runs of touching frames, per file, in offset order.
  let runs: PlannedRun[] = [];
  for (const list of byFile.values()) {
    list.sort((a, b) => a.loc.offset - b.loc.offset);
    let run: PlannedRun | undefined;
    for (const r of list) {
      const end = r.loc.offset + r.loc.size;
      if (run && r.loc.offset <= run.end) {
        run.end = Math.max(run.end, end);
        run.items.push(r);
        continue;
      }
      run = { file: r.loc.file, start: r.loc.offset, end, items: [r] };
      runs.push(run);
    }
  }
  if (runs.length > 1 && (runs.length > options.maxRuns || (options.freeGapBytes ?? 0) > 0)) {
    runs = bridge(runs, options);
  }
  return runs.flatMap((r) => split(r, options.maxRangeBytes));
}

/** Bridges the smallest gaps between runs of the same file while it pays. */
function bridge(runs: PlannedRun[], options: RunPlanOptions): PlannedRun[] {
  // gaps[i]: between runs[i] and runs[i + 1] (same file only).
  const gaps: { i: number; bytes: number }[] = [];
  for (let i = 0; i + 1 < runs.length; i++) {
    const a = runs[i]!;
    const b = runs[i + 1]!;
    if (a.file.key === b.file.key) gaps.push({ i, bytes: b.start - a.end });
  }
  gaps.sort((x, y) => x.bytes - y.bytes);
  const joined = new Uint8Array(runs.length);
  let count = runs.length;
  let waste = 0;
  const free = options.freeGapBytes ?? 0;
  const total = options.maxTotalWasteBytes ?? Number.POSITIVE_INFINITY;
  for (const g of gaps) {
    if (waste + g.bytes > total) break;
    if (g.bytes > free && (count <= options.maxRuns || waste + g.bytes > options.maxWasteBytes)) {
      break;
    }
    joined[g.i] = 1;
    waste += g.bytes;
    count--;
  }
  const out: PlannedRun[] = [];
  let cur: PlannedRun | undefined;
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i]!;
    if (cur) {
      cur.end = r.end;
      cur.items.push(...r.items);
    } else cur = { ...r, items: [...r.items] };
    if (!joined[i]) {
      out.push(cur);
      cur = undefined;
    }
  }
  if (cur) out.push(cur);
  return out;
}

/** `run` cut into ranges of at most `max` bytes (at frame boundaries; a lone huge frame stays whole). */
function split(run: PlannedRun, max: number): PlannedRun[] {
  if (run.end - run.start <= max) return [run];
  const out: PlannedRun[] = [];
  let cur: PlannedRun | undefined;
  for (const r of run.items) {
    const end = r.loc.offset + r.loc.size;
    if (cur && end - cur.start <= max) {
      cur.end = Math.max(cur.end, end);
      cur.items.push(r);
      continue;
    }
    cur = { file: run.file, start: r.loc.offset, end, items: [r] };
    out.push(cur);
  }
  return out;
}
