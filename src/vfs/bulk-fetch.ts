/**
 * B-tree-aware bulk fetching: the one place that decides, at each page a
 * statement misses, whether to fetch more than that page.
 *
 * The replica knows every B-tree's leaves (see `BtreeMap`) and, from the
 * statement's bytecode (see `statement-plan.ts`), how the statement reads
 * each tree. So instead of one round trip per missed leaf:
 * - a tree the statement scans whole, or looks rows up in once per row of a
 *   scan, is fetched whole at its first miss: its remaining leaves in one
 *   parallel wave of coalesced range GETs;
 * - a table reached row by row through a non-covering index gets, at each
 *   miss, the leaves holding the next entries' rows (read from the index
 *   leaf the statement is on), in growing windows; once it keeps missing,
 *   the whole table;
 * - a range read in key order gets a read-ahead window along the leaf list
 *   (across parents), growing with each miss;
 * - any tree that keeps missing (KEEP_MISSING times in one statement) is
 *   fetched whole;
 * - point lookups (one miss per tree) never trigger anything.
 * Overflow pages are fetched as found: once a statement misses an overflow
 * page of a tree it bulk fetched, the overflow chains of that tree's leaves
 * follow. Every bulk fetch counts against the statement's byte budget; when
 * the statement would read most of a database small enough to hold
 * (`hydrate: "auto"`), the whole database is hydrated instead.
 */
import { BtreeMap, type TreeInfo } from "./btree-map.js";
import {
  btreePageType,
  indexLeafRowids,
  interiorChildren,
  isInteriorPage,
  leafOverflowChains,
  nextOverflowPage,
  tableInteriorChild,
  usableSize,
} from "./btree-page.js";
import type { PageRequest } from "./page-fetcher.js";
import type { PageLocation } from "./page-index.js";
import type { PlannedRun } from "./range-planner.js";
import type { ReplicaVersion } from "./replica-core.js";
import { RequestBudget } from "./request-budget.js";
import type { StatementPlan, TreeUse } from "./statement-plan.js";

/** Misses in one tree after which a statement "keeps missing" there. */
export const KEEP_MISSING = 6;
/** First read-ahead window along a leaf list, in leaves; each further miss multiplies it by 4. */
const FIRST_WINDOW = 16;
/** Unwanted bytes (as a multiple of the wanted ones) a bulk fetch may read to save requests. */
const WASTE_FACTOR = 8;
/** Pages that ride along with a miss; more become a small bulk fetch. */
const ALONG_PAGES = 4;
/** Range GETs a read-ahead window aims for. */
const WINDOW_REQUESTS = 6;
/** First window of index entries whose rows are prefetched. */
const FIRST_TARGET_WINDOW = 16;
/** Databases at most this large hydrate at the first bulk decision ("auto"). */
const SMALL_DATABASE_BYTES = 2 * 1024 * 1024;
/** "Most of it": bulk fetching this share of a database hydrates it instead ("auto"). */
const MOST_OF_IT = 0.5;

/** Per-tree state of one statement. */
interface TreeState {
  misses: number;
  /** Leaf-list position of the last miss (-1 when unknown). */
  lastPos: number;
  /** Fetched whole (or as much as the budget allowed) already. */
  whole: boolean;
  /** Leaf-list positions asked for by read-ahead up to (exclusive). */
  ahead: number;
  window: number;
  /** Index-entry window for lookups through an index. */
  targetWindow: number;
  /** Overflow chains of this tree's leaves are wanted. */
  overflow: boolean;
}

/** What one statement execution has missed and fetched (kept across its re-runs). */
export class StatementFetchState {
  plan: StatementPlan | undefined;
  readonly trees = new Map<number, TreeState>();
  /** Bytes this statement fetched in bulk (network or persistent cache). */
  bulkBytes = 0;
  /** Bulk fetches started (for status and tests). */
  bulkFetches = 0;
  /** Recently read pages, newest last (the index leaf a lookup came from). */
  readonly recent: number[] = [];
  /** Overflow pages guessed or found per owning tree root. */
  readonly overflowOwner = new Map<number, number>();
  /** Misses seen before the plan was known. */
  readonly unplanned: { version: ReplicaVersion; pgno: number }[] = [];
  /** The statement's request budget (`maxRequestsPerQuery`), if it has one. */
  readonly budget: RequestBudget | undefined;

  constructor(plan: StatementPlan | undefined, budget?: RequestBudget) {
    this.plan = plan;
    this.budget = budget;
  }

  tree(root: number): TreeState {
    let t = this.trees.get(root);
    if (!t) {
      t = {
        misses: 0,
        lastPos: -1,
        whole: false,
        ahead: 0,
        window: FIRST_WINDOW,
        targetWindow: FIRST_TARGET_WINDOW,
        overflow: false,
      };
      this.trees.set(root, t);
    }
    return t;
  }
}

/** Recent reads remembered per statement. */
const RECENT_READS = 8;

/**
 * The statement a connection is running: SQL text, its plan, and its fetch
 * state (created at its first miss). Shared by a connection's two builds so
 * a statement keeps its state when it is re-run or moves to the async build.
 */
export class StatementContext {
  sql: string | undefined;
  /** Re-runs of the same statement keep its state. */
  keep = false;
  state: StatementFetchState | undefined;
  /** The running statement's request budget (kept across its re-runs, like its state). */
  budget: RequestBudget | undefined;
  /** Plans by SQL text (`null`: none could be made). */
  readonly plans = new Map<string, StatementPlan | null>();

  /** `maxRequests`: each statement's request budget (`Infinity`: none). */
  constructor(readonly maxRequests = Number.POSITIVE_INFINITY) {}

  /** A statement starts (or is run again). */
  enter(sql: string): void {
    if (this.keep && sql === this.sql) return;
    this.sql = sql;
    this.state = undefined;
    this.budget = Number.isFinite(this.maxRequests)
      ? new RequestBudget(this.maxRequests, sql)
      : undefined;
  }

  /** The fetch state, created at the first miss. */
  fetchState(): StatementFetchState {
    if (!this.state) {
      const plan = this.sql === undefined ? undefined : this.plans.get(this.sql);
      this.state = new StatementFetchState(plan ?? undefined, this.budget);
    }
    return this.state;
  }

  /** Records a plan for `sql` (bounded cache). */
  setPlan(sql: string, plan: StatementPlan | null): void {
    if (this.plans.size >= 256) this.plans.delete(this.plans.keys().next().value as string);
    this.plans.set(sql, plan);
    if (this.state && this.sql === sql && plan) this.state.plan = plan;
  }

  /** Notes a read of `pgno` (only while the statement has a fetch state). */
  noteRead(pgno: number): void {
    const s = this.state;
    if (!s) return;
    const r = s.recent;
    if (r[r.length - 1] === pgno) return;
    r.push(pgno);
    if (r.length > RECENT_READS) r.shift();
  }
}

/** Figures of bulk fetching for `status()`. */
export interface BulkFetchStats {
  /** Statements that fetched in bulk. */
  statements: number;
  /** Bulk fetches started. */
  fetches: number;
  /** Pages asked for by bulk fetches. */
  pages: number;
  /** Bytes bulk fetches read (storage or persistent cache). */
  bytes: number;
  /** Times bulk fetching chose to hydrate the whole database instead. */
  hydrations: number;
}

/** What the policy needs from the replica. */
export interface BulkFetchHost {
  /** A page of `version` if it is in memory (no fetch, no statistics). */
  peek(version: ReplicaVersion, pgno: number): Uint8Array | undefined;
  /** True when page `pgno`'s image at `loc` is in memory or on its way. */
  pendingOrCached(pgno: number, loc: PageLocation): boolean;
  /**
   * Plans the range GETs of a bulk fetch of `reqs`: `maxRuns` requests
   * (default: one wave) if bridging at most `maxWasteBytes` gets there; small
   * gaps always bridged, within `maxTotalWasteBytes`.
   */
  planRuns(
    reqs: PageRequest[],
    options: {
      maxRuns: number | undefined;
      maxWasteBytes: number;
      maxTotalWasteBytes: number;
      /** Hard cap on the range GETs (a request budget): runs past it are dropped. */
      maxRequests?: number;
    },
  ): BulkPlan;
  /** Starts a planned bulk fetch; `onPage` sees each wanted page as it lands. */
  fetchRuns(
    version: ReplicaVersion,
    plan: BulkPlan,
    onPage: (req: PageRequest, page: Uint8Array) => void,
    budget: RequestBudget | undefined,
  ): Promise<void>;
  /** Plain read-ahead of `reqs` (the fetcher coalesces them). */
  prefetch(version: ReplicaVersion, reqs: PageRequest[], budget: RequestBudget | undefined): void;
  /** Bytes of every current frame of `version` (what hydrating it reads). */
  versionBytes(version: ReplicaVersion): number;
  /** Whether hydration covers `version` (running for it, or done). */
  hydrating(version: ReplicaVersion): boolean;
  /** Starts hydrating (auto mode) when allowed (and within `budget`); true when it did. */
  autoHydrate(version: ReplicaVersion, reason: string, budget: RequestBudget | undefined): boolean;
  /** Whether `hydrate: "auto"` may hydrate a database of `bytes`. */
  mayAutoHydrate(bytes: number): boolean;
}

/** The range GETs of one bulk fetch. */
export interface BulkPlan {
  runs: PlannedRun[];
  /** Bytes they read. */
  bytes: number;
}

/** Options of {@link BulkFetcher}. */
export interface BulkFetchOptions {
  /**
   * Most bytes one statement may fetch in bulk (0 disables bulk fetching).
   * Default: the database's size (its frames) up to {@link MAX_DEFAULT_BUDGET},
   * at least half of `cacheBytes`.
   */
  budgetBytes: number | undefined;
  /** The page cache's size: bulk-fetched pages must fit in it. */
  cacheBytes: number;
}

/** Largest default budget of one statement's bulk fetches. */
export const MAX_DEFAULT_BUDGET = 256 * 1024 * 1024;

/** Decides and starts bulk fetches for statements that keep missing. */
export class BulkFetcher {
  readonly #host: BulkFetchHost;
  readonly #options: BulkFetchOptions;
  #map: { version: ReplicaVersion; map: BtreeMap; dirty: boolean } | undefined;
  readonly #stats: BulkFetchStats = {
    statements: 0,
    fetches: 0,
    pages: 0,
    bytes: 0,
    hydrations: 0,
  };
  readonly #counted = new WeakSet<StatementFetchState>();

  constructor(host: BulkFetchHost, options: BulkFetchOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** Current figures. */
  stats(): BulkFetchStats {
    return { ...this.#stats };
  }

  /** An interior page of the current version arrived: the map may know more now. */
  interiorArrived(): void {
    if (this.#map) this.#map.dirty = true;
  }

  /** The B-tree map of `version` (built lazily from the pages in memory). */
  map(version: ReplicaVersion, roots?: Iterable<number>): BtreeMap {
    const m = this.#map;
    if (m && m.version === version && !m.dirty) return m.map;
    const map = BtreeMap.build(version.index.commit, (p) => this.#host.peek(version, p), roots);
    this.#map = { version, map, dirty: false };
    return map;
  }

  /**
   * A statement missed page `pgno` of `version`. Returns pages worth fetching
   * along with it (same batch), `undefined` when the page is in no tree it
   * knows (plain read-ahead then applies); may start bulk fetches in the
   * background.
   */
  onMiss(
    version: ReplicaVersion,
    pgno: number,
    state: StatementFetchState,
    replay = false,
  ): PageRequest[] | undefined {
    if (this.#options.budgetBytes === 0) return undefined;
    if (this.#host.hydrating(version)) return [];
    // Decided without a plan: decided again once the plan is known (see planArrived).
    if (!state.plan && !replay) state.unplanned.push({ version, pgno });
    const missedLoc = version.index.lookup(pgno);
    if (!missedLoc) return [];
    const roots = state.plan ? state.plan.trees.keys() : undefined;
    let map = this.map(version, roots);
    let tree = map.treeOf(pgno);
    if (!tree && this.#map?.dirty !== false) {
      map = this.map(version, roots);
      tree = map.treeOf(pgno);
    }
    const pending = !replay && this.#host.pendingOrCached(pgno, missedLoc);
    if (!tree) {
      if (pending) return [];
      const along = this.#overflowMiss(version, pgno, state);
      return along.length > 0 ? along : undefined;
    }
    const ts = state.tree(tree.root);
    const pos = map.leafPos(pgno);
    // In key order: the next leaf, or one past what read-ahead asked for.
    const sequential =
      pos >= 0 &&
      ts.lastPos >= 0 &&
      pos > ts.lastPos &&
      (pos <= ts.lastPos + 2 || (pos >= ts.ahead - 1 && pos <= ts.ahead + 2));
    // Forward in key order: a miss behind what read-ahead asked for is then a dropped page.
    const forward = pos > ts.lastPos;
    if (pos >= 0) ts.lastPos = pos;
    // A page already on its way (a bulk fetch, read-ahead) is not a new miss.
    if (pending) return [];
    if (!replay) ts.misses++;
    // Fetched whole as far as the budget and the cache allowed, and still
    // missing (a scan past that point): read ahead along the leaf list.
    if (ts.whole) {
      const ahead = this.#readAhead(version, tree, ts, pos, forward);
      return this.#spread(version, map, tree.root, ahead, state);
    }
    const use: TreeUse | undefined = state.plan?.trees.get(tree.root);
    const access = use?.access;
    if (
      access === "scan" ||
      (access === "loop" && (use!.eager || (use!.viaIndex === undefined && ts.misses >= 2))) ||
      ts.misses >= KEEP_MISSING ||
      // Half the request budget gone: the rest of this tree in few big GETs beats a GET per miss.
      (state.budget?.near === true && ts.misses >= 2)
    ) {
      this.#whole(version, map, tree, ts, state, pos);
      return [];
    }
    let reqs: PageRequest[] = [];
    // In key order (a range, or rows looked up in key order): the next leaves.
    if (sequential || (access === "range" && ts.misses >= 2)) {
      reqs = this.#readAhead(version, tree, ts, pos, forward);
    }
    // Lookups through an index: the rows of the next entries. A limited
    // loop (LIMIT) or a lone lookup starts only at its second miss.
    if (
      use?.viaIndex !== undefined &&
      tree.table &&
      (access === "loop" || (access === "point" && ts.misses >= 2))
    ) {
      const targets = this.#targets(version, map, tree, use, pgno, ts, state);
      const seen = new Set(reqs.map((r) => r.pgno));
      for (const t of targets) if (!seen.has(t.pgno)) reqs.push(t);
    }
    return this.#spread(version, map, tree.root, reqs, state);
  }

  /**
   * Pages to fetch beside a miss: a few ride along with it; more become a
   * small bulk fetch (few coalesced range GETs instead of one per page).
   */
  #spread(
    version: ReplicaVersion,
    map: BtreeMap,
    root: number,
    reqs: PageRequest[],
    state: StatementFetchState,
  ): PageRequest[] {
    if (reqs.length <= ALONG_PAGES) return reqs;
    // Past the budget: plain read-ahead (the fetcher still coalesces it).
    if (!this.#bulk(version, map, root, reqs, state, undefined, false, WINDOW_REQUESTS))
      return reqs;
    return [];
  }

  /**
   * The statement's plan is known now: the misses it had before are decided
   * again with it (a scan found at its first miss is fetched in bulk at once,
   * not at its next miss). Pages chosen go out as read-ahead.
   */
  planArrived(state: StatementFetchState): void {
    const misses = state.unplanned.splice(0);
    if (!state.plan) return;
    for (const { version, pgno } of misses) {
      const along = this.onMiss(version, pgno, state, true);
      if (along && along.length > 0) this.#host.prefetch(version, along, state.budget);
    }
  }

  /** Fetches the rest of `tree` (from `pos` on, then the start), within the budget. */
  #whole(
    version: ReplicaVersion,
    map: BtreeMap,
    tree: TreeInfo,
    ts: TreeState,
    state: StatementFetchState,
    pos: number,
  ): void {
    ts.whole = true;
    const index = version.index;
    const order = pos > 0 ? [...tree.leaves.slice(pos), ...tree.leaves.slice(0, pos)] : tree.leaves;
    const reqs: PageRequest[] = [];
    for (const p of order) {
      const loc = index.lookup(p);
      if (!loc || this.#host.pendingOrCached(p, loc)) continue;
      reqs.push({ pgno: p, loc });
    }
    this.#bulk(version, map, tree.root, reqs, state, ts, true);
  }

  /**
   * Starts a bulk fetch of `reqs` (in priority order) within the statement's
   * budget. When its range GETs would read most of a database that
   * `hydrate: "auto"` may hold (its leaves are spread all over the file),
   * hydrates instead. Pages that turn out to be interior (a stale or missing
   * skeleton) have their children fetched next; overflow chains follow when
   * wanted.
   */
  #bulk(
    version: ReplicaVersion,
    map: BtreeMap,
    root: number,
    reqs: PageRequest[],
    state: StatementFetchState,
    ts: TreeState | undefined,
    mayHydrate = false,
    maxRuns?: number,
  ): boolean {
    const left = this.#budget(version) - state.bulkBytes;
    if (left <= 0 || reqs.length === 0) return false;
    // One request stays for the miss itself (when it is not among `reqs`).
    const maxRequests = state.budget ? state.budget.left - 1 : undefined;
    if (maxRequests !== undefined && maxRequests < 1) return false;
    // Within the byte budget, and no more pages than the cache holds without
    // evicting the first before the statement reads them.
    const maxPages = this.#maxPages(version);
    const take: PageRequest[] = [];
    let bytes = 0;
    for (const r of reqs) {
      if (bytes + r.loc.size > left || take.length >= maxPages) break;
      take.push(r);
      bytes += r.loc.size;
    }
    if (take.length === 0) return false;
    // Gaps cheaper to read than a request are bridged (within the budget);
    // beyond that, a few times the wanted bytes to get down to one wave.
    const plan = this.#host.planRuns(take, {
      maxRuns,
      maxWasteBytes: bytes * WASTE_FACTOR,
      maxTotalWasteBytes: Math.max(0, left - bytes),
      ...(maxRequests !== undefined ? { maxRequests } : {}),
    });
    if (plan.runs.length === 0) return false;
    if (mayHydrate) {
      const total = this.#host.versionBytes(version);
      // Trees the plan will also read whole count now: deciding at the
      // first tree saves the waves the later ones would take.
      const fetched = this.#stats.bytes + this.#plannedWholeBytes(version, map, state, root);
      if (
        this.#host.mayAutoHydrate(total) &&
        (total <= SMALL_DATABASE_BYTES || fetched + plan.bytes >= total * MOST_OF_IT) &&
        this.#host.autoHydrate(version, `a statement reads most of tree ${root}`, state.budget)
      ) {
        this.#stats.hydrations++;
        return true;
      }
    }
    state.bulkBytes += plan.bytes;
    state.bulkFetches++;
    if (!this.#counted.has(state)) {
      this.#counted.add(state);
      this.#stats.statements++;
    }
    this.#stats.fetches++;
    this.#stats.pages += plan.runs.reduce((n, r) => n + r.items.length, 0);
    this.#stats.bytes += plan.bytes;
    const arrived: { pgno: number; page: Uint8Array }[] = [];
    this.#host
      .fetchRuns(version, plan, (req, page) => arrived.push({ pgno: req.pgno, page }), state.budget)
      .then(
        () => this.#afterBulk(version, map, root, arrived, state, ts),
        () => {},
      );
    return true;
  }

  /**
   * Bytes of the trees other than `root` that the statement's plan reads
   * whole (scans, and lookups once per row of an unbounded scan) and that
   * are not fetched yet.
   */
  #plannedWholeBytes(
    version: ReplicaVersion,
    map: BtreeMap,
    state: StatementFetchState,
    root: number,
  ): number {
    const plan = state.plan;
    if (!plan) return 0;
    let bytes = 0;
    for (const [r, use] of plan.trees) {
      if (r === root || state.trees.get(r)?.whole) continue;
      const whole =
        use.access === "scan" ||
        (use.access === "loop" && (use.eager || use.viaIndex === undefined));
      if (!whole) continue;
      const tree = map.tree(r);
      if (!tree) continue;
      for (const p of tree.leaves) {
        const loc = version.index.lookup(p);
        if (loc && !this.#host.pendingOrCached(p, loc)) bytes += loc.size;
      }
    }
    return bytes;
  }

  /**
   * Follows up a bulk fetch: the children of pages that were interior, and
   * overflow pages as found (chains of the leaves that arrived, the next link
   * of overflow pages whose successor is not here yet).
   */
  #afterBulk(
    version: ReplicaVersion,
    map: BtreeMap,
    root: number,
    arrived: { pgno: number; page: Uint8Array }[],
    state: StatementFetchState,
    ts: TreeState | undefined,
  ): void {
    const commit = version.index.commit;
    const usable = ts?.overflow ? this.#usable(version) : undefined;
    const next: PageRequest[] = [];
    const want = (pgno: number) => {
      const loc = version.index.lookup(pgno);
      if (loc && !this.#host.pendingOrCached(pgno, loc)) next.push({ pgno, loc });
    };
    let interior = false;
    for (const { pgno, page } of arrived) {
      if (btreePageType(page, pgno) === undefined && state.overflowOwner.has(pgno)) {
        // An overflow page: its successor, unless already here or asked for.
        const after = nextOverflowPage(page);
        if (after >= 1 && after <= commit) {
          state.overflowOwner.set(after, root);
          want(after);
        }
        continue;
      }
      if (isInteriorPage(page, pgno)) {
        interior = true;
        for (const c of interiorChildren(page, pgno, commit) ?? []) want(c);
      } else if (usable !== undefined) {
        for (const p of this.#noteOverflow(page, pgno, usable, commit, root, state)) want(p);
      }
    }
    if (interior) this.interiorArrived();
    this.#bulk(version, map, root, next, state, ts);
  }

  /** Rows of the next index entries, read from the index leaf the statement is on. */
  #targets(
    version: ReplicaVersion,
    map: BtreeMap,
    table: TreeInfo,
    use: TreeUse,
    missed: number,
    ts: TreeState,
    state: StatementFetchState,
  ): PageRequest[] {
    const index = use.viaIndex === undefined ? undefined : map.tree(use.viaIndex);
    const usable = this.#usable(version);
    if (!index || usable === undefined) return [];
    // The index leaf read last before this miss.
    let leaf: number | undefined;
    for (let i = state.recent.length - 1; i >= 0; i--) {
      const p = state.recent[i]!;
      if (map.treeOf(p) === index && map.leafPos(p) >= 0) {
        leaf = p;
        break;
      }
    }
    if (leaf === undefined) return [];
    const window = ts.targetWindow;
    ts.targetWindow *= 4;
    const out: PageRequest[] = [];
    const seen = new Set<number>([missed]);
    const add = (pgno: number | undefined) => {
      if (pgno === undefined || seen.has(pgno)) return;
      seen.add(pgno);
      const loc = version.index.lookup(pgno);
      if (loc && !this.#host.pendingOrCached(pgno, loc)) out.push({ pgno, loc });
    };
    const page = this.#host.peek(version, leaf);
    if (!page) return [];
    let rowids = indexLeafRowids(page, leaf, usable);
    const dir = use.descending ? -1 : 1;
    // Where the statement is in this leaf: the entry whose row lives on the missed page.
    let i = -1;
    for (let k = 0; k < rowids.length; k++) {
      const r = rowids[k];
      if (r !== undefined && this.#leafOf(version, table.root, r) === missed) {
        i = k + dir;
        break;
      }
    }
    if (i < 0 && dir > 0) i = 0;
    if (i < 0 || i >= rowids.length) i = dir > 0 ? 0 : rowids.length - 1;
    let pos = map.leafPos(leaf);
    for (let left = window; left > 0; ) {
      if (i < 0 || i >= rowids.length) {
        // On into the neighbouring index leaf: from memory, else fetched with this batch.
        pos += dir;
        const nextLeaf = index.leaves[pos];
        if (nextLeaf === undefined) break;
        const next = this.#host.peek(version, nextLeaf);
        if (!next) {
          add(nextLeaf);
          break;
        }
        rowids = indexLeafRowids(next, nextLeaf, usable);
        i = dir > 0 ? 0 : rowids.length - 1;
        continue;
      }
      const r = rowids[i];
      if (r !== undefined) add(this.#leafOf(version, table.root, r));
      i += dir;
      left--;
    }
    return out;
  }

  /** The leaf of table `root` holding `rowid`, descending through interior pages in memory. */
  #leafOf(version: ReplicaVersion, root: number, rowid: number): number | undefined {
    let pgno = root;
    for (let depth = 0; depth < 20; depth++) {
      const page = this.#host.peek(version, pgno);
      if (!page || !isInteriorPage(page, pgno)) return pgno;
      const child = tableInteriorChild(page, pgno, rowid);
      if (child === undefined || child < 1 || child > version.index.commit) return undefined;
      pgno = child;
    }
    return undefined;
  }

  /**
   * Read-ahead along the tree's leaf list from `pos`, in a window growing with
   * each miss up to half the cache. `forward`: the miss is past the previous one.
   */
  #readAhead(
    version: ReplicaVersion,
    tree: TreeInfo,
    ts: TreeState,
    pos: number,
    forward: boolean,
  ): PageRequest[] {
    if (pos < 0) return [];
    // Moving forward, a miss short of what was asked for: pages fetched
    // earlier were pushed out of a small cache before SQLite read them. Ask
    // again from here (pages pending or cached are skipped), not one page per miss.
    const dropped = forward && pos + 1 < ts.ahead;
    const from = dropped ? pos + 1 : Math.max(pos + 1, ts.ahead);
    // No more than the cache keeps beside the pages in use.
    const window = Math.min(ts.window, this.#maxPages(version));
    const to = Math.min(tree.leaves.length, pos + 1 + window);
    if (from >= to) return [];
    if (!dropped) ts.window *= 4;
    ts.ahead = Math.max(ts.ahead, to);
    const out: PageRequest[] = [];
    for (let i = from; i < to; i++) {
      const p = tree.leaves[i]!;
      const loc = version.index.lookup(p);
      if (loc && !this.#host.pendingOrCached(p, loc)) out.push({ pgno: p, loc });
    }
    return out;
  }

  /** Pages one fetch may bring: half the cache, so the first are still there when read. */
  #maxPages(version: ReplicaVersion): number {
    return Math.max(1, Math.floor(this.#options.cacheBytes / 2 / version.index.pageSize));
  }

  /**
   * A miss outside every known tree: an overflow page? If it belongs to a
   * leaf of a tree this statement fetched whole, fetch the overflow chains of
   * that tree's leaves (those here now; those still arriving follow).
   */
  #overflowMiss(version: ReplicaVersion, pgno: number, state: StatementFetchState): PageRequest[] {
    const usable = this.#usable(version);
    if (usable === undefined) return [];
    const commit = version.index.commit;
    let owner = state.overflowOwner.get(pgno);
    const chains = new Map<number, number[]>();
    if (owner === undefined) {
      for (const [root, ts] of state.trees) {
        if (!ts.whole || ts.overflow) continue;
        const tree = this.map(version).tree(root);
        if (!tree) continue;
        const pages: number[] = [];
        for (const leaf of tree.leaves) {
          const page = this.#host.peek(version, leaf);
          if (page) pages.push(...this.#noteOverflow(page, leaf, usable, commit, root, state));
        }
        chains.set(root, pages);
        if (state.overflowOwner.has(pgno)) {
          owner = root;
          break;
        }
      }
    }
    if (owner === undefined) return [];
    const ts = state.tree(owner);
    const along: PageRequest[] = [];
    if (!ts.overflow) {
      ts.overflow = true;
      const reqs: PageRequest[] = [];
      for (const p of chains.get(owner) ?? []) {
        if (p === pgno) continue;
        const loc = version.index.lookup(p);
        if (loc && !this.#host.pendingOrCached(p, loc)) reqs.push({ pgno: p, loc });
      }
      this.#bulk(version, this.map(version), owner, reqs, state, ts);
    }
    return along;
  }

  /**
   * Records the overflow pages of a leaf's cells: each chain's first page and
   * a guess of the rest (contiguous pages, as SQLite allocates them when the
   * file has no free pages). Returns the pages newly recorded.
   */
  #noteOverflow(
    page: Uint8Array,
    pgno: number,
    usable: number,
    commit: number,
    root: number,
    state: StatementFetchState,
  ): number[] {
    const out: number[] = [];
    for (const chain of leafOverflowChains(page, pgno, usable, commit)) {
      for (let i = 0; i < chain.pages && chain.first + i <= commit; i++) {
        const p = chain.first + i;
        if (state.overflowOwner.has(p)) continue;
        state.overflowOwner.set(p, root);
        out.push(p);
      }
    }
    return out;
  }

  /** The byte budget of one statement over `version`. */
  #budget(version: ReplicaVersion): number {
    const set = this.#options.budgetBytes;
    if (set !== undefined) return set;
    const size = this.#host.versionBytes(version);
    return Math.max(this.#options.cacheBytes / 2, Math.min(size, MAX_DEFAULT_BUDGET));
  }

  #usable(version: ReplicaVersion): number | undefined {
    const page1 = this.#host.peek(version, 1);
    return page1 ? usableSize(page1, version.index.pageSize) : undefined;
  }
}
