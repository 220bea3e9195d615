/**
 * `vfsStatus(routerOrReplica)`: one call for the figures of a replica, or of
 * a router (each replica's status plus reads per target and fallbacks).
 */
import type { ReplicaStatus } from "../vfs/replica-core.js";
import { type RouterStatus, routerInternals } from "./router.js";
import { RouterError } from "./router-error.js";

/** The status of a router made by `createRouter`. */
export function vfsStatus(router: { readonly $status: () => RouterStatus }): RouterStatus;
/** The status of a replica (same as `replica.status()`). */
export function vfsStatus(replica: { status(): ReplicaStatus }): ReplicaStatus;
export function vfsStatus(
  target: { readonly $status: () => RouterStatus } | { status(): ReplicaStatus },
): RouterStatus | ReplicaStatus {
  const router = routerInternals(target);
  if (router) return router.status();
  const status = (target as { status?: unknown } | null)?.status;
  if (typeof status === "function") return (target as { status(): ReplicaStatus }).status();
  throw new RouterError(
    "ROUTER_INVALID_ARGUMENT",
    "vfsStatus needs a router (createRouter) or a replica (openReplica)",
  );
}
