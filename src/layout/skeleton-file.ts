/**
 * The B-tree skeleton sidecar: a small LTX file the pagecast writer publishes
 * next to each snapshot, holding page 1, every interior b-tree page and the
 * schema's pages of the snapshot's version, so that a cold reader fetching it
 * in the same round trip as the page indexes needs only leaf pages for a point
 * lookup. Its key sits outside every level prefix (Litestream never lists
 * it) and does not end in `.ltx`: its name is the snapshot's, but its header
 * carries another TXID ({@link skeletonHeaderTXID}), so a tool collecting
 * `*.ltx` files must not mistake it for an LTX file of the replica. Writers
 * before this naming used `<snapshot name>.ltx` ({@link legacySkeletonKey});
 * readers take whichever key the head object names. Reader-safe.
 */
import { formatLtxFilename, parseLtxFilename } from "../format/index.js";

/** Store prefix of skeleton files, relative to the replica root. */
export const SKELETON_PREFIX = "pagecast-skeleton/";

/** File name suffix of skeleton files (never `.ltx`). */
export const SKELETON_SUFFIX = ".skeleton";

/**
 * Largest skeleton a writer publishes and a reader fetches (bytes): it is read
 * whole while opening, so it must stay small next to the database.
 */
export const SKELETON_MAX_BYTES = 32 * 1024 * 1024;

function snapshotName(snapshotTXID: number): string {
  return formatLtxFilename(1, snapshotTXID).slice(0, -".ltx".length);
}

/**
 * Key of the skeleton of snapshot `0009/0000000000000001-<txid>.ltx`:
 * `pagecast-skeleton/0000000000000001-<txid>.skeleton`.
 */
export function skeletonKey(snapshotTXID: number): string {
  return `${SKELETON_PREFIX}${snapshotName(snapshotTXID)}${SKELETON_SUFFIX}`;
}

/**
 * The key earlier writers gave the same skeleton
 * (`pagecast-skeleton/0000000000000001-<txid>.ltx`): still accepted in head
 * objects, and to be deleted with its snapshot like the current one.
 */
export function legacySkeletonKey(snapshotTXID: number): string {
  return `${SKELETON_PREFIX}${formatLtxFilename(1, snapshotTXID)}`;
}

/**
 * The snapshot TXID a skeleton key (current or legacy name) belongs to, or
 * `undefined` when `key` is not a skeleton key.
 */
export function parseSkeletonKey(key: string): number | undefined {
  if (typeof key !== "string" || !key.startsWith(SKELETON_PREFIX)) return undefined;
  let name = key.slice(SKELETON_PREFIX.length);
  if (name.endsWith(SKELETON_SUFFIX)) name = `${name.slice(0, -SKELETON_SUFFIX.length)}.ltx`;
  const range = parseLtxFilename(name);
  return range && range.minTXID === 1 ? range.maxTXID : undefined;
}

/**
 * The TXID a skeleton's LTX header carries (as both minTXID and maxTXID) for
 * the snapshot ending at `snapshotTXID`: never 1, because a header starting
 * at TXID 1 claims a complete snapshot.
 */
export function skeletonHeaderTXID(snapshotTXID: number): number {
  return snapshotTXID + 1;
}
