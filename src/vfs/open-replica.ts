/**
 * `openReplica` as `pagecast` and `pagecast/node` export it: by URL (through
 * `openStore`, so in Node also file:// and the AWS SDK's s3://) or over a
 * given store, with the hybrid connection's plain build when one is given or
 * registered. `pagecast/reader` opens through the same code without either.
 */
import { openStore } from "../storage/open-store.js";
import {
  openReplicaWith,
  type Replica,
  type ReplicaOpeners,
  type ReplicaOptions,
  type ReplicaStoreOptions,
} from "./replica.js";
import { loadSyncGlue } from "./sync-build.js";

const FULL: ReplicaOpeners = { openUrl: openStore, syncGlue: loadSyncGlue };

/**
 * Opens a replica: by URL (`s3://bucket/prefix?endpoint=...`, `memory://name`)
 * or over a given store. Reads the head object (or lists, for a Litestream
 * layout) and every planned file's page index; pages are fetched on demand.
 */
export function openReplica(
  target: string | ReplicaStoreOptions,
  options: ReplicaOptions = {},
): Promise<Replica> {
  return openReplicaWith(FULL, target, options);
}
