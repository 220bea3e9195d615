/**
 * Reading HTTP response bodies of the S3 SDK under a byte limit, in any
 * runtime: Node hands out an `IncomingMessage`, fetch-based runtimes
 * (Workers, browsers) a `ReadableStream`. Runtime-agnostic (no `node:` imports).
 */

interface Destroyable {
  destroy?: () => void;
  cancel?: () => Promise<void>;
}

/**
 * Drops a body without reading it: Node destroys the stream and with it the
 * connection (which is thus never reused half-read); a web stream is cancelled.
 */
export function discardBody(body: unknown): void {
  if (typeof body !== "object" || body === null) return;
  const stream = body as Destroyable;
  if (typeof stream.destroy === "function") stream.destroy();
  else if (typeof stream.cancel === "function") stream.cancel().catch(() => {});
}

async function* chunksOf(body: unknown): AsyncGenerator<Uint8Array> {
  if (typeof body === "object" && body !== null && Symbol.asyncIterator in body) {
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      yield typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    }
    return;
  }
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Largest announced length a {@link BodyBytes} allocates up front. */
const PREALLOCATE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * A body's bytes gathered as chunks arrive. With the announced length
 * (Content-Length) they land in one array of that size, so a body costs its
 * size once (a list of chunks copied at the end costs it twice at the peak)
 * and each chunk is garbage at once; a body longer than announced goes on as
 * chunks. Never sized by an announcement beyond what a range GET plausibly
 * holds: a lying server must not make one allocation of its choosing.
 */
export class BodyBytes {
  #into: Uint8Array | undefined;
  #chunks: Uint8Array[] = [];
  /** Bytes added so far. */
  total = 0;

  constructor(announced: number | undefined, limit: number) {
    this.#into =
      announced !== undefined &&
      Number.isSafeInteger(announced) &&
      announced > 0 &&
      announced <= Math.min(limit, PREALLOCATE_MAX_BYTES)
        ? new Uint8Array(announced)
        : undefined;
  }

  add(chunk: Uint8Array): void {
    const into = this.#into;
    if (into && this.total + chunk.length <= into.length) into.set(chunk, this.total);
    else {
      // More than announced: keep what came so far as a chunk and go on collecting.
      if (into) this.#chunks = [into.subarray(0, this.total)];
      this.#into = undefined;
      this.#chunks.push(chunk);
    }
    this.total += chunk.length;
  }

  /** The first `size` bytes (default: all) in one plain array. */
  bytes(size = this.total): Uint8Array {
    const into = this.#into;
    if (into) return size === into.length ? into : into.subarray(0, size);
    // Copied into one plain array: Node hands out Buffers, possibly views of larger memory.
    return joinPieces(this.#chunks, size);
  }
}

/**
 * The body's bytes when it holds at most `limit` of them; `undefined` (the
 * rest discarded unread) as soon as it proves longer. `length`: the announced
 * Content-Length (see {@link BodyBytes}); a body not matching it is returned
 * as read (the caller checks the length).
 */
export async function readBodyAtMost(
  body: unknown,
  limit: number,
  length?: number,
): Promise<Uint8Array | undefined> {
  if (body === undefined || body === null) return new Uint8Array(0);
  const collected = new BodyBytes(length, limit);
  for await (const chunk of chunksOf(body)) {
    if (collected.total + chunk.length > limit) {
      discardBody(body);
      return undefined;
    }
    collected.add(chunk);
  }
  return collected.bytes();
}

/** The body's chunks as they arrived (no copies), and their total length. */
export async function readBodyPieces(
  body: unknown,
): Promise<{ pieces: Uint8Array[]; length: number }> {
  const pieces: Uint8Array[] = [];
  let length = 0;
  if (body === undefined || body === null) return { pieces, length };
  for await (const chunk of chunksOf(body)) {
    if (chunk.length === 0) continue;
    // Plain views (no copy): a Node Buffer's slice() would not copy.
    pieces.push(
      chunk.constructor === Uint8Array
        ? chunk
        : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length),
    );
    length += chunk.length;
  }
  return { pieces, length };
}

/** The first `length` bytes of `pieces` copied into one new plain array. */
export function joinPieces(pieces: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    if (at >= length) break;
    const part = piece.length <= length - at ? piece : piece.subarray(0, length - at);
    out.set(part, at);
    at += part.length;
  }
  return out;
}
