/**
 * The slice of `fetch` that `FetchS3Store` uses, on `node:http(s)`. Node's
 * global `fetch` is undici, loaded and compiled on first use: tens of
 * milliseconds of a cold start (a Lambda, a CLI run) before the first
 * request leaves. `node:http` is part of the snapshot Node starts from.
 *
 * What it does: one request with a string or byte body (Content-Length set:
 * S3 refuses chunked uploads without it), keep-alive connections, an
 * `AbortSignal` (aborting before or during the answer), and an answer with
 * `ok`, `status`, `headers.get()` and a body read like a `ReadableStream`
 * (`getReader().read()`, `cancel()`) that pauses the socket while the reader
 * does not read. No redirects (S3 answers
 * none that a signed request may follow), no compression, no cookies.
 */
import http from "node:http";
import https from "node:https";

/**
 * Keep-alive connections (idle sockets never hold the process open), set up
 * like Node's own global agent: an idle connection is closed after 5 s, well
 * before servers drop theirs (S3: ~20 s), so a request rarely meets one the
 * server is closing; most recently used first, so the others age out.
 */
const AGENT_OPTIONS = { keepAlive: true, timeout: 5000, scheduling: "lifo" } as const;
const agents = {
  "http:": new http.Agent(AGENT_OPTIONS),
  "https:": new https.Agent(AGENT_OPTIONS),
};

/** The request options `FetchS3Store` passes. */
interface NodeFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string | null;
  signal?: AbortSignal | null;
}

/** The answer's headers, as `Headers.get` reads them. */
class AnswerHeaders {
  readonly #raw: http.IncomingHttpHeaders;

  constructor(raw: http.IncomingHttpHeaders) {
    this.#raw = raw;
  }

  get(name: string): string | null {
    const value = this.#raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : value;
  }
}

/** An answer with the members `FetchS3Store` reads. */
interface NodeAnswer {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: AnswerHeaders;
  readonly body: NodeBody | null;
}

/** Chunks a body may hold unread before its socket pauses. */
const HIGH_WATER_CHUNKS = 16;

/**
 * The answer's body: the two members of a `ReadableStream` FetchS3Store
 * uses (`getReader().read()`, `cancel()`) straight over the Node stream.
 * A web `ReadableStream` in Node is itself JavaScript over the same events
 * and cost a large restore about half again the CPU of the AWS SDK's
 * download. The socket pauses while {@link HIGH_WATER_CHUNKS} chunks wait.
 */
class NodeBody {
  readonly #res: http.IncomingMessage;
  readonly #queue: Uint8Array[] = [];
  /** Reads waiting for a chunk, oldest first (a reader may ask again before an answer). */
  readonly #waiters: {
    resolve(step: ReadableStreamReadResult<Uint8Array>): void;
    reject(err: unknown): void;
  }[] = [];
  #ended = false;
  #error: unknown;
  #paused = false;

  constructor(res: http.IncomingMessage) {
    this.#res = res;
    res.on("data", (chunk: Buffer) => {
      const value = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const waiter = this.#waiters.shift();
      if (waiter) {
        waiter.resolve({ done: false, value });
        return;
      }
      this.#queue.push(value);
      if (this.#queue.length >= HIGH_WATER_CHUNKS && !this.#paused) {
        this.#paused = true;
        res.pause();
      }
    });
    res.on("end", () => this.#finish(undefined));
    res.on("error", (err) => this.#finish(err));
    // A connection lost mid-body closes without "end" (and, aborted, without "error").
    res.on("close", () =>
      this.#finish(Object.assign(new Error("connection closed mid-body"), { code: "ECONNRESET" })),
    );
  }

  #finish(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    for (const waiter of this.#waiters.splice(0)) {
      if (err === undefined) waiter.resolve({ done: true, value: undefined });
      else waiter.reject(err);
    }
  }

  #read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    const value = this.#queue.shift();
    if (value) {
      if (this.#paused && this.#queue.length < HIGH_WATER_CHUNKS / 2) {
        this.#paused = false;
        this.#res.resume();
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.#ended) {
      return this.#error === undefined
        ? Promise.resolve({ done: true, value: undefined })
        : Promise.reject(this.#error);
    }
    if (this.#paused) {
      this.#paused = false;
      this.#res.resume();
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  getReader(): { read(): Promise<ReadableStreamReadResult<Uint8Array>>; cancel(): Promise<void> } {
    return { read: () => this.#read(), cancel: () => this.cancel() };
  }

  /** Drops the rest; a body read to its end leaves the connection to the agent for reuse. */
  async cancel(): Promise<void> {
    this.#queue.length = 0;
    if (!this.#ended) {
      this.#finish(undefined);
      this.#res.destroy();
    }
  }
}

/**
 * Sends one request like `fetch(url, init)`; resolves with the answer once
 * its headers arrived. Fails like fetch: with the system error (`code`, e.g.
 * ECONNREFUSED) or the signal's reason.
 */
export function nodeHttpFetch(url: string, init: NodeFetchInit = {}): Promise<NodeAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const protocol = target.protocol === "https:" ? "https:" : "http:";
    const body = init.body ?? undefined;
    const headers: Record<string, string | number> = { ...(init.headers ?? {}) };
    if (body !== undefined) {
      headers["content-length"] =
        typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    }
    const signal = init.signal ?? undefined;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const send = protocol === "https:" ? https.request : http.request;
    const req = send(target, {
      method: init.method ?? "GET",
      headers,
      agent: agents[protocol],
      ...(signal ? { signal } : {}),
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      // A HEAD answer has no body: let the connection go back to the agent.
      if (init.method === "HEAD") res.resume();
      resolve({
        ok: status >= 200 && status < 300,
        status,
        headers: new AnswerHeaders(res.headers),
        body: init.method === "HEAD" ? null : new NodeBody(res),
      });
    });
    req.on("error", (err) => {
      // An abort surfaces as the signal's reason, as fetch gives it.
      reject(signal?.aborted ? signal.reason : err);
    });
    if (body === undefined) req.end();
    else
      req.end(
        typeof body === "string"
          ? body
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      );
  });
}
