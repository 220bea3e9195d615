import { describe, expect, test } from "vitest";
import { RequestRunner } from "../../src/storage/request-runner.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  PreconditionFailedError,
  StoreAbortedError,
  StoreClosedError,
  StoreRequestError,
} from "../../src/storage/store-errors.js";

const transient = () => new StoreRequestError("flaky", { retryable: true, status: 503 });
const fatal = () => new StoreRequestError("denied", { retryable: false, status: 403 });

/** An attempt function failing with the given errors in turn, then returning "ok". */
function script(...failures: Error[]) {
  let calls = 0;
  const fn = async () => {
    const failure = failures[calls++];
    if (failure) throw failure;
    return "ok";
  };
  return { fn, calls: () => calls };
}

const fast = { baseDelayMs: 1, maxDelayMs: 2 };

describe("RequestRunner", () => {
  test("retries retryable failures and counts each attempt", async () => {
    const runner = new RequestRunner(() => "memory://t", fast);
    const s = script(transient(), transient());
    expect(await runner.run("get", undefined, s.fn)).toBe("ok");
    expect(s.calls()).toBe(3);
    expect(runner.counters.snapshot()).toMatchObject({
      requests: { get: 3 },
      errors: 2,
      retries: 2,
    });
  });

  test("never retries non-retryable failures or answers", async () => {
    for (const error of [
      fatal(),
      new NotFoundError("k"),
      new PreconditionFailedError("k"),
      new InvalidStoreArgumentError("bad"),
    ]) {
      const runner = new RequestRunner(() => "memory://t", fast);
      const s = script(error);
      await expect(runner.run("put", undefined, s.fn)).rejects.toBe(error);
      expect(s.calls()).toBe(1);
      expect(runner.counters.snapshot().retries).toBe(0);
    }
  });

  test("not found and precondition failures are not counted as errors", async () => {
    const runner = new RequestRunner(() => "memory://t", fast);
    await runner.run("get", undefined, script(new NotFoundError("k")).fn).catch(() => {});
    await runner.run("put", undefined, script(new PreconditionFailedError("k")).fn).catch(() => {});
    expect(runner.counters.snapshot().errors).toBe(0);
    await runner.run("put", undefined, script(fatal()).fn).catch(() => {});
    expect(runner.counters.snapshot().errors).toBe(1);
  });

  test("stops after maxAttempts and rethrows the last failure", async () => {
    const runner = new RequestRunner(() => "memory://t", { ...fast, maxAttempts: 3 });
    const s = script(transient(), transient(), transient(), transient());
    const error = await runner.run("head", undefined, s.fn).catch((e: unknown) => e);
    expect(error).toMatchObject({ retryable: true, status: 503 });
    expect(s.calls()).toBe(3);
    expect(runner.counters.snapshot()).toMatchObject({ requests: { head: 3 }, retries: 2 });
  });

  test("maxAttempts 1 disables retries", async () => {
    const runner = new RequestRunner(() => "memory://t", { maxAttempts: 1 });
    const s = script(transient());
    await expect(runner.run("get", undefined, s.fn)).rejects.toBeInstanceOf(StoreRequestError);
    expect(s.calls()).toBe(1);
  });

  test("backoff is full jitter over a doubling, capped window", () => {
    const draws = [0, 0.5, 0.999];
    let i = 0;
    const runner = new RequestRunner(() => "memory://t", {
      baseDelayMs: 100,
      maxDelayMs: 1000,
      random: () => draws[i++ % draws.length]!,
    });
    expect(runner.backoffMs(1)).toBe(0);
    expect(runner.backoffMs(2)).toBe(100);
    expect(runner.backoffMs(3)).toBe(399);
    expect(runner.backoffMs(10)).toBe(0);
    expect(runner.backoffMs(10)).toBe(500);
    expect(runner.backoffMs(10)).toBe(999);
  });

  test("a put refused after a retried attempt is flagged ambiguous", async () => {
    const runner = new RequestRunner(() => "memory://t", fast);
    const error = await runner
      .run("put", undefined, script(transient(), new PreconditionFailedError("lease")).fn)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect(error).toMatchObject({ ambiguous: true, key: "lease" });
  });

  test("an attempt that never settles times out retryably", async () => {
    const runner = new RequestRunner(() => "memory://t", {
      ...fast,
      maxAttempts: 2,
      attemptTimeoutMs: 20,
    });
    const seen: AbortSignal[] = [];
    const error = await runner
      .run("get", undefined, ({ signal }) => {
        seen.push(signal);
        return new Promise<never>(() => {});
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "STORE_REQUEST_FAILED",
      retryable: true,
      serverCode: "Timeout",
    });
    expect(seen).toHaveLength(2);
    expect(seen.every((s) => s.aborted)).toBe(true);
  });

  test("the caller's signal aborts a running attempt and a pending backoff", async () => {
    // No deadline: a backoff longer than the deadline would end the operation at once.
    const runner = new RequestRunner(() => "memory://t", {
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      operationTimeoutMs: 0,
    });
    const during = new AbortController();
    setTimeout(() => during.abort(), 10);
    await expect(
      runner.run("get", during.signal, () => new Promise<never>(() => {})),
    ).rejects.toBeInstanceOf(StoreAbortedError);
    const backoff = new AbortController();
    const pending = runner.run("get", backoff.signal, script(transient(), transient()).fn);
    setTimeout(() => backoff.abort(), 10);
    await expect(pending).rejects.toBeInstanceOf(StoreAbortedError);
    const already = new AbortController();
    already.abort();
    const s = script();
    await expect(runner.run("get", already.signal, s.fn)).rejects.toBeInstanceOf(StoreAbortedError);
    expect(s.calls()).toBe(0);
  });

  test("a closed runner refuses to start", async () => {
    const runner = new RequestRunner(() => "memory://t");
    runner.close();
    await expect(runner.run("get", undefined, script().fn)).rejects.toBeInstanceOf(
      StoreClosedError,
    );
  });

  test("unknown failures become non-retryable StoreRequestErrors", async () => {
    const runner = new RequestRunner(() => "memory://t", fast);
    const error = await runner
      .run("get", undefined, script(new TypeError("boom")).fn)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "STORE_REQUEST_FAILED", retryable: false });
  });

  test("bad retry options are refused", () => {
    expect(() => new RequestRunner(() => "x", { maxAttempts: 0 })).toThrow(
      InvalidStoreArgumentError,
    );
    expect(() => new RequestRunner(() => "x", { baseDelayMs: -1 })).toThrow(
      InvalidStoreArgumentError,
    );
    expect(() => new RequestRunner(() => "x", { attemptTimeoutMs: Number.NaN })).toThrow(
      InvalidStoreArgumentError,
    );
  });
});
