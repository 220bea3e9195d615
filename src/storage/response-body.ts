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

/** Largest announced length {@link readBodyAtMost} allocates up front. */
const PREALLOCATE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The body's bytes when it holds at most `limit` of them; `undefined` (the
 * rest discarded unread) as soon as it proves longer. With `length` (the
 * announced Content-Length) the bytes land in one array of that size as they
 * arrive, so a body costs its size once (a list of chunks copied at the end
 * costs it twice at the peak); a body not matching it is returned as read
 * (the caller checks the length). Otherwise holds at most `limit` bytes plus
 * one chunk.
 */
export async function readBodyAtMost(
  body: unknown,
  limit: number,
  length?: number,
): Promise<Uint8Array | undefined> {
  if (body === undefined || body === null) return new Uint8Array(0);
  // Never sized by an announcement beyond what a range GET plausibly holds:
  // a lying server must not make one allocation of its choosing.
  let out =
    length !== undefined && length <= Math.min(limit, PREALLOCATE_MAX_BYTES)
      ? new Uint8Array(length)
      : undefined;
  let chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunksOf(body)) {
    if (total + chunk.length > limit) {
      discardBody(body);
      return undefined;
    }
    if (out && total + chunk.length <= out.length) out.set(chunk, total);
    else {
      // More than announced: keep what came so far as a chunk and go on collecting.
      if (out) chunks = [out.subarray(0, total)];
      out = undefined;
      chunks.push(chunk);
    }
    total += chunk.length;
  }
  if (out) return total === out.length ? out : out.subarray(0, total);
  // Copied into one plain array: Node hands out Buffers, possibly views of larger memory.
  return joinPieces(chunks, total);
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

/** `pieces` copied into one new plain array of `length` bytes. */
export function joinPieces(pieces: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
