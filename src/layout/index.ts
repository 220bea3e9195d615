/** Replica layout shared by the writer (replicator, restore) and the reader (VFS). Reader-safe. */

export { planRestoreWithTimes, readHeaderTime } from "./file-times.js";
export {
  HEAD_OBJECT_KEY,
  HEAD_OBJECT_MAX_BYTES,
  HEAD_OBJECT_MAX_FILES,
  type HeadFile,
  type HeadObject,
  type HeadObjectRead,
  type HeadPage1,
  type HeadSkeleton,
  type HeadWriterHealth,
  parseHeadObject,
  readHeadObject,
  serializeHeadObject,
} from "./head-object.js";
export { LayoutError } from "./layout-error.js";
export {
  compareReplicaFiles,
  fileTime,
  type ListLevelOptions,
  levelPrefix,
  listAllLevels,
  listLevel,
  MAX_COMPACTION_LEVEL,
  parseReplicaKey,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "./replica-files.js";
export { planRestore, type RestorePlan, type RestoreTarget } from "./restore-plan.js";
export {
  legacySkeletonKey,
  parseSkeletonKey,
  SKELETON_MAX_BYTES,
  SKELETON_PREFIX,
  SKELETON_SUFFIX,
  skeletonHeaderTXID,
  skeletonKey,
} from "./skeleton-file.js";
export {
  type PlanTargetOptions,
  planTarget,
  readUsableHead,
  type TargetPlan,
} from "./target-listing.js";
