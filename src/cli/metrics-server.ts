/**
 * The daemon's HTTP endpoint (`--metrics-addr`, the config's `addr:`):
 * Prometheus text on `/metrics`, and `/healthz` answering 200 while every
 * database replicates and is healthy, 503 otherwise, with a JSON body
 * saying which is not.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { METRICS_CONTENT_TYPE } from "../metrics/prometheus-text.js";
import { UsageError } from "./cli-io.js";

/** What the endpoint serves. */
export interface MetricsEndpointSource {
  metrics(): string;
  /** `ok`: the /healthz status; `body`: its JSON. */
  health(): { ok: boolean; body: unknown };
}

/** `:9090`, `127.0.0.1:9090`, `[::1]:9090`, `localhost:0` -> host (undefined: every interface) and port. */
export function parseListenAddress(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port > 65_535) {
    throw new UsageError(
      `metrics address ${JSON.stringify(addr)} must be HOST:PORT or :PORT (e.g. :9090, 127.0.0.1:9090)`,
    );
  }
  const host = m[1] ?? m[2];
  return { host: host ? host : undefined, port };
}

/** Serves `source` on `addr`; resolves with the server and the URL it listens on. */
export async function serveMetrics(
  addr: string,
  source: MetricsEndpointSource,
): Promise<{ server: Server; url: string }> {
  const { host, port } = parseListenAddress(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    try {
      if (path === "/metrics") {
        res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(source.metrics());
      } else if (path === "/healthz") {
        const { ok, body } = source.health();
        res
          .writeHead(ok ? 200 : 503, { "content-type": "application/json" })
          .end(`${JSON.stringify(body)}\n`);
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("try /metrics or /healthz\n");
      }
    } catch (err) {
      res.writeHead(500, { "content-type": "text/plain" }).end(`${(err as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Scrapes must not keep a stopping daemon alive.
  server.unref();
  const a = server.address() as AddressInfo;
  const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return { server, url: `http://${shown}:${a.port}` };
}
