/**
 * An HTTP app with a better-sqlite3 primary, the Replicator publishing it to
 * S3, two replicas and the router: reads go to replicas, writes to the
 * primary, and a client always reads its own writes, across requests, thanks
 * to the bookmark it carries in a cookie (or the `x-pagecast-bookmark` header).
 *
 *   DB_PATH=notes.db REPLICA_URL='s3://bucket/notes?region=eu-west-1' PORT=3000 node server.js
 *
 *   POST /notes   {"text": "..."}  -> 201 and the note
 *   GET  /notes                    -> the notes, newest first
 *   GET  /status                   -> vfsStatus(router): replicas, reads per target, fallbacks
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import Database from "better-sqlite3";
import { desc } from "drizzle-orm";
import { createRouter, openReplica, vfsStatus } from "pagecast";
import { betterSqlitePrimary, Replicator } from "pagecast/node";
import { notes } from "./schema.js";

const dbPath = process.env.DB_PATH ?? "notes.db";
const replicaUrl = process.env.REPLICA_URL;
if (!replicaUrl) {
  console.error("set REPLICA_URL to where the replica lives");
  process.exit(2);
}

// The primary: a plain SQLite file in WAL mode, used by the app as usual.
const sqlite = new Database(dbPath);
sqlite.pragma("journal_mode = wal");
sqlite.exec(
  "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, created_at INTEGER NOT NULL)",
);

// Publishes every commit to object storage, a few times a second.
const replicator = await Replicator.start({ db: dbPath, url: replicaUrl, syncInterval: 250 });

// Two replicas (in production: other processes, regions or Workers).
const replicas = await Promise.all(
  [0, 1].map(() => openReplica(replicaUrl, { pollIntervalMs: 100 })),
);

const db = createRouter({
  primary: betterSqlitePrimary(sqlite, { replicator }),
  replicas,
  maxLagSeconds: 30,
  schema: { notes },
});

const COOKIE = "pagecast_bookmark";

function bookmarkOf(req: IncomingMessage): string | undefined {
  const header = req.headers["x-pagecast-bookmark"];
  if (typeof header === "string" && header) return header;
  const cookie = /(?:^|;\s*)pagecast_bookmark=([^;]+)/.exec(req.headers.cookie ?? "");
  return cookie?.[1];
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

function send(res: ServerResponse, status: number, value: unknown): void {
  // Hand the session's bookmark back: the next request resumes it.
  const bookmark = db.$bookmark();
  res.writeHead(status, {
    "content-type": "application/json",
    "x-pagecast-bookmark": bookmark,
    "set-cookie": `${COOKIE}=${bookmark}; Path=/; HttpOnly; SameSite=Lax`,
  });
  res.end(JSON.stringify(value));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (req.method === "POST" && path === "/notes") {
    const { text } = (await body(req)) as { text?: unknown };
    if (typeof text !== "string" || !text) return send(res, 400, { error: "text is required" });
    const [note] = await db.insert(notes).values({ text, createdAt: Date.now() }).returning();
    return send(res, 201, note);
  }
  if (req.method === "GET" && path === "/notes") {
    return send(res, 200, await db.select().from(notes).orderBy(desc(notes.id)).limit(50));
  }
  if (req.method === "GET" && path === "/status") return send(res, 200, vfsStatus(db));
  send(res, 404, { error: "no such route" });
}

/** A session resuming the client's bookmark; a malformed one (ROUTER_BOOKMARK_INVALID) starts afresh. */
function inSession(req: IncomingMessage, fn: () => Promise<void>): Promise<void> {
  try {
    return db.$withSession(fn, bookmarkOf(req));
  } catch {
    return db.$withSession(fn);
  }
}

const server = createServer((req, res) => {
  inSession(req, () => handle(req, res)).catch((err: unknown) => {
    console.error(err);
    if (!res.headersSent) send(res, 500, { error: "internal error" });
    else res.end();
  });
});

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(`listening on http://127.0.0.1:${port}`);
});

async function shutdown(): Promise<void> {
  server.close();
  await Promise.all(replicas.map((r) => r.close()));
  await replicator.close(); // final sync
  sqlite.close();
  process.exit(0);
}
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
