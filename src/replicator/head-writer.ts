/**
 * Publishes the head object with compare-and-swap: each write names the ETag
 * of the head this writer last wrote (or read at start), so a writer that lost
 * the path to another can never overwrite the other's head.
 */
import {
  HEAD_OBJECT_KEY,
  HEAD_OBJECT_MAX_BYTES,
  type HeadObject,
  parseHeadObject,
  serializeHeadObject,
} from "../layout/index.js";
import type { ObjectStore } from "../storage/object-store.js";
import {
  NotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
} from "../storage/store-errors.js";
import { LeaseLostError } from "./replicator-error.js";

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** CAS writer of `pagecast-head.json`. */
export class HeadWriter {
  readonly #store: ObjectStore;
  #etag: string | undefined;
  #current: HeadObject | undefined;

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /**
   * Reads the existing head (if any) to learn its ETag. An unparsable head is
   * replaced; so is one over the size limit, which is never downloaded (its
   * ETag comes from the refusal, or a HEAD request).
   */
  async load(): Promise<HeadObject | undefined> {
    try {
      const res = await this.#store.get(HEAD_OBJECT_KEY, { maxBytes: HEAD_OBJECT_MAX_BYTES });
      if (res.notModified) return undefined;
      this.#etag = res.meta.etag;
      try {
        this.#current = parseHeadObject(res.body);
      } catch {
        this.#current = undefined;
      }
      return this.#current;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      if (err instanceof ObjectTooLargeError) {
        const etag = err.meta?.etag || (await this.#store.head(HEAD_OBJECT_KEY))?.etag;
        if (etag === undefined) return undefined;
        this.#etag = etag;
        this.#current = undefined;
        return undefined;
      }
      throw err;
    }
  }

  /** The head as last written or read. */
  get current(): HeadObject | undefined {
    return this.#current;
  }

  /** Writes the head (CAS). Throws `LeaseLostError` when someone else changed it. */
  async write(head: HeadObject): Promise<void> {
    const body = serializeHeadObject(head);
    try {
      const put = await this.#store.put(
        HEAD_OBJECT_KEY,
        body,
        this.#etag === undefined
          ? { ifNoneMatch: "*", contentType: "application/json" }
          : { ifMatch: this.#etag, contentType: "application/json" },
      );
      this.#etag = put.etag;
      this.#current = head;
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        if (err.ambiguous) {
          const res = await this.#store
            .get(HEAD_OBJECT_KEY, { maxBytes: HEAD_OBJECT_MAX_BYTES })
            .catch(() => undefined);
          if (res && !res.notModified && sameBytes(res.body, body)) {
            this.#etag = res.meta.etag;
            this.#current = head;
            return;
          }
        }
        throw new LeaseLostError(
          `the head object on ${this.#store.url} was changed by another writer; this replicator stops`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}
