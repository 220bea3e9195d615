/**
 * A promise-chain mutex. One wa-sqlite module instance must never be entered
 * twice at once (Asyncify keeps one suspended stack), so every call into a
 * module goes through its queue.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** Runs `task` after every task queued before it has settled. */
  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(task);
    // The chain continues whether the task succeeded or not.
    this.#tail = result.then(
      () => this.#settle(),
      () => this.#settle(),
    );
    return result;
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.#pending;
  }

  #settle(): void {
    this.#pending--;
  }
}
