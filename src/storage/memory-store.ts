/**
 * In-memory `ObjectStore` with the full conditional semantics of S3, for
 * tests, the demo and Workers that want a scratch store. Stores opened with
 * the same name (`memory://name`) in one process share their objects.
 */
import { resolveRange, validateRange } from "./byte-range.js";
import { sameEtag } from "./etag.js";
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
  StoreCounters,
  StoreHealth,
} from "./object-store.js";
import { checkSource, collectChunks } from "./put-stream.js";
import { RequestRunner, type RetryOptions } from "./request-runner.js";
import {
  InvalidStoreArgumentError,
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
} from "./store-errors.js";
import { validateKey } from "./store-keys.js";
import {
  checkBody,
  checkListOptions,
  checkMaxBytes,
  checkPutOptions,
  DELETE_BATCH_SIZE,
  paginateKeys,
} from "./store-options.js";

interface MemoryObject {
  body: Uint8Array;
  meta: ObjectMeta;
}

type MemoryObjects = Map<string, MemoryObject>;

const registry = new Map<string, MemoryObjects>();
let versions = 0;
let privateStores = 0;
// Distinguishes this process's ETags from those of an earlier run kept in some cache.
const etagSalt = Math.floor(Math.random() * 0x1_0000_0000)
  .toString(16)
  .padStart(8, "0");

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** Options of `new MemoryStore()`. */
export interface MemoryStoreOptions {
  /**
   * Shared name: every store opened with it in this process sees the same
   * objects (`memory://<name>`). Without a name the store is private.
   */
  name?: string;
  /** Retry settings (memory never fails retryably; kept for uniformity). */
  retry?: RetryOptions;
}

/** Whether `name` can name a memory store (letters, digits, `.`, `_`, `-`). */
export function isMemoryStoreName(name: string): boolean {
  return NAME.test(name);
}

/**
 * Drops the objects of the shared memory store `name`; stores already open on
 * it keep the old objects, later ones start empty. Returns whether it existed.
 */
export function dropMemoryStore(name: string): boolean {
  return registry.delete(name);
}

function copyMeta(meta: ObjectMeta): ObjectMeta {
  return { ...meta, lastModified: new Date(meta.lastModified.getTime()) };
}

/** An `ObjectStore` kept in this process's memory. */
export class MemoryStore implements ObjectStore {
  readonly url: string;
  private readonly objects: MemoryObjects;
  private readonly runner: RequestRunner;

  constructor(options: MemoryStoreOptions = {}) {
    if (options.name === undefined) {
      privateStores += 1;
      this.url = `memory://private-${privateStores}`;
      this.objects = new Map();
    } else {
      if (!isMemoryStoreName(options.name)) {
        throw new InvalidStoreArgumentError(
          "memory store names use letters, digits, '.', '_' and '-' (1 to 128)",
        );
      }
      this.url = `memory://${options.name}`;
      let objects = registry.get(options.name);
      if (!objects) {
        objects = new Map();
        registry.set(options.name, objects);
      }
      this.objects = objects;
    }
    this.runner = new RequestRunner(() => this.url, options.retry);
  }

  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    validateKey(key);
    if (options.range) validateRange(options.range);
    checkMaxBytes(options);
    return this.runner.run("get", options.signal, async () => {
      const object = this.objects.get(key);
      if (!object) throw new NotFoundError(key);
      if (options.ifNoneMatch !== undefined && sameEtag(options.ifNoneMatch, object.meta.etag)) {
        return { notModified: true };
      }
      const { start, end } = resolveRange(options.range, object.body.length);
      if (options.maxBytes !== undefined && end - start > options.maxBytes) {
        throw new ObjectTooLargeError(key, {
          size: end - start,
          maxBytes: options.maxBytes,
          meta: copyMeta(object.meta),
        });
      }
      const body = object.body.slice(start, end);
      this.runner.counters.received(body.length);
      return { notModified: false, body, meta: copyMeta(object.meta), offset: start };
    });
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectMeta | undefined> {
    validateKey(key);
    return this.runner.run("head", options.signal, async () => {
      const object = this.objects.get(key);
      return object ? copyMeta(object.meta) : undefined;
    });
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    checkBody(body);
    checkPutOptions(options);
    return this.store(key, body.slice(), options);
  }

  async putStream(
    key: string,
    source: AsyncIterable<Uint8Array>,
    options: PutOptions = {},
  ): Promise<PutResult> {
    validateKey(key);
    checkSource(source);
    checkPutOptions(options);
    this.runner.check(options.signal);
    // Memory holds the whole object anyway: collect, then store like put.
    const body = await collectChunks(source, options.signal);
    return this.store(key, body, options);
  }

  /** Stores `copy` (owned by the store from now on) under the put's conditions. */
  private store(key: string, copy: Uint8Array, options: PutOptions): Promise<PutResult> {
    return this.runner.run("put", options.signal, async () => {
      this.runner.counters.sent(copy.length);
      const current = this.objects.get(key);
      if (options.ifNoneMatch === "*" && current) throw new PreconditionFailedError(key);
      if (
        options.ifMatch !== undefined &&
        (!current || !sameEtag(options.ifMatch, current.meta.etag))
      ) {
        throw new PreconditionFailedError(key);
      }
      versions += 1;
      const etag = `${versions.toString(16).padStart(8, "0")}${etagSalt}`;
      this.objects.set(key, {
        body: copy,
        meta: { key, size: copy.length, etag, lastModified: new Date() },
      });
      return { etag };
    });
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    const checked = checkListOptions(options);
    return this.runner.run("list", options.signal, async () => {
      const { page, continuationToken } = paginateKeys(
        Array.from(this.objects.values(), (object) => object.meta),
        checked,
        options,
      );
      const objects = page.map(copyMeta);
      return continuationToken === undefined ? { objects } : { objects, continuationToken };
    });
  }

  async deleteMany(keys: string[], options: { signal?: AbortSignal } = {}): Promise<void> {
    keys.forEach(validateKey);
    for (let i = 0; i < keys.length; i += DELETE_BATCH_SIZE) {
      const batch = keys.slice(i, i + DELETE_BATCH_SIZE);
      await this.runner.run("delete", options.signal, async () => {
        for (const key of batch) this.objects.delete(key);
      });
    }
  }

  counters(): StoreCounters {
    return this.runner.counters.snapshot();
  }

  health(): StoreHealth {
    return this.runner.health();
  }

  onAttemptFailure(listener: (failure: AttemptFailure) => void): () => void {
    return this.runner.onAttemptFailure(listener);
  }

  /** The "server" is this process: its clock. */
  serverTime(): number {
    return Date.now();
  }

  async close(): Promise<void> {
    this.runner.close();
  }
}
