/**
 * The parent side of the server host (see server-host.mjs): starts it,
 * sends commands, and makes sure it ends with the run.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { nowMs } from "./request-ledger.mjs";

const HOST = fileURLToPath(new URL("./server-host.mjs", import.meta.url));

/** Bucket every benchmark object lives in. */
export const BUCKET = "pagecast-bench";

/** Credentials the emulator accepts (it does not check signatures). */
export const CREDENTIALS = { accessKeyId: "bench", secretAccessKey: "bench" };

/**
 * Starts the host with one proxy per role: `s3` (readers), `s3w` (the
 * writer), `s3x` (restore and downloads), `http` (sql.js-httpvfs' file server).
 */
export async function startServers({ delayMs, maxLifetimeMs }) {
  const child = fork(
    HOST,
    [
      JSON.stringify({
        maxLifetimeMs,
        proxies: [
          { name: "s3", upstream: "s3", delayMs },
          { name: "s3w", upstream: "s3", delayMs },
          { name: "s3x", upstream: "s3", delayMs },
          { name: "http", upstream: "file", delayMs },
        ],
      }),
    ],
    { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" },
  );
  const pending = new Map();
  let nextId = 1;
  let exited = false;
  const ready = new Promise((resolve, reject) => {
    pending.set(0, { resolve, reject });
  });
  child.on("message", (msg) => {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(msg.error));
  });
  child.on("exit", (code) => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error(`server host exited (${code})`));
    pending.clear();
  });
  const call = (cmd, args) => {
    if (exited) return Promise.reject(new Error("server host has exited"));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.send({ id, cmd, args });
    });
  };
  await ready;
  const info = await call("info");
  await call("createBucket", { bucket: BUCKET });
  const delays = { s3: delayMs, s3w: delayMs, s3x: delayMs, http: delayMs };

  return {
    info,
    /** Endpoint URL of a proxy, or of the emulator itself (`direct`). */
    endpoint(name) {
      const port = name === "direct" ? info.s3Port : info.proxies[name];
      if (port === undefined) throw new Error(`unknown endpoint ${name}`);
      return `http://127.0.0.1:${port}`;
    },
    /** URL of a database file served (through the `http` proxy) to sql.js-httpvfs. */
    async serveFile(name, filePath) {
      await call("serveFile", { urlPath: `/${name}`, filePath });
      return `http://127.0.0.1:${info.proxies.http}/${name}`;
    },
    delay(name) {
      return delays[name];
    },
    async setDelay(name, ms) {
      delays[name] = ms;
      await call("setDelay", { proxy: name, ms });
    },
    reset: (name) => call("reset", { proxy: name }),
    /** Window figures; `marks` are `nowMs()` times for per-moment round trips. */
    summary: (name, marks) => call("summary", { proxy: name, marks }),
    log: (name, limit) => call("log", { proxy: name, limit }),
    idle: (name, timeoutMs) => call("idle", { proxy: name, timeoutMs }),
    emptyBucket: () => call("emptyBucket", { bucket: BUCKET }),
    memory: () => call("memory"),
    now: nowMs,
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => child.once("exit", resolve));
      call("stop").catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(timer);
    },
    /** Last-resort synchronous kill (process exit handlers). */
    kill() {
      if (!exited) child.kill("SIGKILL");
    },
  };
}
