/**
 * Base class of every error pagecast throws on purpose. Callers can branch on
 * `code` (stable, machine-readable) instead of parsing messages.
 */
export class PagecastError extends Error {
  /** Stable machine-readable error code, e.g. `LTX_CORRUPT`, `STORE_PRECONDITION_FAILED`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
