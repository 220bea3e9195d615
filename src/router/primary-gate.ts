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

  /** Resolves once `session` may use the primary (the gate is free or already its own). */
  async enter(session: object): Promise<void> {
    while (this.#owner !== undefined && this.#owner !== session) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Takes the gate for `session` (call right after `enter`, before an await). */
  hold(session: object): void {
    this.#owner = session;
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
