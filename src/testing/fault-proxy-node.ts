/**
 * A loopback HTTP proxy in front of an S3 server that injects the faults of
 * `faultyStore` at the network level (Node only): 500 and 503 SlowDown
 * answers, requests that never get an answer, connection resets, bodies cut
 * short or delivered slowly, 412 to conditional PUTs (a racing writer), bit
 * flips in GET bodies, and mutations carried out whose answer is then lost.
 * It counts what it injected, so a test can prove the faults happened.
 *
 * Faults come from a seeded random plan (`rate`, `kinds`, `seed`) and/or an
 * explicit `plan` callback that decides per request (the callback wins).
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { FAULT_KINDS, type FaultKind } from "./faulty-store.js";
import { type Prng, prng } from "./prng.js";

/** A fault decided by an explicit plan (besides the {@link FaultKind} names). */
export type Fault =
  /** Answer with this status and an S3-style XML error (or `body`). */
  | { status: number; code?: string; body?: string }
  /** Headers promising `truncate` bytes, then a few bytes, then a closed socket (no forwarding). */
  | { truncate: number }
  /** Close the connection without answering. */
  | "reset"
  /** Never answer (the socket is closed only when the proxy closes or the client gives up). */
  | "hang"
  /** Forward, but without these request headers (lower case). */
  | { dropHeaders: string[] }
  /** One of the random kinds, on purpose. */
  | { kind: FaultKind };

/** What a request is, in storage terms. */
export type ProxyOp = "get" | "head" | "put" | "list" | "delete";

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The S3 endpoint to forward to, e.g. `http://127.0.0.1:9000`. */
  target: string;
  /** Probability in [0, 1] that a request gets a random fault (default 0; changeable later). */
  rate?: number;
  /** Kinds random faults are drawn from (default: every kind); only kinds that apply to a request are drawn. */
  kinds?: readonly FaultKind[];
  /** Seed of the random plan (default 1). */
  seed?: number;
  /** Explicit per-request decision; `undefined` falls through to the random plan. */
  plan?: (req: IncomingMessage, index: number) => Fault | undefined;
  /** Which requests may get random faults (default: all). */
  match?: (req: IncomingMessage, op: ProxyOp) => boolean;
  /** Delay of `slow` before the answer starts, in ms (default 30); the body then trickles in 4 parts. */
  slowMs?: number;
  /** How long a `timeout` keeps the connection silent before closing it, in ms (default 2000; 0: until the client gives up). */
  hangMs?: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: point the S3 client here. */
  endpoint: string;
  /** `METHOD path?query` of every request seen, in order. */
  seen: string[];
  /** Random or named faults injected so far, by kind (explicit plan faults count under `planned`). */
  readonly injected: Readonly<Record<FaultKind | "planned", number>>;
  /** Total faults injected. */
  readonly faults: number;
  /** Probability of a random fault; set to 0 to let storage "recover". */
  rate: number;
  close(): Promise<void>;
}

/** Which storage operation an S3 request is. */
export function proxyOp(req: IncomingMessage): ProxyOp {
  const url = req.url ?? "";
  switch (req.method) {
    case "HEAD":
      return "head";
    case "PUT":
      return "put";
    case "DELETE":
      return "delete";
    case "POST":
      return /[?&]delete(=|&|$)/.test(url) ? "delete" : "put";
    default:
      return /[?&]list-type=2/.test(url) ? "list" : "get";
  }
}

function isConditional(headers: IncomingHttpHeaders): boolean {
  return headers["if-match"] !== undefined || headers["if-none-match"] !== undefined;
}

function applicable(kind: FaultKind, op: ProxyOp, req: IncomingMessage): boolean {
  switch (kind) {
    case "truncate":
    case "bitflip":
      return op === "get";
    case "precondition":
      return op === "put" && req.method === "PUT" && isConditional(req.headers);
    case "lostResponse":
      return op === "put" || op === "delete";
    default:
      return true;
  }
}

function xmlError(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Starts a proxy. `startFaultProxy(target, plan)` is the short form for
 * explicit plans only.
 */
export async function startFaultProxy(
  targetOrOptions: string | FaultProxyOptions,
  plan?: (req: IncomingMessage, index: number) => Fault | undefined,
): Promise<FaultProxy> {
  const options: FaultProxyOptions =
    typeof targetOrOptions === "string"
      ? { target: targetOrOptions, ...(plan ? { plan } : {}) }
      : targetOrOptions;
  const upstream = new URL(options.target);
  const kinds = options.kinds ?? FAULT_KINDS;
  const rand: Prng = prng(options.seed ?? 1);
  const slowMs = options.slowMs ?? 30;
  const hangMs = options.hangMs ?? 2000;
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const injected = Object.fromEntries([...FAULT_KINDS, "planned"].map((k) => [k, 0])) as Record<
    FaultKind | "planned",
    number
  >;
  const state = { rate: options.rate ?? 0 };
  let closed = false;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** Forwards `req` upstream; `onAnswer` gets the upstream response (or null on upstream failure). */
  const forward = (
    req: IncomingMessage,
    headers: IncomingHttpHeaders,
    onAnswer: (answer: IncomingMessage | null) => void,
  ) => {
    const out = request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
      },
      onAnswer,
    );
    out.on("error", () => onAnswer(null));
    req.pipe(out);
  };

  const readAll = (answer: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      answer.on("data", (c: Buffer) => chunks.push(c));
      answer.on("end", () => resolve(Buffer.concat(chunks)));
      answer.on("error", reject);
    });

  const pass = (res: ServerResponse, answer: IncomingMessage | null) => {
    if (!answer) {
      res.destroy();
      return;
    }
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  };

  /** Carries out one fault of a named kind (body faults on an empty or failed answer forward it unharmed, uncounted). */
  const inject = (kind: FaultKind, req: IncomingMessage, res: ServerResponse): void => {
    const count = () => {
      injected[kind]++;
    };
    switch (kind) {
      case "error500":
      case "slowDown":
      case "precondition": {
        count();
        req.resume();
        const [status, code] =
          kind === "error500"
            ? [500, "InternalError"]
            : kind === "slowDown"
              ? [503, "SlowDown"]
              : [412, "PreconditionFailed"];
        const body = xmlError(code, "injected fault");
        res.writeHead(status, {
          "content-type": "application/xml",
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      case "reset":
        count();
        req.socket.destroy();
        return;
      case "timeout":
        count();
        req.resume();
        if (hangMs > 0) later(hangMs, () => req.socket.destroy());
        return;
      case "lostResponse":
        forward(req, req.headers, (answer) => {
          if (answer) {
            count();
            answer.resume();
            answer.on("end", () => req.socket.destroy());
          } else res.destroy();
        });
        return;
      case "slow":
        count();
        forward(req, req.headers, (answer) => {
          if (!answer) return res.destroy();
          readAll(answer).then(
            async (body) => {
              await sleep(slowMs);
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              const part = Math.ceil(body.length / 4) || 1;
              for (let at = 0; at < body.length; at += part) {
                if (res.destroyed) return;
                res.write(body.subarray(at, at + part));
                await sleep(Math.ceil(slowMs / 4));
              }
              res.end();
            },
            () => res.destroy(),
          );
        });
        return;
      case "truncate":
      case "bitflip":
        forward(req, req.headers, (answer) => {
          if (!answer) return res.destroy();
          readAll(answer).then(
            (body) => {
              const ok = (answer.statusCode ?? 0) >= 200 && (answer.statusCode ?? 0) < 300;
              if (!ok || body.length === 0) {
                res.writeHead(answer.statusCode ?? 502, answer.headers);
                res.end(body);
                return;
              }
              count();
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              if (kind === "bitflip") {
                const bit = rand.int(0, body.length * 8 - 1);
                body[bit >> 3] = body[bit >> 3]! ^ (1 << (bit & 7));
                res.end(body);
                return;
              }
              res.write(body.subarray(0, rand.int(0, body.length - 1)));
              later(5, () => req.socket.destroy());
            },
            () => res.destroy(),
          );
        });
        return;
    }
  };

  const server = createServer((req, res) => {
    const index = seen.length;
    seen.push(`${req.method} ${req.url}`);
    const explicit = options.plan?.(req, index);
    if (explicit !== undefined) {
      if (typeof explicit === "object" && "kind" in explicit) {
        inject(explicit.kind, req, res);
        return;
      }
      injected.planned++;
      if (explicit === "hang") {
        req.resume();
        return;
      }
      if (explicit === "reset") {
        req.socket.destroy();
        return;
      }
      if ("dropHeaders" in explicit) {
        const headers = { ...req.headers };
        for (const name of explicit.dropHeaders) delete headers[name];
        forward(req, headers, (answer) => pass(res, answer));
        return;
      }
      req.resume();
      if ("truncate" in explicit) {
        res.writeHead(200, { "content-length": String(explicit.truncate), etag: '"abc"' });
        res.write(Buffer.alloc(Math.min(5, explicit.truncate - 1), 0x41));
        later(10, () => req.socket.destroy());
        return;
      }
      const body = explicit.body ?? xmlError(explicit.code ?? "Fault", "injected");
      res.writeHead(explicit.status, {
        "content-type": "application/xml",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const op = proxyOp(req);
    if (state.rate > 0 && (!options.match || options.match(req, op)) && rand.chance(state.rate)) {
      const choices = kinds.filter((k) => applicable(k, op, req));
      if (choices.length > 0) {
        inject(rand.pick(choices), req, res);
        return;
      }
    }
    forward(req, req.headers, (answer) => pass(res, answer));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    get injected() {
      return { ...injected };
    },
    get faults() {
      let n = 0;
      for (const k of FAULT_KINDS) n += injected[k];
      return n + injected.planned;
    },
    get rate() {
      return state.rate;
    },
    set rate(value: number) {
      state.rate = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
