/**
 * Which B-tree each page of a version belongs to, and every B-tree's leaves
 * in key order, built from the pages already in memory: after an open with
 * a skeleton that is every interior page, so before the first query the
 * replica knows each tree's complete leaf list without reading a leaf.
 *
 * Built without fetching anything: a child page that is not in memory is
 * taken for a leaf (a "frontier" page). When the skeleton is missing or
 * stale, some of those are interior pages; bulk fetching then finds that
 * out when they arrive and follows their children. A wrong guess only costs
 * a fetch, never an answer: the VFS serves whatever SQLite asks for.
 */
import {
  interiorChildren,
  isInteriorPage,
  isLeafPage,
  PAGE_TYPE_INTERIOR_TABLE,
  PAGE_TYPE_LEAF_TABLE,
  schemaRootPages,
} from "./btree-page.js";

/** One B-tree of the version. */
export interface TreeInfo {
  root: number;
  /** Leaves (and frontier pages) in key order. */
  leaves: number[];
  /** Interior pages known (the root included when it is interior). */
  interior: number[];
  /** True for a table (rowid) tree, false for an index, undefined when unknown. */
  table: boolean | undefined;
  /** Frontier pages: children whose type is unknown (not in memory). */
  unknown: number;
}

/** The schema's tree is rooted at page 1. */
const SCHEMA_ROOT = 1;

/** B-tree membership of a version's pages. */
export class BtreeMap {
  readonly commit: number;
  readonly trees: TreeInfo[] = [];
  readonly #byRoot = new Map<number, TreeInfo>();
  /** Tree index + 1 per page (0: not part of a known tree). */
  readonly #treeOf: Uint32Array;
  /** Position in its tree's leaf list, or -1 (interior / unknown). */
  readonly #pos: Int32Array;

  private constructor(commit: number) {
    this.commit = commit;
    this.#treeOf = new Uint32Array(commit + 1);
    this.#pos = new Int32Array(commit + 1).fill(-1);
  }

  /**
   * Builds the map of a version of `commit` pages from the pages `peek`
   * returns (those in memory). Roots come from the schema (page 1 and the
   * schema's leaves) plus `extraRoots` (e.g. from a statement's bytecode).
   */
  static build(
    commit: number,
    peek: (pgno: number) => Uint8Array | undefined,
    extraRoots: Iterable<number> = [],
  ): BtreeMap {
    const map = new BtreeMap(commit);
    map.#add(SCHEMA_ROOT, peek);
    const roots = new Set<number>(extraRoots);
    const schema = map.#byRoot.get(SCHEMA_ROOT);
    for (const leaf of schema?.leaves ?? []) {
      const page = peek(leaf);
      if (page) for (const r of schemaRootPages(page, leaf, commit)) roots.add(r);
    }
    for (const r of [...roots].sort((a, b) => a - b)) map.#add(r, peek);
    return map;
  }

  /** The tree holding `pgno`, if known. */
  treeOf(pgno: number): TreeInfo | undefined {
    if (pgno < 1 || pgno > this.commit) return undefined;
    const t = this.#treeOf[pgno]!;
    return t === 0 ? undefined : this.trees[t - 1];
  }

  /** The tree rooted at `root`, if known. */
  tree(root: number): TreeInfo | undefined {
    return this.#byRoot.get(root);
  }

  /** Position of leaf `pgno` in its tree's leaf list, or -1. */
  leafPos(pgno: number): number {
    if (pgno < 1 || pgno > this.commit) return -1;
    return this.#pos[pgno]!;
  }

  /**
   * Adds the tree rooted at `root` (no-op when known or when its pages
   * already belong to another tree: a damaged schema).
   */
  #add(root: number, peek: (pgno: number) => Uint8Array | undefined): void {
    if (root < 1 || root > this.commit || this.#byRoot.has(root) || this.#treeOf[root] !== 0) {
      return;
    }
    const info: TreeInfo = { root, leaves: [], interior: [], table: undefined, unknown: 0 };
    const id = this.trees.length + 1;
    this.trees.push(info);
    this.#byRoot.set(root, info);
    // Depth-first, children left to right: leaves come out in key order.
    const stack: number[] = [root];
    let steps = 0;
    while (stack.length > 0) {
      const pgno = stack.pop()!;
      if (pgno < 1 || pgno > this.commit || this.#treeOf[pgno] !== 0) continue;
      // A cycle or a huge damaged tree must not hang the reader.
      if (++steps > this.commit + 1) break;
      this.#treeOf[pgno] = id;
      const page = peek(pgno);
      if (page && isInteriorPage(page, pgno)) {
        info.interior.push(pgno);
        if (info.table === undefined)
          info.table = page[pgno === 1 ? 100 : 0] === PAGE_TYPE_INTERIOR_TABLE;
        const children = interiorChildren(page, pgno, this.commit) ?? [];
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
        continue;
      }
      if (page && isLeafPage(page, pgno)) {
        if (info.table === undefined)
          info.table = page[pgno === 1 ? 100 : 0] === PAGE_TYPE_LEAF_TABLE;
      } else if (!page) info.unknown++;
      this.#pos[pgno] = info.leaves.length;
      info.leaves.push(pgno);
    }
  }
}
