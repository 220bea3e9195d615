/**
 * What a statement will do to each B-tree, read from its bytecode (`EXPLAIN`,
 * which only prepares: cheap, and exact about root pages where `EXPLAIN
 * QUERY PLAN` names aliases): bulk fetching uses it to tell a statement that
 * will read a whole B-tree, or look rows up in it once per row of another,
 * from a point lookup that must stay a point lookup.
 *
 * Loops are found structurally: `Next`/`Prev` on cursor c at address a jumping
 * back to b makes [b, a] c's loop body; a seek on another cursor inside that
 * body runs once per row of c. A `DecrJumpZero` (LIMIT) inside a loop body
 * may end it early.
 */

/** How a statement reads one B-tree. */
export type TreeAccess =
  /** Every leaf, in key order (a scan or count with nothing to stop it early). */
  | "scan"
  /** Seeks repeated once per row of a scan or range of another B-tree. */
  | "loop"
  /** A range in key order (may stop early). */
  | "range"
  /** A few seeks (point lookups, IN lists). */
  | "point";

/** One B-tree of the statement. */
export interface TreeUse {
  access: TreeAccess;
  /**
   * For `loop`: the outer loop is an unbounded scan, so the lookups will
   * touch much of the tree (fetch it all at the first miss).
   */
  eager: boolean;
  /** For a table reached through a non-covering index: that index's root. */
  viaIndex: number | undefined;
  /** The loop feeding the lookups runs in descending key order. */
  descending?: boolean;
}

/** The B-trees (by root page) a statement reads and how. */
export interface StatementPlan {
  trees: Map<number, TreeUse>;
}

/** One row of `EXPLAIN`. */
export interface BytecodeOp {
  addr: number;
  opcode: string;
  p1: number;
  p2: number;
  p3: number;
}

const RANK: Record<TreeAccess, number> = { point: 0, range: 1, loop: 2, scan: 3 };
const SEEKS = new Set([
  "SeekRowid",
  "NotExists",
  "SeekGE",
  "SeekGT",
  "SeekLE",
  "SeekLT",
  "SeekScan",
  "Found",
  "NotFound",
  "NoConflict",
  "IdxGE",
  "IdxGT",
  "IdxLE",
  "IdxLT",
]);

interface Loop {
  cursor: number;
  start: number;
  end: number;
  limited: boolean;
  descending: boolean;
}

/** Reads a statement's plan from its bytecode. */
export function analyzeBytecode(ops: readonly BytecodeOp[]): StatementPlan {
  const roots = new Map<number, number>();
  const limits: number[] = [];
  const fullStart = new Set<number>();
  const loops: Loop[] = [];
  for (const op of ops) {
    switch (op.opcode) {
      case "OpenRead":
      case "ReopenIdx":
        // p3 = 0: the main database (temp tables live in memory).
        if (op.p3 === 0 && op.p2 >= 1) roots.set(op.p1, op.p2);
        break;
      case "Rewind":
      case "Last":
        fullStart.add(op.p1);
        break;
      case "DecrJumpZero":
        limits.push(op.addr);
        break;
      case "Next":
      case "Prev":
        if (op.p2 <= op.addr) {
          loops.push({
            cursor: op.p1,
            start: op.p2,
            end: op.addr,
            limited: false,
            descending: op.opcode === "Prev",
          });
        }
        break;
    }
  }
  for (const l of loops) l.limited = limits.some((a) => a >= l.start && a <= l.end);
  const uses = new Map<number, TreeUse>();
  const note = (root: number | undefined, use: TreeUse) => {
    if (root === undefined) return;
    const old = uses.get(root);
    if (!old || RANK[use.access] > RANK[old.access]) {
      uses.set(root, {
        ...use,
        viaIndex: use.viaIndex ?? old?.viaIndex,
        descending: use.descending ?? old?.descending,
      });
    } else {
      old.eager ||= use.eager;
      old.viaIndex ??= use.viaIndex;
    }
  };
  /** The innermost real (B-tree) loop around `addr` other than `cursor`'s own. */
  const enclosing = (addr: number, cursor: number): Loop | undefined => {
    let best: Loop | undefined;
    for (const l of loops) {
      if (l.cursor === cursor || !roots.has(l.cursor)) continue;
      if (addr < l.start || addr > l.end) continue;
      if (!best || l.end - l.start < best.end - best.start) best = l;
    }
    return best;
  };
  const scans = new Set<number>();
  for (const l of loops) {
    if (roots.has(l.cursor) && fullStart.has(l.cursor) && !l.limited) scans.add(l.cursor);
  }
  const outerUse = (outer: Loop | undefined, viaIndex?: number): TreeUse => {
    const descending = outer?.descending === true;
    if (!outer || outer.limited) return { access: "point", eager: false, viaIndex, descending };
    return { access: "loop", eager: scans.has(outer.cursor), viaIndex, descending };
  };
  for (const op of ops) {
    if (op.opcode === "Count" && roots.has(op.p1)) {
      note(roots.get(op.p1), { access: "scan", eager: false, viaIndex: undefined });
    } else if (op.opcode === "DeferredSeek") {
      // The table (p3) is looked up by the rowid of the index entry (p1).
      const outer = loops.find((l) => l.cursor === op.p1 && op.addr >= l.start && op.addr <= l.end);
      const use = outer
        ? outerUse(outer, roots.get(op.p1))
        : outerUse(enclosing(op.addr, op.p3), roots.get(op.p1));
      note(roots.get(op.p3), use);
    } else if (SEEKS.has(op.opcode) && roots.has(op.p1)) {
      const outer = enclosing(op.addr, op.p1);
      if (outer) note(roots.get(op.p1), outerUse(outer));
      else {
        const ownLoop = loops.some((l) => l.cursor === op.p1);
        note(roots.get(op.p1), {
          access: ownLoop ? "range" : "point",
          eager: false,
          viaIndex: undefined,
        });
      }
    }
  }
  for (const l of loops) {
    const root = roots.get(l.cursor);
    if (root === undefined) continue;
    if (scans.has(l.cursor)) note(root, { access: "scan", eager: false, viaIndex: undefined });
    else if (fullStart.has(l.cursor))
      note(root, { access: "range", eager: false, viaIndex: undefined });
  }
  return { trees: uses };
}
