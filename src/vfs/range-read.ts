/**
 * Reading one byte range of an LTX object: from the persistent cache where it
 * holds the bytes, from storage for the rest (and then into the cache).
 */
import type { ObjectStore } from "../storage/object-store.js";
import { joinPieces } from "../storage/response-body.js";
import type { PlanFile } from "./page-index.js";
import type { PersistentCache } from "./persistent-cache.js";
import { ReplicaError } from "./replica-error.js";

/** Cached pieces closer than this are read again with the holes around them (one request, not two). */
const HOLE_MERGE_BYTES = 64 * 1024;

/** A persistent cache and the store location that prefixes its entry names. */
export interface PersistentSource {
  cache: PersistentCache;
  namespace: string;
}

/** The name under which `file`'s bytes are cached, when its identity is known. */
export function persistentName(namespace: string, file: PlanFile): string | undefined {
  return file.objectId === undefined ? undefined : `${namespace}\n${file.objectId}`;
}

/** Exactly `[start, end)` of `key`, from storage, in one array. */
export async function readFromStore(
  store: ObjectStore,
  key: string,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  return joined(await readPiecesFromStore(store, key, start, end, signal), end - start);
}

/** `pieces` (of `length` bytes in all) as one array: the piece itself when there is one. */
function joined(pieces: Uint8Array[], length: number): Uint8Array {
  return pieces.length === 1 ? pieces[0]! : joinPieces(pieces, length);
}

/**
 * Exactly `[start, end)` of `key`, from storage, in the pieces it arrived in
 * where the store gives them (one piece otherwise): a large read then costs
 * no body-sized allocation and copy (hydration reads 8 MiB ranges; on a VM
 * where fresh memory is slow to touch, the buffers alone took a quarter of
 * hydrating a 157 MB database).
 */
export async function readPiecesFromStore(
  store: ObjectStore,
  key: string,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<Uint8Array[]> {
  const length = end - start;
  const res = await store.get(key, {
    range: { offset: start, length },
    pieces: true,
    ...(signal ? { signal } : {}),
  });
  if (res.notModified) throw misplaced(key, start, length);
  const pieces = res.pieces ?? [res.body];
  let received = 0;
  for (const p of pieces) received += p.length;
  if (res.offset !== start || received !== length) throw misplaced(key, start, length);
  return pieces;
}

function misplaced(key: string, start: number, length: number): ReplicaError {
  return new ReplicaError(
    "REPLICA_PAGE_INVALID",
    `short or misplaced range read of ${key} (${start}+${length})`,
  );
}

/**
 * `[start, end)` of `file` as pieces in order: {@link readPiecesFromStore}
 * without a persistent cache, else one piece through it.
 */
export async function readRangePieces(
  store: ObjectStore,
  persistent: PersistentSource | undefined,
  file: PlanFile,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<Uint8Array[]> {
  const name = persistent ? persistentName(persistent.namespace, file) : undefined;
  if (!persistent || name === undefined) {
    return readPiecesFromStore(store, file.key, start, end, signal);
  }
  return [await readThroughCache(store, persistent, name, file, start, end, signal)];
}

/** `[start, end)` of `file`: what the cache holds, the holes from storage (and into the cache). */
async function readThroughCache(
  store: ObjectStore,
  persistent: PersistentSource,
  name: string,
  file: PlanFile,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const length = end - start;
  const pieces = await persistent.cache.read(name, start, length);
  if (pieces.length === 1 && pieces[0]!.bytes.length === length) return pieces[0]!.bytes;
  const out = new Uint8Array(length);
  const holes: [number, number][] = [];
  let at = start;
  for (const p of pieces) {
    out.set(p.bytes, p.offset - start);
    if (p.offset > at) holes.push([at, p.offset]);
    at = p.offset + p.bytes.length;
  }
  if (at < end) holes.push([at, end]);
  const merged: [number, number][] = [];
  for (const h of holes) {
    const last = merged[merged.length - 1];
    if (last && h[0] - last[1] <= HOLE_MERGE_BYTES) last[1] = h[1];
    else merged.push([h[0], h[1]]);
  }
  await Promise.all(
    merged.map(async ([s, e]) => {
      const bytes = await readFromStore(store, file.key, s, e, signal);
      out.set(bytes, s - start);
      void persistent.cache.write(name, s, bytes);
    }),
  );
  return out;
}
