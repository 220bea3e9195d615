/**
 * A minimal static HTTP server with byte ranges (what a CDN or S3 website
 * endpoint gives sql.js-httpvfs): HEAD with Content-Length and
 * Accept-Ranges, GET with a single `Range: bytes=a-b`.
 */
import { open } from "node:fs/promises";
import http from "node:http";

function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? "");
  if (!m) return undefined;
  let start;
  let end;
  if (m[1] === "") {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!(start <= end) || start >= size) return null;
  return { start, end };
}

/** Starts the server; `files` maps a URL path (`/a.db`) to a local file path. */
export async function startFileServer() {
  const files = new Map();
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://files.invalid").pathname;
    const file = files.get(path);
    if (!file || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404).end();
      return;
    }
    let fh;
    try {
      fh = await open(file, "r");
      const { size } = await fh.stat();
      const range = req.headers.range ? parseRange(req.headers.range, size) : undefined;
      if (range === null) {
        res.writeHead(416, { "content-range": `bytes */${size}` }).end();
        return;
      }
      const start = range ? range.start : 0;
      const end = range ? range.end : size - 1;
      const length = end - start + 1;
      const headers = {
        "accept-ranges": "bytes",
        "content-type": "application/octet-stream",
        "content-length": String(length),
      };
      if (range) headers["content-range"] = `bytes ${start}-${end}/${size}`;
      res.writeHead(range ? 206 : 200, headers);
      if (req.method === "HEAD") {
        res.end();
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(length, 8 << 20));
      let pos = start;
      while (pos <= end) {
        const n = Math.min(buf.length, end - pos + 1);
        const { bytesRead } = await fh.read(buf, 0, n, pos);
        if (bytesRead === 0) break;
        const chunk = Buffer.from(buf.subarray(0, bytesRead));
        if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
        pos += bytesRead;
      }
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    } finally {
      await fh?.close();
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    port: server.address().port,
    serve(urlPath, filePath) {
      files.set(urlPath, filePath);
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
