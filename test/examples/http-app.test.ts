/**
 * Example 3: the HTTP app (better-sqlite3 primary, Replicator, two replicas,
 * router) run as its own process: every client reads its own writes across
 * requests through the bookmark cookie or header, reads reach the replicas
 * once they caught up, and a clean shutdown leaves everything published.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, inject, test } from "vitest";
import { restore } from "../../src/replicator/restore.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { tempDir } from "../router/helpers.js";
import {
  awsEnv,
  bundleForNode,
  type RunningExample,
  s3Url,
  startNode,
  uniquePrefix,
} from "./support/examples.js";

const s3 = inject("s3");
const tmp = tempDir("pagecast-example-http-");
let app: RunningExample | undefined;

afterAll(async () => {
  await app?.stop();
  tmp.cleanup();
});

interface Note {
  id: number;
  text: string;
}

describe("example: HTTP app with read-your-writes across requests", () => {
  test("clients always see their own notes; replicas serve reads once caught up", async () => {
    const prefix = uniquePrefix("http");
    const bundle = await bundleForNode("http-app/server.ts");
    app = startNode(bundle, {
      ...awsEnv(s3),
      DB_PATH: join(tmp.dir, "notes.db"),
      REPLICA_URL: s3Url(s3, prefix),
      PORT: "0",
    });
    const base = (await app.waitFor(/listening on (http:\/\/\S+)/))[1]!;

    let cookie = "";
    let header = "";
    const call = async (
      method: string,
      path: string,
      mode: "cookie" | "header",
      body?: unknown,
    ) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (mode === "cookie" && cookie) headers.cookie = cookie;
      if (mode === "header" && header) headers["x-pagecast-bookmark"] = header;
      const res = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const setCookie = res.headers.get("set-cookie");
      if (mode === "cookie" && setCookie) cookie = setCookie.split(";")[0]!;
      if (mode === "header") header = res.headers.get("x-pagecast-bookmark") ?? header;
      return { status: res.status, json: (await res.json()) as unknown };
    };

    /** Notes the cookie client wrote: read-your-writes promises it these, not the other client's. */
    const cookieNotes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const mode = i % 2 === 0 ? "cookie" : "header";
      const created = await call("POST", "/notes", mode, { text: `note ${i}` });
      expect(created.status).toBe(201);
      const note = created.json as Note;
      if (mode === "cookie") cookieNotes.push(note.id);
      // The very next request of this client sees the note, wherever it is served.
      const list = await call("GET", "/notes", mode);
      expect(list.status).toBe(200);
      expect((list.json as Note[]).map((n) => n.id)).toContain(note.id);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Once replication caught up, the bookmarked client's reads go to the replicas.
    const status = async () =>
      (await call("GET", "/status", "cookie")).json as {
        reads: { primary: number; replicas: number };
        fallbacks: { reasons: Record<string, number> };
        replicas: { name: string; reads: number }[];
      };
    const before = await status();
    let after = before;
    // Bounded in time, not in tries: catching up takes longer on a loaded machine.
    const deadline = Date.now() + 30_000;
    while (after.reads.replicas === before.reads.replicas && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const list = await call("GET", "/notes", "cookie");
      // Its own notes, wherever it is served (a replica may still lack the other client's last one).
      expect((list.json as Note[]).map((n) => n.id)).toEqual(expect.arrayContaining(cookieNotes));
      after = await status();
    }
    expect(after.reads.replicas).toBeGreaterThan(before.reads.replicas);
    expect(after.replicas).toHaveLength(2);
    expect(after.fallbacks.reasons["read-your-writes"]).toBeGreaterThan(0);

    // Bad input is handled: a garbage bookmark starts a fresh session.
    const garbage = await fetch(`${base}/notes`, { headers: { cookie: "pagecast_bookmark=%%%" } });
    expect(garbage.status).toBe(200);
    expect((await call("POST", "/notes", "cookie", { text: "" })).status).toBe(400);

    // SIGTERM: final sync, clean exit; the replica holds every note.
    expect(await app.stop()).toBe(0);
    const store = new S3Store({
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    try {
      const out = join(tmp.dir, "restored.db");
      await restore(store, out);
      const db = new Database(out, { readonly: true });
      expect(db.prepare("select count(*) from notes").pluck().get()).toBe(12);
      db.close();
    } finally {
      await store.close();
    }
  });
});
