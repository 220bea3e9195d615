/**
 * A tiny loopback HTTP proxy for storage tests: forwards requests to an S3
 * server, except those a test's plan answers with a fault instead.
 */
import { createServer, type IncomingMessage, request } from "node:http";
import type { AddressInfo } from "node:net";

/** What to do with one request instead of forwarding it. */
export type Fault =
  | { status: number; code?: string; body?: string }
  /** Headers promising `length` bytes, then a few bytes, then a closed socket. */
  | { truncate: number }
  /** Close the connection without answering. */
  | "reset"
  /** Never answer. */
  | "hang"
  /** Forward, but without these request headers (lower case). */
  | { dropHeaders: string[] };

export interface FaultProxy {
  endpoint: string;
  /** `METHOD path?query` of every request seen, in order. */
  seen: string[];
  close(): Promise<void>;
}

/** Starts a proxy to `target`; `plan` returns a fault or undefined (forward). */
export async function startFaultProxy(
  target: string,
  plan: (req: IncomingMessage, index: number) => Fault | undefined,
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const seen: string[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((req, res) => {
    const index = seen.length;
    seen.push(`${req.method} ${req.url}`);
    const fault = plan(req, index);
    if (fault === "hang") return;
    if (fault === "reset") {
      req.socket.destroy();
      return;
    }
    const headers = { ...req.headers };
    if (fault && "dropHeaders" in fault) {
      for (const name of fault.dropHeaders) delete headers[name];
    } else if (fault && "truncate" in fault) {
      req.resume();
      res.writeHead(200, { "content-length": String(fault.truncate), etag: '"abc"' });
      res.write(Buffer.alloc(Math.min(5, fault.truncate - 1), 0x41));
      setTimeout(() => req.socket.destroy(), 10);
      return;
    } else if (fault) {
      req.resume();
      const body =
        fault.body ??
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code ?? "Fault"}</Code><Message>injected</Message></Error>`;
      res.writeHead(fault.status, {
        "content-type": "application/xml",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const forward = request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
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
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
