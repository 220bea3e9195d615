/**
 * Runs sql.js-httpvfs 0.8.12's web worker bundle (dist/sqlite.worker.js,
 * unmodified) in a Node worker_threads Worker. The bundle expects a browser
 * web worker; this shim supplies what it uses:
 * - `self` (postMessage / addEventListener over `parentPort`, `location`),
 *   and `importScripts` (its mere presence selects emscripten's worker path);
 * - a synchronous `XMLHttpRequest`: the request is posted to a helper thread
 *   (sync-fetch-worker.mjs) and this thread blocks in `Atomics.wait` until the
 *   answer is on the port, then takes it with `receiveMessageOnPort`;
 * - no `process`/`require`/`module`/`fetch` in the bundle's scope, so that
 *   emscripten takes the web-worker path instead of its Node path (the bundle
 *   stubs Node's `fs` out) and loads the wasm through the XHR.
 * The wasm is compiled (by the parent, once) before the benchmark clock starts, like pagecast's.
 */
import { readFileSync } from "node:fs";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";

const { bundlePath, wasmPath, port, signal, wasmUrl, compiled } = workerData;
const flag = new Int32Array(signal);
const wasmBytes = readFileSync(wasmPath);
// Compiled once by the parent and shared by every worker (like pagecast's module).
const wasmModule = compiled ?? (await WebAssembly.compile(wasmBytes));

// emscripten instantiates from the bytes it downloaded; reuse the compiled module.
const instantiate = WebAssembly.instantiate.bind(WebAssembly);
WebAssembly.instantiate = (source, imports) =>
  source instanceof WebAssembly.Module
    ? instantiate(source, imports)
    : instantiate(wasmModule, imports).then((instance) => ({ module: wasmModule, instance }));

// The bundle logs every request; keep warnings and errors only.
console.log = () => {};

const TIMEOUT_MS = 120_000;

function syncRequest(method, url, headers) {
  Atomics.store(flag, 0, 0);
  port.postMessage({ method, url, headers });
  if (Atomics.wait(flag, 0, 0, TIMEOUT_MS) === "timed-out") {
    throw new Error(`synchronous XHR ${method} ${url} timed out`);
  }
  // The answer is queued before the flag is raised; allow a moment anyway.
  for (let i = 0; i < 1000; i++) {
    const got = receiveMessageOnPort(port);
    if (got) return got.message;
    Atomics.wait(flag, 1, 0, 1);
  }
  throw new Error(`synchronous XHR ${method} ${url}: no answer on the port`);
}

class XMLHttpRequest {
  status = 0;
  response = undefined;
  responseType = "";
  #method = "GET";
  #url = "";
  #async = true;
  #headers = {};
  #responseHeaders = {};
  onload = null;
  onerror = null;

  open(method, url, async = true) {
    this.#method = method;
    this.#url = url;
    this.#async = async;
  }
  setRequestHeader(name, value) {
    this.#headers[name.toLowerCase()] = value;
  }
  overrideMimeType() {}
  getResponseHeader(name) {
    const v = this.#responseHeaders[name.toLowerCase()];
    return v === undefined ? null : String(v);
  }
  getAllResponseHeaders() {
    return Object.entries(this.#responseHeaders)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\r\n");
  }
  get responseText() {
    return this.response instanceof ArrayBuffer ? new TextDecoder().decode(this.response) : "";
  }
  send() {
    if (this.#url === wasmUrl) {
      // The wasm comes from the package, not over the measured network.
      this.status = 200;
      this.response = wasmBytes.buffer.slice(
        wasmBytes.byteOffset,
        wasmBytes.byteOffset + wasmBytes.byteLength,
      );
      if (this.#async) setTimeout(() => this.onload?.(), 0);
      return;
    }
    if (this.#async) throw new Error("asynchronous XHR is not supported by this shim");
    const res = syncRequest(this.#method, this.#url, this.#headers);
    if (res.error) throw new Error(`XHR ${this.#method} ${this.#url} failed: ${res.error}`);
    this.status = res.status;
    this.#responseHeaders = res.headers;
    this.response = res.body;
  }
}

const listeners = new Map();
const self = {
  location: { href: "http://httpvfs.invalid/sqlite.worker.js" },
  postMessage: (message, transfer) => parentPort.postMessage(message, transfer),
  addEventListener(type, fn) {
    if (type !== "message") return;
    const l = (data) => fn({ data });
    listeners.set(fn, l);
    parentPort.on("message", l);
  },
  removeEventListener(type, fn) {
    const l = listeners.get(fn);
    if (type === "message" && l) parentPort.off("message", l);
    listeners.delete(fn);
  },
};
self.self = self;
globalThis.self = self;
globalThis.XMLHttpRequest = XMLHttpRequest;
globalThis.importScripts = () => {
  throw new Error("importScripts is not available");
};

const code = readFileSync(bundlePath, "utf8");
// Parameters shadow the Node globals the bundle must not see.
const run = new Function(
  "self",
  "importScripts",
  "XMLHttpRequest",
  "location",
  "process",
  "require",
  "module",
  "exports",
  "define",
  "fetch",
  code,
);
run.call(
  self,
  self,
  globalThis.importScripts,
  XMLHttpRequest,
  self.location,
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
);

parentPort.postMessage({ benchReady: true });
