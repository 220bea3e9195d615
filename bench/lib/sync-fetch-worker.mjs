/**
 * Helper thread of the sql.js-httpvfs shim: performs the HTTP requests that
 * the SQLite worker issues as synchronous XHRs. The SQLite worker posts a
 * request on its port and blocks in Atomics.wait; this thread answers on the
 * port and then wakes it (see httpvfs-worker.mjs).
 */
import http from "node:http";
import { workerData } from "node:worker_threads";

const { port, signal } = workerData;
const flag = new Int32Array(signal);
// A browser reuses connections for synchronous XHRs too.
const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });

function answer(message, transfer = []) {
  port.postMessage(message, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

port.on("message", ({ method, url, headers }) => {
  const req = http.request(url, { method, headers, agent }, (res) => {
    const chunks = [];
    res.on("data", (c) => chunks.push(c));
    res.on("end", () => {
      const body = Buffer.concat(chunks);
      const ab = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
      answer({ status: res.statusCode, headers: res.headers, body: ab }, [ab]);
    });
    res.on("error", (err) => answer({ status: 0, headers: {}, error: String(err) }));
  });
  req.on("error", (err) => answer({ status: 0, headers: {}, error: String(err) }));
  req.end();
});
