import { PagecastError } from "../errors.js";

/**
 * A deliberate failure of the read/write router.
 *
 * Codes:
 * - `ROUTER_INVALID_ARGUMENT`: a bad option (no primary, a pinned replica, a bad threshold...).
 * - `ROUTER_READ_ONLY`: a statement that may write was sent through a read-only database
 *   (`$replica`, a replica database); nothing was executed.
 * - `ROUTER_NO_REPLICA`: `$replica` found no replica to read from.
 * - `ROUTER_BOOKMARK_INVALID`: a bookmark (read-your-writes token) is malformed.
 * - `ROUTER_NO_DRIZZLE`: drizzle-orm (a peer dependency of the router) could not be loaded.
 * - `ROUTER_NO_CONTEXT`: `$withSession` needs an async context provider (AsyncLocalStorage).
 * - `ROUTER_NESTED_SESSION`: a statement of another session (a `$session` database) was
 *   issued inside an open transaction, which it would wait for; use the transaction's `tx`.
 */
export class RouterError extends PagecastError {}
