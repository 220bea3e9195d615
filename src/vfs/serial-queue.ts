/**
 * A promise-chain mutex. One wa-sqlite module instance must never be entered
 * twice at once (Asyncify keeps one suspended stack), so every call into a
 * module goes through its queue.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /**
   * Runs `task` after every task queued before it has settled. An idle queue
   * starts it at once, in the caller's turn (no promise hop when uncontended);
   * `task` may then also complete synchronously.
   */
  run<T>(task: () => T | Promise<T>): Promise<T> {
    let result: Promise<T>;
    if (this.#pending === 0) {
      this.#pending++;
      try {
        const value = task();
        result = value instanceof Promise ? value : Promise.resolve(value);
      } catch (err) {
        result = Promise.reject(err);
      }
    } else {
      this.#pending++;
      result = this.#tail.then(task);
    }
    // The chain continues whether the task succeeded or not.
    this.#tail = result.then(
      () => this.#settle(),
      () => this.#settle(),
    );
    return result;
  }

  /**
   * Like {@link run}, but a task started on an idle queue that completes
   * synchronously returns its value itself (no promise at all): the warm
   * query path. Synchronous failures are thrown.
   */
  runNow<T>(task: () => T | Promise<T>): T | Promise<T> {
    if (this.#pending !== 0) return this.run(task);
    this.#pending++;
    let value: T | Promise<T>;
    try {
      value = task();
    } catch (err) {
      this.#pending--;
      throw err;
    }
    if (!(value instanceof Promise)) {
      // Nothing can have queued meanwhile: the task never yielded.
      this.#pending--;
      return value;
    }
    this.#tail = value.then(
      () => this.#settle(),
      () => this.#settle(),
    );
    return value;
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.#pending;
  }

  #settle(): void {
    this.#pending--;
  }
}
