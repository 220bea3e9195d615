/**
 * The B-tree skeleton sidecar: a small LTX file the pagecast writer publishes
 * next to each snapshot, holding page 1, every interior b-tree page and the
 * schema's pages of the snapshot's version, so that a cold reader fetching it
 * in the same round trip as the page indexes needs only leaf pages for a point
 * lookup. Its key sits outside every level prefix: Litestream never lists it.
 * Reader-safe.
 */
import { formatLtxFilename } from "../format/index.js";

/** Store prefix of skeleton files, relative to the replica root. */
export const SKELETON_PREFIX = "pagecast-skeleton/";

/**
 * Largest skeleton a writer publishes and a reader fetches (bytes): it is read
 * whole while opening, so it must stay small next to the database.
 */
export const SKELETON_MAX_BYTES = 32 * 1024 * 1024;

/** Key of the skeleton of snapshot `0009/0000000000000001-<txid>.ltx`. */
export function skeletonKey(snapshotTXID: number): string {
  return `${SKELETON_PREFIX}${formatLtxFilename(1, snapshotTXID)}`;
}

/**
 * The TXID a skeleton's LTX header carries (as both minTXID and maxTXID) for
 * the snapshot ending at `snapshotTXID`: never 1, because a header starting
 * at TXID 1 claims a complete snapshot.
 */
export function skeletonHeaderTXID(snapshotTXID: number): number {
  return snapshotTXID + 1;
}
