import { PagecastError } from "../errors.js";

/**
 * Something about a replica's layout is unusable: a malformed head object, a
 * restore target outside the retained history, a gap in the TXID chain.
 *
 * Codes: `HEAD_OBJECT_INVALID`, `RESTORE_TARGET_UNAVAILABLE`, `RESTORE_CHAIN_GAP`,
 * `REPLICA_EMPTY`.
 */
export class LayoutError extends PagecastError {}
