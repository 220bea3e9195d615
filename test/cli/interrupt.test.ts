/**
 * A stop signal while storage keeps a command waiting (review by a helper):
 * `query`, `status` and `ltx list` against an endpoint that never answers
 * ignored SIGINT and SIGTERM until the request's own timeout, about 28 s
 * later; `restore` stopped at once. They now stop at the signal.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, expect, test } from "vitest";
import { built, cleanEnv, startCli } from "./cli-process.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server that accepts connections and never answers. */
async function blackhole(): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return (server.address() as { port: number }).port;
}

for (const command of [["query", "SELECT 1"], ["status"], ["ltx", "list"]] as const) {
  test.skipIf(!built)(
    `${command.join(" ")} stops at SIGTERM while storage does not answer`,
    async () => {
      const port = await blackhole();
      const url = `s3://bucket/app?endpoint=http://127.0.0.1:${port}&region=us-east-1`;
      const env = cleanEnv({ AWS_ACCESS_KEY_ID: "k", AWS_SECRET_ACCESS_KEY: "s" });
      const [name, ...rest] = command;
      const args =
        name === "query"
          ? [name, url, ...rest]
          : name === "ltx"
            ? [name, ...rest, url]
            : [name, url];
      const daemon = startCli([...args, "--timeout", "120s"], env);
      cleanups.push(() => daemon.stop(1000));
      await sleep(1500);
      expect(daemon.child.exitCode).toBe(null);
      const stoppedAt = Date.now();
      const code = await daemon.stop(20_000);
      // Well before the request's own timeout (about 30 s); not a speed figure.
      expect(Date.now() - stoppedAt).toBeLessThan(10_000);
      expect(code).not.toBe(0);
      // status reports each database's error in its table (stdout).
      if (name !== "status") expect(daemon.stderr()).toMatch(/interrupted/);
    },
  );
}
