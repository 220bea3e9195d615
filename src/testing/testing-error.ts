import { PagecastError } from "../errors.js";

/**
 * A misuse of the testing helpers themselves (e.g. asking to damage bytes
 * that are not a complete LTX file, or a fault rate outside [0, 1]).
 *
 * Codes: `TESTING_INVALID_ARGUMENT`.
 */
export class TestingError extends PagecastError {}
