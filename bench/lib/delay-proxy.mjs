/**
 * A loopback HTTP proxy that holds every request for a fixed delay before
 * forwarding it (a stand-in for the network round trip to S3), and records
 * each request in a {@link RequestLedger}. One proxy per client role, so the
 * writer's, the replica's and the peers' traffic are counted apart.
 */
import http from "node:http";
import { RequestLedger } from "./request-ledger.mjs";

/** Request kind as S3 bills and as the report shows it. */
export function classifyS3(method, url, headers) {
  const q = url.searchParams;
  const segments = url.pathname.split("/").filter(Boolean);
  if (method === "GET") {
    if (q.has("list-type") || segments.length <= 1) return "LIST";
    if (headers["if-none-match"]) return "GET conditional";
    if (headers.range) return "GET range";
    return "GET";
  }
  if (method === "HEAD") return "HEAD";
  if (method === "PUT") {
    if (q.has("partNumber")) return "PUT part";
    if (headers["x-amz-copy-source"]) return "COPY";
    return "PUT";
  }
  if (method === "POST") {
    if (q.has("uploads")) return "POST multipart-create";
    if (q.has("uploadId")) return "POST multipart-complete";
    if (q.has("delete")) return "POST delete";
    return "POST";
  }
  if (method === "DELETE") return q.has("uploadId") ? "DELETE multipart-abort" : "DELETE";
  return method;
}

/** Request kind for a plain HTTP file server. */
export function classifyHttp(method, _url, headers) {
  if (method === "GET") return headers.range ? "GET range" : "GET";
  return method;
}

/**
 * Starts a proxy on 127.0.0.1 (OS-assigned port) in front of
 * `http://127.0.0.1:<targetPort>`.
 */
export async function startDelayProxy({ name, targetPort, delayMs, classify }) {
  const ledger = new RequestLedger();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let delay = delayMs;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy.invalid");
    const rec = ledger.begin(
      classify(req.method ?? "GET", url, req.headers),
      req.method,
      url.pathname,
    );
    const chunks = [];
    req.on("data", (c) => {
      rec.up += c.length;
      chunks.push(c);
    });
    const fail = (status) => {
      if (!res.headersSent) {
        res.writeHead(status, { "content-type": "text/plain" });
      }
      res.end();
      ledger.complete(rec, status);
    };
    req.on("error", () => fail(499));
    req.on("end", () => {
      setTimeout(() => {
        const headers = { ...req.headers };
        delete headers.expect;
        const up = http.request(
          {
            host: "127.0.0.1",
            port: targetPort,
            method: req.method,
            path: req.url,
            headers,
            agent,
          },
          (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.on("data", (c) => {
              rec.down += c.length;
              res.write(c);
            });
            upRes.on("end", () => {
              // Completed as the last byte is handed over, not at 'finish': on a busy
              // event loop 'finish' can be handled after the client already sent its
              // next (dependent) request, which would then look parallel to this one.
              ledger.complete(rec, upRes.statusCode ?? 502);
              res.end();
            });
            upRes.on("error", () => fail(502));
          },
        );
        up.on("error", () => fail(502));
        for (const c of chunks) up.write(c);
        up.end();
      }, delay);
    });
    res.on("finish", () => ledger.complete(rec, res.statusCode));
    res.on("close", () => ledger.complete(rec, res.statusCode || 499));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const port = server.address().port;
  return {
    name,
    port,
    ledger,
    get delayMs() {
      return delay;
    },
    setDelay(ms) {
      delay = ms;
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
