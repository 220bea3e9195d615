/**
 * Bounded waits and live failure reporting of the shared request loop:
 * operation deadlines, transfer allowances, attempt-failure events and the
 * health snapshot, clock-skew retries outside the attempt budget, and
 * close() ending requests in flight.
 */
import { describe, expect, test } from "vitest";
import type { AttemptFailure } from "../../src/storage/object-store.js";
import { RETRY_DEFAULTS, RequestRunner } from "../../src/storage/request-runner.js";
import {
  NotFoundError,
  StoreClosedError,
  StoreRequestError,
  StoreTimeoutError,
} from "../../src/storage/store-errors.js";

const transient = () =>
  new StoreRequestError("flaky", { retryable: true, status: 503, serverCode: "SlowDown" });
const skewed = () =>
  new StoreRequestError("skewed", {
    retryable: true,
    status: 403,
    serverCode: "RequestTimeTooSkewed",
    clockSkew: true,
  });
const never = () => new Promise<never>(() => {});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function script(...failures: Error[]) {
  let calls = 0;
  const fn = async () => {
    const failure = failures[calls++];
    if (failure) throw failure;
    return "ok";
  };
  return { fn, calls: () => calls };
}

describe("RequestRunner bounds", () => {
  test("defaults wait seconds, not minutes", () => {
    expect(RETRY_DEFAULTS.attemptTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(RETRY_DEFAULTS.operationTimeoutMs).toBeLessThanOrEqual(60_000);
  });

  test("an operation whose attempts all hang ends at its deadline with STORE_TIMEOUT", async () => {
    const runner = new RequestRunner(() => "memory://t", {
      attemptTimeoutMs: 100,
      operationTimeoutMs: 350,
      baseDelayMs: 1,
      maxDelayMs: 2,
      maxAttempts: 100,
    });
    const started = Date.now();
    let attempts = 0;
    const error = await runner
      .run(
        "get",
        undefined,
        () => {
          attempts++;
          return never();
        },
        undefined,
        { operation: "get k" },
      )
      .catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(error).toBeInstanceOf(StoreTimeoutError);
    expect(error).toMatchObject({
      code: "STORE_TIMEOUT",
      retryable: true,
      timeoutMs: 350,
      attempts: 4,
    });
    expect((error as Error).message).toMatch(/get k in memory:\/\/t: no answer within 350 ms/);
    expect(attempts).toBe(4);
    // Bounded: the deadline, not attempts x attempt timeout (bound generous for a busy machine).
    expect(took).toBeLessThan(3000);
  });

  test("a body's size extends the limits at minBytesPerSecond", async () => {
    const runner = new RequestRunner(() => "memory://t", {
      attemptTimeoutMs: 50,
      operationTimeoutMs: 60,
      minBytesPerSecond: 1000,
      maxAttempts: 1,
    });
    // 300 bytes at >= 1000 B/s: 300 ms more, so a 150 ms transfer is in time.
    const slow = async () => {
      await sleep(150);
      return "done";
    };
    expect(await runner.run("put", undefined, slow, undefined, { bytes: 300 })).toBe("done");
    await expect(runner.run("put", undefined, slow)).rejects.toMatchObject({
      serverCode: "Timeout",
    });
    // A size learnt during the attempt (a response's Content-Length) extends it then.
    const learnt = async ({ expectBytes }: { expectBytes: (n: number) => void }) => {
      await sleep(10);
      expectBytes(300);
      await sleep(140);
      return "late but alive";
    };
    expect(await runner.run("get", undefined, learnt)).toBe("late but alive");
  });

  test("each failed attempt is reported as it happens, and health shows it at once", async () => {
    const events: AttemptFailure[] = [];
    const healthAtEvent: (Date | null)[] = [];
    let runner: RequestRunner;
    runner = new RequestRunner(() => "memory://t", {
      baseDelayMs: 1,
      maxDelayMs: 2,
      maxAttempts: 3,
      onAttemptFailure: (f) => {
        events.push(f);
        healthAtEvent.push(runner.health().failingSince);
      },
    });
    const extra: AttemptFailure[] = [];
    const remove = runner.onAttemptFailure((f) => extra.push(f));
    runner.onAttemptFailure(() => {
      throw new Error("a broken listener changes nothing");
    });
    expect(runner.health()).toMatchObject({ failingSince: null, consecutiveFailures: 0 });
    const before = Date.now();
    const s = script(transient(), transient());
    expect(await runner.run("get", undefined, s.fn, undefined, { operation: "get k" })).toBe("ok");
    expect(events.map((e) => [e.attempt, e.willRetry, e.reason])).toEqual([
      [1, true, "HTTP 503 SlowDown"],
      [2, true, "HTTP 503 SlowDown"],
    ]);
    expect(events[0]).toMatchObject({
      url: "memory://t",
      kind: "get",
      operation: "get k",
      maxAttempts: 3,
    });
    expect(events[0]!.error).toBeInstanceOf(StoreRequestError);
    // The first failure was visible before the request finished.
    expect(healthAtEvent[0]!.getTime()).toBeGreaterThanOrEqual(before);
    expect(healthAtEvent[1]).toEqual(healthAtEvent[0]);
    const healthy = runner.health();
    expect(healthy.failingSince).toBeNull();
    expect(healthy.consecutiveFailures).toBe(0);
    expect(healthy.lastSuccessAt).not.toBeNull();
    expect(healthy.lastError).toMatchObject({
      code: "STORE_REQUEST_FAILED",
      reason: "HTTP 503 SlowDown",
    });
    expect(extra).toHaveLength(2);
    remove();
    await runner.run("get", undefined, script(transient()).fn);
    expect(extra).toHaveLength(2);
    expect(events).toHaveLength(3);
    // A definite answer is the server answering: not a failure.
    await runner.run("get", undefined, script(new NotFoundError("k")).fn).catch(() => {});
    expect(runner.health().failingSince).toBeNull();
    expect(events).toHaveLength(3);
  });

  test("a hang shows in health before any timeout, and the last event says no retry", async () => {
    const events: AttemptFailure[] = [];
    const runner = new RequestRunner(() => "memory://t", {
      attemptTimeoutMs: 80,
      maxAttempts: 2,
      baseDelayMs: 1,
      maxDelayMs: 2,
      onAttemptFailure: (f) => events.push(f),
    });
    const pending = runner.run("get", undefined, never).catch((e: unknown) => e);
    await sleep(20);
    const h = runner.health();
    expect(h.inFlight).toBe(1);
    expect(h.oldestInFlightSince).not.toBeNull();
    expect(h.failingSince).toBeNull();
    const error = await pending;
    expect(error).toMatchObject({ serverCode: "Timeout", retryable: true });
    expect((error as Error).message).toMatch(/gave up after 2 attempts/);
    expect(events.map((e) => [e.attempt, e.willRetry, e.reason])).toEqual([
      [1, true, "timeout after 80 ms"],
      [2, false, "timeout after 80 ms"],
    ]);
    expect(runner.health()).toMatchObject({ inFlight: 0, consecutiveFailures: 2 });
    expect(runner.health().failingSince).not.toBeNull();
  });

  test("a clock-skew refusal is retried even with maxAttempts 1, at most twice", async () => {
    const runner = new RequestRunner(() => "memory://t", { maxAttempts: 1 });
    const once = script(skewed());
    expect(await runner.run("get", undefined, once.fn)).toBe("ok");
    expect(once.calls()).toBe(2);
    const forever = script(skewed(), skewed(), skewed(), skewed());
    await expect(runner.run("get", undefined, forever.fn)).rejects.toMatchObject({
      clockSkew: true,
      status: 403,
    });
    expect(forever.calls()).toBe(3);
    // Other refusals keep the budget.
    const plain = script(transient());
    await expect(runner.run("get", undefined, plain.fn)).rejects.toBeInstanceOf(StoreRequestError);
    expect(plain.calls()).toBe(1);
    // The free retries come on top of the normal ones.
    const mixed = new RequestRunner(() => "memory://t", {
      maxAttempts: 2,
      baseDelayMs: 1,
      maxDelayMs: 1,
    });
    const both = script(skewed(), transient());
    expect(await mixed.run("get", undefined, both.fn)).toBe("ok");
    expect(both.calls()).toBe(3);
  });

  test("close() ends attempts in flight and backoffs with StoreClosedError", async () => {
    const runner = new RequestRunner(() => "memory://t", {
      operationTimeoutMs: 0,
      attemptTimeoutMs: 0,
    });
    let aborted: AbortSignal | undefined;
    const hung = runner
      .run("get", undefined, ({ signal }) => {
        aborted = signal;
        return never();
      })
      .catch((e: unknown) => e);
    const slowRetry = new RequestRunner(() => "memory://t", {
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.99,
      operationTimeoutMs: 0,
    });
    const waiting = slowRetry
      .run("get", undefined, script(transient()).fn)
      .catch((e: unknown) => e);
    await sleep(20);
    runner.close();
    slowRetry.close();
    expect(await hung).toBeInstanceOf(StoreClosedError);
    expect(aborted?.aborted).toBe(true);
    expect(await waiting).toBeInstanceOf(StoreClosedError);
    // Closing is not a storage failure.
    expect(runner.health().failingSince).toBeNull();
  });

  test("new options are validated", () => {
    expect(() => new RequestRunner(() => "x", { operationTimeoutMs: -1 })).toThrow(
      /operationTimeoutMs/,
    );
    expect(() => new RequestRunner(() => "x", { minBytesPerSecond: 0 })).toThrow(
      /minBytesPerSecond/,
    );
    expect(
      () =>
        new RequestRunner(() => "x", {
          onAttemptFailure: "no" as unknown as () => void,
        }),
    ).toThrow(/onAttemptFailure/);
  });
});
