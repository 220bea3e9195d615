/**
 * sql.js-httpvfs (npm 0.8.12) as a benchmark peer, in Node: its worker bundle
 * runs in a worker_threads Worker (see httpvfs-worker.mjs) and is driven with
 * comlink 4.3.0 exactly as the package's own `createDbWorker` drives it in a
 * browser (`SplitFileHttpDatabase`, then `db.query`).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { MessageChannel, Worker } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";

const require = createRequire(import.meta.url);
const DIST = `${require.resolve("sql.js-httpvfs").replace(/index\.js$/, "")}`;
const BUNDLE = `${DIST}sqlite.worker.js`;
const WASM = `${DIST}sql-wasm.wasm`;
const WASM_URL = "http://httpvfs.invalid/sql-wasm.wasm";
const SHIM = fileURLToPath(new URL("./httpvfs-worker.mjs", import.meta.url));
const FETCHER = fileURLToPath(new URL("./sync-fetch-worker.mjs", import.meta.url));

// What the package registers on the page side: the worker sends databases as ports.
Comlink.transferHandlers.set("WORKERSQLPROXIES", {
  canHandle: () => false,
  serialize() {
    throw new Error("not used");
  },
  deserialize(port) {
    port.start();
    return Comlink.wrap(nodeEndpoint(port));
  },
});

let compiled;

/** sql.js' wasm, compiled once per process and shared with every worker. */
function compiledWasm() {
  compiled ??= WebAssembly.compile(readFileSync(WASM));
  return compiled;
}

/**
 * A fresh sql.js-httpvfs instance (one database per worker, as the package
 * allows). `create()` starts the threads and compiles the wasm; `open()` is
 * the cold open that the benchmarks time.
 */
export class HttpVfsPeer {
  #worker;
  #fetcher;
  #api;
  #db;

  static async create() {
    const peer = new HttpVfsPeer();
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(8);
    peer.#fetcher = new Worker(FETCHER, {
      workerData: { port: port2, signal },
      transferList: [port2],
    });
    peer.#fetcher.unref();
    peer.#worker = new Worker(SHIM, {
      workerData: {
        bundlePath: BUNDLE,
        wasmPath: WASM,
        port: port1,
        signal,
        wasmUrl: WASM_URL,
        compiled: await compiledWasm(),
      },
      transferList: [port1],
    });
    const ready = new Promise((resolve, reject) => {
      const onMessage = (m) => {
        if (m?.benchReady) {
          peer.#worker.off("message", onMessage);
          resolve();
        }
      };
      peer.#worker.on("message", onMessage);
      peer.#worker.once("error", reject);
      peer.#worker.once("exit", (code) => reject(new Error(`httpvfs worker exited (${code})`)));
    });
    await ready;
    peer.#api = Comlink.wrap(nodeEndpoint(peer.#worker));
    return peer;
  }

  /** Opens the database at `url` (full-file mode, chunk = page size). */
  async open(url, pageSize = 4096) {
    this.#db = await this.#api.SplitFileHttpDatabase(
      WASM_URL,
      [{ from: "inline", config: { serverMode: "full", url, requestChunkSize: pageSize } }],
      undefined,
      Number.POSITIVE_INFINITY,
    );
  }

  /** Rows as objects. */
  async query(sql, params = []) {
    return this.#db.query(sql, params);
  }

  /** The package's own request/byte counters. */
  async stats() {
    return this.#api.getStats();
  }

  async close() {
    await Promise.allSettled([this.#worker?.terminate(), this.#fetcher?.terminate()]);
  }
}
