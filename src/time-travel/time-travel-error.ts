import { PagecastError } from "../errors.js";

/**
 * A deliberate failure of time travel.
 *
 * Codes:
 * - `TIME_TRAVEL_INVALID_TIME`: `when` is not one of the accepted forms (garbage,
 *   an ISO time without a zone, a negative epoch, a bad TXID...).
 * - `TIME_TRAVEL_IMPOSSIBLE_DATE`: a well-formed date or time that does not exist
 *   (2025-02-30, 24:00, month 13, a zone offset of 25 hours).
 * - `TIME_TRAVEL_FUTURE`: the moment is later than now.
 * - `TIME_TRAVEL_UNAVAILABLE`: the replica does not hold that state (before the
 *   oldest retained snapshot: the message names the earliest available time; or
 *   a TXID beyond the newest).
 * - `TIME_TRAVEL_READ_ONLY`: a statement that may write was sent to the past; nothing ran.
 * - `TIME_TRAVEL_INVALID_SOURCE`: the first argument is neither a router nor a replica.
 */
export class TimeTravelError extends PagecastError {}
