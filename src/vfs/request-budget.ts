/**
 * The request budget of one statement (`maxRequestsPerQuery`): every range
 * GET the statement causes (its misses, their read-ahead, bulk fetches, the
 * prefetch they trigger, hydration it starts) is booked here before it is
 * sent, so a query never silently exceeds a runtime's subrequest limit
 * (Cloudflare Workers: 50 per invocation on the free plan).
 */
import { ReplicaError } from "./replica-error.js";

/**
 * `maxRequestsPerQuery` in Cloudflare Workers: room under the free plan's 50
 * subrequests per invocation for a poll and the app's own requests.
 */
export const DEFAULT_MAX_REQUESTS_PER_QUERY = 40;

/**
 * The default budget where the code runs: {@link DEFAULT_MAX_REQUESTS_PER_QUERY}
 * in Workers (which cap subrequests), none elsewhere (Node, Lambda, browsers
 * cap nothing, and a cold range scan of a large table may take more than 40).
 */
export function defaultMaxRequestsPerQuery(): number {
  const ua = (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent;
  return ua === "Cloudflare-Workers" ? DEFAULT_MAX_REQUESTS_PER_QUERY : Number.POSITIVE_INFINITY;
}

/** Range GETs one statement may still send. */
export class RequestBudget {
  /** Requests booked so far. */
  used = 0;

  constructor(
    /** Most requests the statement may send. */
    readonly limit: number,
    /** The statement (SQL text), named in the error. */
    readonly sql: string,
  ) {}

  /** Requests still allowed. */
  get left(): number {
    return Math.max(0, this.limit - this.used);
  }

  /** Half the budget is spent: time to coalesce what is left into few big GETs. */
  get near(): boolean {
    return this.used * 2 >= this.limit;
  }

  /** Books `n` requests about to be sent (callers check `left` first). */
  charge(n: number): void {
    this.used += n;
  }

  /** The error for a statement that needs `needed` more requests than it has left. */
  exceeded(needed = 1): RequestBudgetError {
    return new RequestBudgetError(this.sql, this.used, this.limit, needed);
  }
}

/**
 * A statement needed more storage requests than `maxRequestsPerQuery` allows
 * (code `REPLICA_REQUEST_BUDGET`). Nothing was sent beyond the budget; the
 * replica stays usable (pages fetched so far stay cached, so running the
 * statement again, or with a larger budget, costs less).
 */
export class RequestBudgetError extends ReplicaError {
  constructor(
    /** The statement's SQL text. */
    readonly statement: string,
    /** Requests the statement made. */
    readonly requests: number,
    /** Its budget (`maxRequestsPerQuery`). */
    readonly budget: number,
    /** Further requests it needed at the point it stopped. */
    readonly needed: number,
  ) {
    const sql = statement.length > 200 ? `${statement.slice(0, 200)}…` : statement;
    super(
      "REPLICA_REQUEST_BUDGET",
      `statement needs more than its ${budget} storage requests (maxRequestsPerQuery): ` +
        `${requests} made, ${needed} more needed; statement: ${sql}`,
    );
  }
}
