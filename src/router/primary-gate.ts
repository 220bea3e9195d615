/**
 * Keeps other sessions off the primary while one session has a transaction
 * open on it. Drizzle's proxy driver sends BEGIN, the statements and COMMIT as
 * separate calls over one connection; without a gate, a concurrent request's
 * statement would land inside someone else's transaction.
 */
export class PrimaryGate {
  #owner: object | undefined;
  #waiters: (() => void)[] = [];

  /** The session holding the gate, if any. */
  get owner(): object | undefined {
    return this.#owner;
  }

  /**
   * Resolves once `session` may use the primary (the gate is free or already
   * its own); with `take` (a statement opening a transaction), holding it.
   * The check and the taking are one step: a release wakes every waiter, and
   * the first to run takes the gate before the others look.
   */
  async enter(session: object, take = false): Promise<void> {
    while (this.#owner !== undefined && this.#owner !== session) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (take) this.#owner = session;
  }

  /** Takes the gate for `session` when nobody holds it (a transaction the connection reports open). */
  holdIfFree(session: object): void {
    if (this.#owner === undefined) this.#owner = session;
  }

  /** Gives the gate back (no-op unless `session` holds it) and wakes the waiters. */
  release(session: object): void {
    if (this.#owner !== session) return;
    this.#owner = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
