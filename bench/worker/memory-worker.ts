/**
 * Worker for `bench/worker-memory.mjs`: one replica held across requests
 * (as a Worker keeps it in module scope), opened with the request's
 * `cacheBytes`; each request runs a list of statements and returns the
 * cache's figures.
 */
import { openReplica, type Replica } from "../../src/vfs/index.js";
import wasm from "./wa-sqlite-async.wasm";

interface Op {
  sql: string;
  params: unknown[];
}

interface RunRequest {
  url: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  cacheBytes: number;
  maxRequestsPerQuery: number;
  ops: Op[];
}

let replica: Replica | undefined;

export default {
  async fetch(request: Request): Promise<Response> {
    // A GET does nothing: it lets the isolate run (the bench's inspector calls wait for that).
    if (request.method === "GET") return new Response("idle");
    const body = (await request.json()) as RunRequest;
    try {
      replica ??= await openReplica(body.url, {
        wasm,
        cacheBytes: body.cacheBytes,
        storeOptions: { credentials: body.credentials },
        maxRequestsPerQuery: body.maxRequestsPerQuery,
      });
      let rows = 0;
      for (const op of body.ops) {
        rows += (await replica.values(op.sql, op.params as never)).length;
      }
      return Response.json({ rows, cache: replica.status().cache });
    } catch (err) {
      const e = err as { message?: string; code?: string };
      return Response.json({ error: e.message ?? String(err), code: e.code }, { status: 500 });
    }
  },
};
