/**
 * `faultyStore(inner, { rate, kinds, seed })`: an `ObjectStore` wrapper that
 * makes a configurable fraction of requests fail or misbehave the way real
 * object storage and networks do, so the writer and the reader can be tested
 * against it. Reader-safe (no `node:` imports): usable in Workers tests too.
 *
 * Failures are the typed errors a real backend throws once its own retries
 * are used up (`StoreRequestError` with `retryable`, `PreconditionFailedError`),
 * so code under test sees exactly what production code would see. Body faults
 * (truncation, bit flips) return a "successful" result with damaged bytes:
 * that is what a broken transport or a corrupted object looks like to the
 * caller, and the caller must notice.
 */
import type {
  AttemptFailure,
  GetOptions,
  GetResult,
  ListOptions,
  ListPage,
  ObjectMeta,
  ObjectStore,
  PutOptions,
  PutResult,
  RequestKind,
  StoreCounters,
  StoreHealth,
} from "../storage/object-store.js";
import { putStream } from "../storage/put-stream.js";
import { abortableDelay } from "../storage/request-runner.js";
import {
  NotFoundError,
  PreconditionFailedError,
  StoreRequestError,
} from "../storage/store-errors.js";
import { StoreHealthTracker } from "../storage/store-health.js";
import { type Prng, prng } from "./prng.js";
import { TestingError } from "./testing-error.js";

/**
 * What can go wrong with one request.
 *
 * - `error500`: HTTP 500 InternalError (retryable).
 * - `slowDown`: HTTP 503 SlowDown (retryable throttling).
 * - `timeout`: the request stalls for `timeoutMs`, then fails as a timeout; it never reached storage.
 * - `reset`: the connection is reset before the request reached storage.
 * - `truncate`: a GET answers with fewer bytes than it claims (meta and offset unchanged).
 * - `slow`: the request succeeds after `slowMs`.
 * - `precondition`: a conditional PUT fails with 412, as when a racing writer got there first.
 * - `bitflip`: a GET answers with one bit of its body flipped.
 * - `lostResponse`: a PUT or delete is carried out, then its answer is lost (connection reset).
 */
export type FaultKind =
  | "error500"
  | "slowDown"
  | "timeout"
  | "reset"
  | "truncate"
  | "slow"
  | "precondition"
  | "bitflip"
  | "lostResponse";

/** Every fault kind. */
export const FAULT_KINDS: readonly FaultKind[] = [
  "error500",
  "slowDown",
  "timeout",
  "reset",
  "truncate",
  "slow",
  "precondition",
  "bitflip",
  "lostResponse",
];

/** Faults a reader can meet (nothing that needs a write). */
export const READ_FAULT_KINDS: readonly FaultKind[] = [
  "error500",
  "slowDown",
  "timeout",
  "reset",
  "truncate",
  "slow",
  "bitflip",
];

/** Faults that only make a request fail or wait (no damaged bodies, no side effects). */
export const TRANSIENT_FAULT_KINDS: readonly FaultKind[] = [
  "error500",
  "slowDown",
  "timeout",
  "reset",
  "slow",
];

/** Where a bit flip may land: return a bit index in `0 .. body.length * 8 - 1`, or `undefined` to skip. */
export type BitFlipChooser = (ctx: {
  key: string;
  /** Offset of `body[0]` in the object. */
  offset: number;
  body: Uint8Array;
  /** Size of the whole object. */
  size: number;
  rand: Prng;
}) => number | undefined;

/** Options of {@link faultyStore}. */
export interface FaultyStoreOptions {
  /** Probability in [0, 1] that a request gets a fault (changeable later through `rate`). */
  rate: number;
  /** Kinds to choose from (default: every kind); each request picks uniformly among those that apply to it. */
  kinds?: readonly FaultKind[];
  /** Seed of the decisions (default 1): the same seed and request order replay the same faults. */
  seed?: number;
  /** Which requests may get a fault (default: all). */
  match?: (op: RequestKind, key: string | undefined) => boolean;
  /** How long a `timeout` stalls before failing, in ms (default 50). */
  timeoutMs?: number;
  /** Delay of a `slow` request, in ms (default 20). */
  slowMs?: number;
  /** Where bit flips land (default: a uniformly random bit of the body). */
  flipBit?: BitFlipChooser;
  /** Most recent faults kept in `log` (default 1000). */
  logLimit?: number;
}

/** One injected fault. */
export interface FaultRecord {
  op: RequestKind;
  key: string | undefined;
  kind: FaultKind;
}

/** Kinds that make sense for `op` (before looking at the answer). */
function applicable(kind: FaultKind, op: RequestKind, conditionalPut: boolean): boolean {
  switch (kind) {
    case "truncate":
    case "bitflip":
      return op === "get";
    case "precondition":
      return op === "put" && conditionalPut;
    case "lostResponse":
      return op === "put" || op === "delete";
    default:
      return true;
  }
}

/** An `ObjectStore` that injects faults into a fraction of the requests to `inner`. */
export class FaultyStore implements ObjectStore {
  /** Probability that a request gets a fault; set to 0 to let storage "recover". */
  rate: number;
  /** The most recent faults (bounded by `logLimit`). */
  readonly log: FaultRecord[] = [];
  readonly #inner: ObjectStore;
  readonly #kinds: readonly FaultKind[];
  readonly #rand: Prng;
  readonly #match: FaultyStoreOptions["match"];
  readonly #timeoutMs: number;
  readonly #slowMs: number;
  readonly #flipBit: BitFlipChooser | undefined;
  readonly #logLimit: number;
  readonly #injected: Record<FaultKind, number>;
  readonly #health = new StoreHealthTracker();
  #requests = 0;

  constructor(inner: ObjectStore, options: FaultyStoreOptions) {
    if (!(options.rate >= 0 && options.rate <= 1)) {
      throw new TestingError("TESTING_INVALID_ARGUMENT", "fault rate must be a number in [0, 1]");
    }
    this.#inner = inner;
    this.rate = options.rate;
    this.#kinds = options.kinds ?? FAULT_KINDS;
    this.#rand = prng(options.seed ?? 1);
    this.#match = options.match;
    this.#timeoutMs = options.timeoutMs ?? 50;
    this.#slowMs = options.slowMs ?? 20;
    this.#flipBit = options.flipBit;
    this.#logLimit = options.logLimit ?? 1000;
    this.#injected = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<
      FaultKind,
      number
    >;
  }

  /** The wrapped store's location. */
  get url(): string {
    return this.#inner.url;
  }

  /** Faults injected so far, by kind. */
  get injected(): Readonly<Record<FaultKind, number>> {
    return { ...this.#injected };
  }

  /** Total faults injected so far. */
  get faults(): number {
    let n = 0;
    for (const k of FAULT_KINDS) n += this.#injected[k];
    return n;
  }

  /** Requests seen so far (faulted or not). */
  get requests(): number {
    return this.#requests;
  }

  async #get(key: string, options?: GetOptions): Promise<GetResult> {
    const kind = this.#decide("get", key, false);
    await this.#before("get", key, kind, options?.signal);
    const res = await this.#inner.get(key, options);
    if (res.notModified || res.body.length === 0) return res;
    if (kind === "truncate") {
      this.#record("get", key, kind);
      const keep = this.#rand.int(0, res.body.length - 1);
      return { ...res, body: res.body.slice(0, keep) };
    }
    if (kind === "bitflip") {
      const bit = this.#flipBit
        ? this.#flipBit({
            key,
            offset: res.offset,
            body: res.body,
            size: res.meta.size,
            rand: this.#rand,
          })
        : this.#rand.int(0, res.body.length * 8 - 1);
      if (bit === undefined || !Number.isInteger(bit) || bit < 0 || bit >= res.body.length * 8) {
        return res;
      }
      this.#record("get", key, kind);
      // Never damage the inner store's own bytes.
      const body = res.body.slice();
      body[bit >> 3] = body[bit >> 3]! ^ (1 << (bit & 7));
      return { ...res, body };
    }
    return res;
  }

  async #head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectMeta | undefined> {
    const kind = this.#decide("head", key, false);
    await this.#before("head", key, kind, options?.signal);
    return this.#inner.head(key, options);
  }

  async #put(key: string, body: Uint8Array, options?: PutOptions): Promise<PutResult> {
    const conditional = options?.ifMatch !== undefined || options?.ifNoneMatch !== undefined;
    const kind = this.#decide("put", key, conditional);
    await this.#before("put", key, kind, options?.signal);
    if (kind === "precondition") {
      this.#record("put", key, kind);
      throw new PreconditionFailedError(key);
    }
    const res = await this.#inner.put(key, body, options);
    if (kind === "lostResponse") {
      this.#record("put", key, kind);
      throw this.#error("put", key, "ECONNRESET", undefined, "connection reset after the request");
    }
    return res;
  }

  async #putStream(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options?: PutOptions,
  ): Promise<PutResult> {
    const conditional = options?.ifMatch !== undefined || options?.ifNoneMatch !== undefined;
    const kind = this.#decide("put", key, conditional);
    await this.#before("put", key, kind, options?.signal);
    if (kind === "precondition") {
      this.#record("put", key, kind);
      throw new PreconditionFailedError(key);
    }
    const res = await putStream(this.#inner, key, source, options);
    if (kind === "lostResponse") {
      this.#record("put", key, kind);
      throw this.#error("put", key, "ECONNRESET", undefined, "connection reset after the request");
    }
    return res;
  }

  async #list(options?: ListOptions): Promise<ListPage> {
    const kind = this.#decide("list", options?.prefix, false);
    await this.#before("list", options?.prefix, kind, options?.signal);
    return this.#inner.list(options);
  }

  async #deleteMany(keys: string[], options?: { signal?: AbortSignal }): Promise<void> {
    const kind = this.#decide("delete", keys[0], false);
    await this.#before("delete", keys[0], kind, options?.signal);
    await this.#inner.deleteMany(keys, options);
    if (kind === "lostResponse") {
      this.#record("delete", keys[0], kind);
      throw this.#error(
        "delete",
        keys[0],
        "ECONNRESET",
        undefined,
        "connection reset after the request",
      );
    }
  }

  get(key: string, options?: GetOptions): Promise<GetResult> {
    return this.#tracked("get", key, () => this.#get(key, options));
  }

  head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectMeta | undefined> {
    return this.#tracked("head", key, () => this.#head(key, options));
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<PutResult> {
    return this.#tracked("put", key, () => this.#put(key, body, options));
  }

  /**
   * Streams to the inner store (buffering for stores without `putStream`),
   * with the same faults as `put`: one decision for the whole upload.
   */
  putStream(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options?: PutOptions,
  ): Promise<PutResult> {
    return this.#tracked("put", key, () => this.#putStream(key, source, options));
  }

  list(options?: ListOptions): Promise<ListPage> {
    return this.#tracked("list", options?.prefix, () => this.#list(options));
  }

  deleteMany(keys: string[], options?: { signal?: AbortSignal }): Promise<void> {
    return this.#tracked("delete", keys[0], () => this.#deleteMany(keys, options));
  }

  counters(): StoreCounters {
    return this.#inner.counters();
  }

  /**
   * Health of the requests made through this wrapper, as its callers see
   * them: one outcome per request (an injected fault, or the inner store's
   * error once its own retries are used up).
   */
  health(): StoreHealth {
    return this.#health.snapshot();
  }

  /** Listens to this wrapper's failed requests (see {@link health}). */
  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    return this.#health.onAttemptFailure(listener);
  }

  serverTime(): number | undefined {
    return this.#inner.serverTime?.();
  }

  /** Runs one request, booking its outcome in the wrapper's health. */
  async #tracked<T>(op: RequestKind, key: string | undefined, run: () => Promise<T>): Promise<T> {
    const id = this.#health.started();
    const started = Date.now();
    try {
      const value = await run();
      this.#health.succeeded();
      return value;
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof PreconditionFailedError) {
        this.#health.succeeded();
      } else if (error instanceof StoreRequestError) {
        this.#health.failed({
          url: this.#inner.url,
          kind: op,
          operation: `${op}${key ? ` ${key}` : ""}`,
          attempt: 1,
          maxAttempts: 1,
          error,
          reason: error.reason,
          willRetry: false,
          delayMs: 0,
          elapsedMs: Date.now() - started,
        });
      }
      throw error;
    } finally {
      this.#health.ended(id);
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** Picks the fault (if any) of one request. Draws from the generator once or twice per request. */
  #decide(
    op: RequestKind,
    key: string | undefined,
    conditionalPut: boolean,
  ): FaultKind | undefined {
    this.#requests++;
    if (this.rate <= 0 || (this.#match && !this.#match(op, key))) return undefined;
    if (!this.#rand.chance(this.rate)) return undefined;
    const choices = this.#kinds.filter((k) => applicable(k, op, conditionalPut));
    return choices.length === 0 ? undefined : this.#rand.pick(choices);
  }

  /** Carries out the faults that happen before the request reaches storage. */
  async #before(
    op: RequestKind,
    key: string | undefined,
    kind: FaultKind | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    switch (kind) {
      case "error500":
        this.#record(op, key, kind);
        throw this.#error(op, key, "InternalError", 500, "500 InternalError");
      case "slowDown":
        this.#record(op, key, kind);
        throw this.#error(op, key, "SlowDown", 503, "503 SlowDown");
      case "reset":
        this.#record(op, key, kind);
        throw this.#error(op, key, "ECONNRESET", undefined, "connection reset");
      case "timeout":
        this.#record(op, key, kind);
        await abortableDelay(this.#timeoutMs, signal);
        throw this.#error(
          op,
          key,
          "TimeoutError",
          undefined,
          `timed out after ${this.#timeoutMs} ms`,
        );
      case "slow":
        this.#record(op, key, kind);
        await abortableDelay(this.#slowMs, signal);
        return;
      default:
        return;
    }
  }

  #record(op: RequestKind, key: string | undefined, kind: FaultKind): void {
    this.#injected[kind]++;
    this.log.push({ op, key, kind });
    if (this.log.length > this.#logLimit) this.log.splice(0, this.log.length - this.#logLimit);
  }

  #error(
    op: RequestKind,
    key: string | undefined,
    serverCode: string,
    status: number | undefined,
    what: string,
  ): StoreRequestError {
    return new StoreRequestError(
      `injected fault: ${what} (${op} ${key ?? ""} on ${this.#inner.url})`,
      { retryable: true, serverCode, ...(status !== undefined ? { status } : {}) },
    );
  }
}

/** Wraps `inner` so that a fraction `rate` of its requests get one of `kinds` (see {@link FaultKind}). */
export function faultyStore(inner: ObjectStore, options: FaultyStoreOptions): FaultyStore {
  return new FaultyStore(inner, options);
}
