/**
 * Child process hosting every server of a benchmark run, so that their CPU
 * work never runs on the measured client's event loop: the embedded S3
 * (fauxqs), a static file server (for sql.js-httpvfs) and one delaying,
 * counting proxy per client role. Controlled over the IPC channel; exits by
 * itself when the parent goes away or after its maximum lifetime.
 */
import { startFauxqs } from "fauxqs";
import { classifyHttp, classifyS3, startDelayProxy } from "./delay-proxy.mjs";
import { startFileServer } from "./file-server.mjs";

const config = JSON.parse(process.argv[2] ?? "{}");

const s3 = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
const files = await startFileServer();
const proxies = new Map();
for (const p of config.proxies ?? []) {
  const upstream = p.upstream === "file" ? files.port : s3.port;
  const classify = p.upstream === "file" ? classifyHttp : classifyS3;
  proxies.set(
    p.name,
    await startDelayProxy({ name: p.name, targetPort: upstream, delayMs: p.delayMs, classify }),
  );
}

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(code), 3000);
  timer.unref();
  await Promise.allSettled([...proxies.values()].map((p) => p.close()));
  await Promise.allSettled([files.close(), s3.stop()]);
  process.exit(code);
}

const lifetime = setTimeout(() => stop(3), config.maxLifetimeMs ?? 60 * 60_000);
lifetime.unref();
process.on("disconnect", () => stop(0));
process.on("SIGTERM", () => stop(0));

function proxy(name) {
  const p = proxies.get(name);
  if (!p) throw new Error(`no proxy named ${name}`);
  return p;
}

async function waitIdle(p, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (p.ledger.inflight > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return p.ledger.inflight;
}

const handlers = {
  info: () => ({
    s3Port: s3.port,
    filePort: files.port,
    proxies: Object.fromEntries([...proxies].map(([n, p]) => [n, p.port])),
  }),
  createBucket: ({ bucket }) => {
    s3.createBucket(bucket);
    return true;
  },
  emptyBucket: ({ bucket }) => {
    s3.emptyBucket(bucket);
    return true;
  },
  serveFile: ({ urlPath, filePath }) => {
    files.serve(urlPath, filePath);
    return true;
  },
  setDelay: ({ proxy: name, ms }) => {
    proxy(name).setDelay(ms);
    return true;
  },
  reset: ({ proxy: name }) => {
    proxy(name).ledger.reset();
    return true;
  },
  summary: ({ proxy: name, marks }) => proxy(name).ledger.summary(marks ?? []),
  log: ({ proxy: name, limit }) => proxy(name).ledger.log(limit),
  idle: ({ proxy: name, timeoutMs }) => waitIdle(proxy(name), timeoutMs ?? 2000),
  memory: () => process.memoryUsage(),
  stop: () => {
    setImmediate(() => stop(0));
    return true;
  },
};

process.on("message", async (msg) => {
  const { id, cmd, args } = msg ?? {};
  try {
    const handler = handlers[cmd];
    if (!handler) throw new Error(`unknown command ${cmd}`);
    const result = await handler(args ?? {});
    process.send?.({ id, ok: true, result });
  } catch (err) {
    process.send?.({ id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});

process.send?.({ id: 0, ok: true, result: "ready" });
