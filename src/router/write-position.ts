/**
 * Where a write will be visible on replicas, and the opaque bookmark (like a
 * D1 bookmark) that carries it across requests in a cookie or header.
 *
 * A position is as exact as the primary adapter can make it:
 * - `txid`: the write is contained in this TXID (a replica at or past it has it);
 * - `after`: the writer's newest published TXID when the write committed. The
 *   write is then in TXID `after + AFTER_BOUND` at the latest: `after + 1` may
 *   be uploading, changes captured meanwhile wait in one buffer (`after + 2`),
 *   and a write committed just before that buffer is taken is captured into
 *   the next one (`after + 3`). A safe bound until the exact TXID is known;
 * - `at`: commit time (ms since epoch), for primaries that know nothing else.
 */
import { RouterError } from "./router-error.js";

/**
 * TXIDs past the writer's published one within which a write committed then
 * is published: one uploading, one buffer capturing meanwhile, and the next
 * (see the module comment).
 */
export const AFTER_BOUND = 3;

/** Where a committed write will appear in the replicas. */
export interface WritePosition {
  /** Exact: the TXID containing the write. */
  txid?: number;
  /** The writer's published TXID when the write committed (the write is in `after + AFTER_BOUND` at the latest). */
  after?: number;
  /** When the write committed (ms since epoch). */
  at: number;
  /**
   * Commit order within this process (positions marked here): two writes in
   * one millisecond are told apart by it, never by `at`.
   */
  seq?: number;
}

/**
 * What a replica must have reached before a session may read from it. Only
 * the newest unresolved position of each kind is kept: positions only grow, so
 * its conditions imply those of every older one.
 */
export interface Requirement {
  /** Exact: the replica's TXID must be at least this (0: nothing). */
  txid: number;
  /** Newest unresolved writer-relative position: the replica needs `after + AFTER_BOUND`. */
  after: { after: number; at: number; seq?: number } | undefined;
  /** Newest position known only by its commit time (ms). */
  timeAt: number | undefined;
}

/** The empty requirement: every replica qualifies. */
export function emptyRequirement(): Requirement {
  return { txid: 0, after: undefined, timeAt: undefined };
}

/** Adds a write's position to a requirement (in place). */
export function addPosition(req: Requirement, pos: WritePosition): void {
  if (pos.txid !== undefined) {
    req.txid = Math.max(req.txid, pos.txid);
    // The exact TXID of a later write covers every earlier write too; a write
    // in the same millisecond may be later (only `seq` tells).
    if (req.after && committedBy(req.after, pos)) req.after = undefined;
    if (req.timeAt !== undefined && req.timeAt <= pos.at) req.timeAt = undefined;
    return;
  }
  if (pos.after !== undefined) {
    const prev = req.after;
    const seq = Math.max(pos.seq ?? 0, prev?.seq ?? 0);
    req.after = {
      after: Math.max(pos.after, prev?.after ?? 0),
      at: Math.max(pos.at, prev?.at ?? 0),
      // Without an order for every position folded in, none.
      ...(pos.seq !== undefined && (prev === undefined || prev.seq !== undefined) ? { seq } : {}),
    };
    return;
  }
  req.timeAt = Math.max(pos.at, req.timeAt ?? 0);
}

/**
 * Whether the writes of `pending` all committed by `pos`: by commit order
 * when both carry one (positions marked in this process), else by time
 * (a bookmark's position, resolved as itself).
 */
function committedBy(pending: { at: number; seq?: number }, pos: WritePosition): boolean {
  if (pending.seq !== undefined && pos.seq !== undefined) return pending.seq <= pos.seq;
  return pending.at <= pos.at;
}

/**
 * Records that every write committed up to `upTo` is in TXID `txid`
 * (the answer of `resolvePosition`). Newer unresolved positions stay.
 */
export function resolveRequirement(req: Requirement, upTo: WritePosition, txid: number): void {
  addPosition(req, { txid, at: upTo.at, ...(upTo.seq !== undefined ? { seq: upTo.seq } : {}) });
}

/** Inputs of {@link replicaSatisfies}. */
export interface SatisfactionInput {
  /** The replica's TXID (`null`: nothing applied). */
  txid: number | null;
  /** The replica's lag in seconds (`null`: unknown). */
  lagSeconds: number | null;
  now: number;
  /**
   * For positions known only by time: how long the writer may take to publish
   * a commit. A replica that confirmed it had everything published at least
   * this long after the write is assumed to have it.
   */
  assumePublishedWithinMs: number;
}

/** Whether a replica in this state already holds every write the requirement names. */
export function replicaSatisfies(req: Requirement, s: SatisfactionInput): boolean {
  const txid = s.txid ?? 0;
  if (txid < req.txid) return false;
  if (req.after && txid < req.after.after + AFTER_BOUND) return false;
  if (req.timeAt !== undefined) {
    if (s.lagSeconds === null) return false;
    const confirmedAt = s.now - s.lagSeconds * 1000;
    if (confirmedAt < req.timeAt + s.assumePublishedWithinMs) return false;
  }
  return true;
}

const PREFIX = "pc1";
const MAX_BOOKMARK_LENGTH = 80;
const B36 = "([0-9a-z]{0,11})";
const BOOKMARK = new RegExp(`^pc1\\.([0-9a-z]{1,11})\\.${B36}\\.${B36}\\.${B36}$`);

function b36(n: number | undefined): string {
  return n === undefined ? "" : n.toString(36);
}

/**
 * Serializes a requirement into an opaque bookmark,
 * `pc1.<txid>.<after>.<afterAt>.<timeAt>` in base 36. Apps treat it as an
 * opaque string.
 */
export function encodeBookmark(req: Requirement): string {
  return `${PREFIX}.${b36(req.txid)}.${b36(req.after?.after)}.${b36(req.after?.at)}.${b36(req.timeAt)}`;
}

function field(text: string): number | undefined {
  if (text === "") return undefined;
  const n = Number.parseInt(text, 36);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RouterError("ROUTER_BOOKMARK_INVALID", "bookmark holds a number out of range");
  }
  return n;
}

/**
 * Parses a bookmark made by {@link encodeBookmark}. Bookmarks come from
 * clients: anything malformed is a `RouterError` (`ROUTER_BOOKMARK_INVALID`),
 * and the message never echoes the input.
 */
export function decodeBookmark(bookmark: string): Requirement {
  const m =
    typeof bookmark === "string" && bookmark.length <= MAX_BOOKMARK_LENGTH
      ? BOOKMARK.exec(bookmark)
      : null;
  if (!m) throw new RouterError("ROUTER_BOOKMARK_INVALID", "not a pagecast bookmark");
  const txid = field(m[1]!) ?? 0;
  const after = field(m[2]!);
  const afterAt = field(m[3]!);
  const timeAt = field(m[4]!);
  if ((after === undefined) !== (afterAt === undefined)) {
    throw new RouterError("ROUTER_BOOKMARK_INVALID", "bookmark has a position without its time");
  }
  return {
    txid,
    after: after !== undefined && afterAt !== undefined ? { after, at: afterAt } : undefined,
    timeAt,
  };
}
