/** Runs calls one at a time, in order (the replicator's capture and publish lanes). */
export class Lane {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every call queued before it (whether they failed or not). */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => {});
    return next;
  }
}
