/**
 * The head object (`pagecast-head.json`): a small JSON document the writer
 * rewrites (compare-and-swap) after every upload. It names the newest TXID and
 * the whole current restore plan, with each file's page-index location, so a
 * reader learns of new data with one conditional GET instead of LISTs and can
 * fetch every page index with one exact range GET each. Litestream ignores it.
 *
 * Parsing is strict about what it knows: the document comes from storage and
 * is untrusted, so a known field that is missing or out of range is a typed
 * error rather than a guess. Fields it does not know are ignored (forward
 * compatibility): a later writer may add optional fields without older
 * readers refusing its heads; a change that older readers must not
 * misread bumps `version` instead. Reader-safe.
 */
import {
  LTX_HEADER_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  ltxKey,
  maxFrameSize,
} from "../format/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import { ObjectTooLargeError } from "../storage/store-errors.js";
import { LayoutError } from "./layout-error.js";
import { SNAPSHOT_LEVEL } from "./replica-files.js";
import { legacySkeletonKey, SKELETON_MAX_BYTES, skeletonKey } from "./skeleton-file.js";

/** Store key of the head object, relative to the replica root. */
export const HEAD_OBJECT_KEY = "pagecast-head.json";

/** Most files a head may list (bounds the work a hostile document can cause). */
export const HEAD_OBJECT_MAX_FILES = 10_000;

/** Longest `writer.lastDivergence` accepted. */
const WRITER_REASON_MAX = 200;

/** Largest integer field of a head (TXIDs, sizes, timestamps): 16 digits. */
const MAX_TXID = Number.MAX_SAFE_INTEGER;

/**
 * Largest head object accepted (bytes): the worst-case serialization of a
 * head with {@link HEAD_OBJECT_MAX_FILES} files (every number at its 16-digit
 * maximum, 128-character ids, every optional field), so any head the limits
 * allow can be written (about 2.2 MiB; a typical one is a few KiB).
 */
export const HEAD_OBJECT_MAX_BYTES = worstCaseHeadBytes();

function worstCaseHeadBytes(): number {
  const n = MAX_TXID;
  const key = ltxKey(SNAPSHOT_LEVEL, n, n);
  const file = JSON.stringify({
    level: SNAPSHOT_LEVEL,
    minTXID: n,
    maxTXID: n,
    key,
    size: n,
    indexOffset: n,
    indexSize: n,
    timestamp: n,
  });
  const id = "x".repeat(128);
  const top = JSON.stringify({
    format: "pagecast-head",
    version: 1,
    writerId: id,
    generation: id,
    txid: n,
    timestamp: n,
    pageSize: 65536,
    commit: 0xffffffff,
    postApplyChecksum: "f".repeat(16),
    files: [],
    skeleton: { key: skeletonKey(n), size: n, txid: n },
    page1: { key, offset: n, size: n },
    writer: {
      health: "diverged",
      divergences: n,
      lastDivergenceAt: n,
      // Each character at its longest JSON escape (\u0000: 6 bytes).
      lastDivergence: "\u0000".repeat(WRITER_REASON_MAX),
    },
  });
  // One comma between consecutive file entries.
  return top.length + HEAD_OBJECT_MAX_FILES * (file.length + 1) - 1;
}

/** One file of the head's plan. */
export interface HeadFile {
  level: number;
  minTXID: number;
  maxTXID: number;
  /** Store key; always the canonical key of (level, minTXID, maxTXID). */
  key: string;
  /** Object size in bytes. */
  size: number;
  /** Byte offset of the page-index section (entries, terminator, 8-byte size). */
  indexOffset: number;
  /**
   * Byte length of the page-index section including its trailing 8-byte size
   * field; the section ends where the 16-byte trailer begins.
   */
  indexSize: number;
  /** Header timestamp of the file (ms since epoch): commit time of `maxTXID`. */
  timestamp: number;
}

/** The B-tree skeleton published with a snapshot (see `skeleton-file.ts`). */
export interface HeadSkeleton {
  /** Store key: `skeletonKey(txid)`, or `legacySkeletonKey(txid)` in heads of earlier writers. */
  key: string;
  /** Object size in bytes (a reader fetches it whole). */
  size: number;
  /** maxTXID of the snapshot whose pages it holds. */
  txid: number;
}

/**
 * The writer's own health (see the replicator's health.ts), present once the
 * writer that wrote the head detected a divergence: the replica did not
 * equal the database and a snapshot was (or is being) published to repair it.
 */
export interface HeadWriterHealth {
  /** `diverged` until the repairing snapshot is published, then `ok`. */
  health: "ok" | "diverged";
  /** Divergences the writer detected since it started. */
  divergences: number;
  /** When the last one was detected (ms since epoch). */
  lastDivergenceAt: number;
  /** Why (at most 200 characters). */
  lastDivergence: string;
}

/** Where the newest image of page 1 lives: one frame of one of the plan's files. */
export interface HeadPage1 {
  /** Key of a file of `files`. */
  key: string;
  /** Offset of the whole frame (page header included). */
  offset: number;
  /** Length of the whole frame. */
  size: number;
}

/** The parsed head object. */
export interface HeadObject {
  format: "pagecast-head";
  version: 1;
  /** Random id of the writer instance that wrote this head. */
  writerId: string;
  /** Id that changes on every continuity break (each new snapshot lineage). */
  generation: string;
  /** Newest TXID. */
  txid: number;
  /** Commit time of `txid` (ms since epoch). */
  timestamp: number;
  pageSize: number;
  /** Database size in pages at `txid`. */
  commit: number;
  /** Database checksum at `txid` (CRC-64 XOR of every page, with the flag bit), when tracked. */
  postApplyChecksum: bigint | null;
  /**
   * The whole current plan, oldest first: a level-9 snapshot, then files each
   * starting at or before the previous file's maxTXID + 1 and ending after it,
   * the last ending at `txid`. Applying them in order yields the state at `txid`.
   */
  files: HeadFile[];
  /**
   * Optional (added later; older heads lack it): the skeleton of a snapshot.
   * Readers use it only when `txid` is the plan's snapshot.
   */
  skeleton?: HeadSkeleton;
  /** Optional: where page 1's newest image is, so a reader can fetch it with the indexes. */
  page1?: HeadPage1;
  /** Optional: the writer's health, once it detected a divergence (older writers never write it). */
  writer?: HeadWriterHealth;
}

const TOP_KEYS = [
  "format",
  "version",
  "writerId",
  "generation",
  "txid",
  "timestamp",
  "pageSize",
  "commit",
  "postApplyChecksum",
  "files",
] as const;

const WRITER_KEYS = ["health", "divergences", "lastDivergenceAt", "lastDivergence"] as const;
const SKELETON_KEYS = ["key", "size", "txid"] as const;
const PAGE1_KEYS = ["key", "offset", "size"] as const;
const FILE_KEYS = [
  "level",
  "minTXID",
  "maxTXID",
  "key",
  "size",
  "indexOffset",
  "indexSize",
  "timestamp",
] as const;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const CHECKSUM_PATTERN = /^[0-9a-f]{16}$/;

function invalid(message: string): LayoutError {
  return new LayoutError("HEAD_OBJECT_INVALID", `invalid head object: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Every required field must be present (as an own property). Other fields
 * are not looked at: unknown ones are ignored (see the module comment), and
 * the parsed result is built from the known ones only.
 */
function requireKeys(obj: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of keys) {
    if (!Object.hasOwn(obj, k)) throw invalid(`missing field ${k} in ${where}`);
  }
}

function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be an integer in ${min}..${max}`);
  }
  return v;
}

function id(v: unknown, name: string): string {
  if (typeof v !== "string" || !ID_PATTERN.test(v)) {
    throw invalid(`${name} must be 1-128 characters of [A-Za-z0-9_-]`);
  }
  return v;
}

function isPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

function parseFile(v: unknown, i: number): HeadFile {
  const where = `files[${i}]`;
  if (!isRecord(v)) throw invalid(`${where} must be an object`);
  requireKeys(v, FILE_KEYS, where);
  const level = int(v.level, `${where}.level`, 0, SNAPSHOT_LEVEL);
  const minTXID = int(v.minTXID, `${where}.minTXID`, 1, MAX_TXID);
  const maxTXID = int(v.maxTXID, `${where}.maxTXID`, minTXID, MAX_TXID);
  if (v.key !== ltxKey(level, minTXID, maxTXID)) {
    throw invalid(`${where}.key must be ${ltxKey(level, minTXID, maxTXID)}`);
  }
  const size = int(v.size, `${where}.size`, LTX_HEADER_SIZE + LTX_TRAILER_SIZE, MAX_TXID);
  const indexOffset = int(v.indexOffset, `${where}.indexOffset`, LTX_HEADER_SIZE, size);
  const indexSize = int(v.indexSize, `${where}.indexSize`, 9, size);
  if (indexOffset + indexSize + LTX_TRAILER_SIZE !== size) {
    throw invalid(`${where}: the page index must end where the trailer begins`);
  }
  const timestamp = int(v.timestamp, `${where}.timestamp`, 0, MAX_TXID);
  return { level, minTXID, maxTXID, key: v.key, size, indexOffset, indexSize, timestamp };
}

/** Parses and validates a head object. Throws `LayoutError(HEAD_OBJECT_INVALID)` on anything unexpected. */
export function parseHeadObject(bytes: Uint8Array): HeadObject {
  if (bytes.length > HEAD_OBJECT_MAX_BYTES) {
    throw invalid(`${bytes.length} bytes exceeds the ${HEAD_OBJECT_MAX_BYTES}-byte limit`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw invalid("not UTF-8 JSON");
  }
  if (!isRecord(doc)) throw invalid("not a JSON object");
  if (doc.format !== "pagecast-head") throw invalid('format must be "pagecast-head"');
  if (doc.version !== 1) throw invalid(`unsupported version ${JSON.stringify(doc.version)}`);
  requireKeys(doc, TOP_KEYS, "head");
  const writerId = id(doc.writerId, "writerId");
  const generation = id(doc.generation, "generation");
  const txid = int(doc.txid, "txid", 1, MAX_TXID);
  const timestamp = int(doc.timestamp, "timestamp", 0, MAX_TXID);
  const pageSize = int(doc.pageSize, "pageSize", 512, 65536);
  if (!isPageSize(pageSize)) throw invalid("pageSize must be a power of two in 512..65536");
  const commit = int(doc.commit, "commit", 0, 0xffffffff);
  let postApplyChecksum: bigint | null = null;
  if (doc.postApplyChecksum !== null) {
    if (
      typeof doc.postApplyChecksum !== "string" ||
      !CHECKSUM_PATTERN.test(doc.postApplyChecksum)
    ) {
      throw invalid("postApplyChecksum must be 16 lowercase hex digits or null");
    }
    postApplyChecksum = BigInt(`0x${doc.postApplyChecksum}`);
  }
  if (!Array.isArray(doc.files)) throw invalid("files must be an array");
  if (doc.files.length === 0) throw invalid("files must not be empty");
  if (doc.files.length > HEAD_OBJECT_MAX_FILES) {
    throw invalid(`more than ${HEAD_OBJECT_MAX_FILES} files`);
  }
  const files = doc.files.map(parseFile);
  const first = files[0]!;
  if (first.level !== SNAPSHOT_LEVEL || first.minTXID !== 1) {
    throw invalid("files[0] must be a level-9 snapshot starting at TXID 1");
  }
  for (let i = 1; i < files.length; i++) {
    const prev = files[i - 1]!;
    const cur = files[i]!;
    if (cur.level === SNAPSHOT_LEVEL)
      throw invalid(`files[${i}]: only the first file may be a snapshot`);
    // Overlap is allowed (a compacted file may re-cover applied TXIDs); a gap is not.
    if (cur.minTXID > prev.maxTXID + 1 || cur.maxTXID <= prev.maxTXID) {
      throw invalid(
        `files[${i}] (TXIDs ${cur.minTXID}-${cur.maxTXID}) does not extend files[${i - 1}] contiguously`,
      );
    }
  }
  if (files[files.length - 1]!.maxTXID !== txid) throw invalid("the last file must end at txid");
  const head: HeadObject = {
    format: "pagecast-head",
    version: 1,
    writerId,
    generation,
    txid,
    timestamp,
    pageSize,
    commit,
    postApplyChecksum,
    files,
  };
  // Optional fields (older writers omit them); known ones are validated when present.
  if (Object.hasOwn(doc, "skeleton")) head.skeleton = parseSkeleton(doc.skeleton);
  if (Object.hasOwn(doc, "page1")) head.page1 = parsePage1(doc.page1, files, pageSize);
  if (Object.hasOwn(doc, "writer")) head.writer = parseWriter(doc.writer);
  return head;
}

function parseWriter(v: unknown): HeadWriterHealth {
  if (!isRecord(v)) throw invalid("writer must be an object");
  requireKeys(v, WRITER_KEYS, "writer");
  if (v.health !== "ok" && v.health !== "diverged") {
    throw invalid('writer.health must be "ok" or "diverged"');
  }
  const divergences = int(v.divergences, "writer.divergences", 0, MAX_TXID);
  const lastDivergenceAt = int(v.lastDivergenceAt, "writer.lastDivergenceAt", 0, MAX_TXID);
  if (typeof v.lastDivergence !== "string" || v.lastDivergence.length > WRITER_REASON_MAX) {
    throw invalid(
      `writer.lastDivergence must be a string of at most ${WRITER_REASON_MAX} characters`,
    );
  }
  return { health: v.health, divergences, lastDivergenceAt, lastDivergence: v.lastDivergence };
}

function parseSkeleton(v: unknown): HeadSkeleton {
  if (!isRecord(v)) throw invalid("skeleton must be an object");
  requireKeys(v, SKELETON_KEYS, "skeleton");
  const txid = int(v.txid, "skeleton.txid", 1, MAX_TXID);
  // Heads of earlier writers name their skeletons with the legacy `.ltx` name.
  if (v.key !== skeletonKey(txid) && v.key !== legacySkeletonKey(txid)) {
    throw invalid(`skeleton.key must be ${skeletonKey(txid)}`);
  }
  const size = int(v.size, "skeleton.size", LTX_HEADER_SIZE + LTX_TRAILER_SIZE, SKELETON_MAX_BYTES);
  return { key: v.key, size, txid };
}

function parsePage1(v: unknown, files: HeadFile[], pageSize: number): HeadPage1 {
  if (!isRecord(v)) throw invalid("page1 must be an object");
  requireKeys(v, PAGE1_KEYS, "page1");
  const file = files.find((f) => f.key === v.key);
  if (!file) throw invalid("page1.key must name a file of files");
  const offset = int(v.offset, "page1.offset", LTX_HEADER_SIZE, file.indexOffset);
  const size = int(v.size, "page1.size", LTX_PAGE_HEADER_SIZE, maxFrameSize(pageSize));
  if (offset + size > file.indexOffset) throw invalid("page1 must lie before the page index");
  return { key: file.key, offset, size };
}

function serializeHeadObjectUnchecked(h: HeadObject): Uint8Array {
  const doc = {
    format: "pagecast-head",
    version: 1,
    writerId: h.writerId,
    generation: h.generation,
    txid: h.txid,
    timestamp: h.timestamp,
    pageSize: h.pageSize,
    commit: h.commit,
    postApplyChecksum:
      h.postApplyChecksum === null
        ? null
        : BigInt.asUintN(64, h.postApplyChecksum).toString(16).padStart(16, "0"),
    files: h.files.map((f) => ({
      level: f.level,
      minTXID: f.minTXID,
      maxTXID: f.maxTXID,
      key: f.key,
      size: f.size,
      indexOffset: f.indexOffset,
      indexSize: f.indexSize,
      timestamp: f.timestamp,
    })),
    ...(h.skeleton
      ? { skeleton: { key: h.skeleton.key, size: h.skeleton.size, txid: h.skeleton.txid } }
      : {}),
    ...(h.page1 ? { page1: { key: h.page1.key, offset: h.page1.offset, size: h.page1.size } } : {}),
    ...(h.writer
      ? {
          writer: {
            health: h.writer.health,
            divergences: h.writer.divergences,
            lastDivergenceAt: h.writer.lastDivergenceAt,
            lastDivergence: h.writer.lastDivergence,
          },
        }
      : {}),
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

/** Serializes a head object to JSON bytes, validating it first (a writer never publishes a bad head). */
export function serializeHeadObject(h: HeadObject): Uint8Array {
  const bytes = serializeHeadObjectUnchecked(h);
  parseHeadObject(bytes);
  return bytes;
}

/** What {@link readHeadObject} found. */
export type HeadObjectRead =
  | { notModified: true }
  | {
      notModified: false;
      head: HeadObject;
      /** ETag of the head read (for conditional polls and compare-and-swap). */
      etag: string;
    };

/**
 * Reads and parses the head object, downloading at most
 * {@link HEAD_OBJECT_MAX_BYTES}: a larger object (anyone with write access
 * can put one there) is refused from its announced size before its body is
 * read, as `LayoutError(HEAD_OBJECT_INVALID)` whose cause, an
 * `ObjectTooLargeError`, carries the object's metadata. Throws
 * `NotFoundError` when there is no head (a Litestream-written replica).
 */
export async function readHeadObject(
  store: ObjectStore,
  options: { ifNoneMatch?: string; signal?: AbortSignal } = {},
): Promise<HeadObjectRead> {
  let res: Awaited<ReturnType<ObjectStore["get"]>>;
  try {
    res = await store.get(HEAD_OBJECT_KEY, { ...options, maxBytes: HEAD_OBJECT_MAX_BYTES });
  } catch (err) {
    if (err instanceof ObjectTooLargeError) {
      throw new LayoutError(
        "HEAD_OBJECT_INVALID",
        `invalid head object: ${err.size === undefined ? "more than" : err.size} bytes exceeds the ${HEAD_OBJECT_MAX_BYTES}-byte limit (not downloaded)`,
        { cause: err },
      );
    }
    throw err;
  }
  if (res.notModified) return { notModified: true };
  return { notModified: false, head: parseHeadObject(res.body), etag: res.meta.etag };
}
