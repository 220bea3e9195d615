/**
 * The node:http transport of FetchS3Store (src/storage/node-http-fetch.ts):
 * its body is read chunk by chunk like a ReadableStream, the socket pauses
 * while the reader does not read (a slow consumer never buffers a whole
 * large body), cancel drops the rest, and a connection lost mid-body is an
 * error, not a short body.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { nodeHttpFetch } from "../../src/storage/node-http-fetch.js";

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
});

/** A server answering every request with `handler`; resolves with its URL. */
async function serve(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
}

const MiB = 1024 * 1024;
const byteAt = (i: number) => (i * 7 + (i >> 16)) & 0xff;

describe("nodeHttpFetch bodies", () => {
  test("a reader that stops reading pauses the socket; reading on gets every byte", async () => {
    const total = 64 * MiB;
    let written = 0;
    let waitingForDrain = false;
    const url = await serve((_req, res) => {
      res.writeHead(200, { "content-length": total });
      const write = () => {
        while (written < total) {
          const n = Math.min(256 * 1024, total - written);
          const chunk = Buffer.alloc(n);
          for (let i = 0; i < n; i++) chunk[i] = byteAt(written + i);
          written += n;
          if (!res.write(chunk)) {
            waitingForDrain = true;
            res.once("drain", () => {
              waitingForDrain = false;
              write();
            });
            return;
          }
        }
        res.end();
      };
      write();
    });
    const answer = await nodeHttpFetch(url);
    expect(answer.status).toBe(200);
    const reader = answer.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    // Nobody reads for a while: the server is held back, far from done.
    await new Promise((r) => setTimeout(r, 400));
    expect(waitingForDrain).toBe(true);
    expect(written).toBeLessThan(total / 2);
    let at = first.value!.length;
    let mismatch = -1;
    for (let i = 0; i < at; i++) if (first.value![i] !== byteAt(i)) mismatch = i;
    for (;;) {
      const step = await reader.read();
      if (step.done) break;
      const v = step.value!;
      for (let i = 0; i < v.length; i += 4099) if (v[i] !== byteAt(at + i)) mismatch = at + i;
      at += v.length;
    }
    expect(mismatch).toBe(-1);
    expect(at).toBe(total);
  });

  test("cancel drops the rest of the body; the next request on the agent still works", async () => {
    const url = await serve((req, res) => {
      if (req.headers["x-small"]) {
        res.end("ok");
        return;
      }
      res.writeHead(200, { "content-length": 8 * MiB });
      res.write(Buffer.alloc(MiB, 1));
      // The rest never comes: only cancel ends this body.
    });
    const answer = await nodeHttpFetch(url);
    const reader = answer.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel();
    const small = await nodeHttpFetch(url, { headers: { "x-small": "1" } });
    const r = small.body!.getReader();
    const got = await r.read();
    expect(new TextDecoder().decode(got.value)).toBe("ok");
    expect((await r.read()).done).toBe(true);
  });

  test("reads asked before the bytes come are answered in order", async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { "content-length": 6 });
      setTimeout(() => res.write("abc"), 30);
      setTimeout(() => res.end("def"), 60);
    });
    const reader = (await nodeHttpFetch(url)).body!.getReader();
    const [a, b, c] = await Promise.all([reader.read(), reader.read(), reader.read()]);
    const text = (s: { value?: Uint8Array }) => new TextDecoder().decode(s.value);
    expect([text(a), text(b), c.done]).toEqual(["abc", "def", true]);
  });

  test("a connection lost mid-body rejects the read (ECONNRESET), after the bytes that came", async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { "content-length": 4 * MiB });
      res.write(Buffer.alloc(1000, 9), () => setTimeout(() => res.socket?.destroy(), 50));
    });
    const answer = await nodeHttpFetch(url);
    const reader = answer.body!.getReader();
    let got = 0;
    const failure = await (async () => {
      for (;;) {
        const step = await reader.read();
        if (step.done) return undefined;
        got += step.value!.length;
      }
    })().catch((err: unknown) => err);
    expect(got).toBe(1000);
    expect(failure).toMatchObject({ code: "ECONNRESET" });
  });
});
