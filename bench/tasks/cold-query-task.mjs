/**
 * Child process: one cold run in a fresh process, as an analytics script or a
 * serverless invocation runs it. The clock starts once pagecast is loaded and
 * SQLite's WebAssembly compiled (both engines' wasm is compiled before the
 * clock, as in every cold figure).
 *
 * Args: { engine, endpoint, bucket, prefix, queries: [{ sql, params }],
 *         options (openReplica options), out (restore target) }
 * engine: "pagecast" (open + queries), "restore" (restore + better-sqlite3
 * on the restored file), "hydrate" (open with hydrate: true, wait until the
 * whole database is in memory).
 * Prints { results, ms, openMs, startAt, openAt, endAt (absolute ms, comparable
 * across processes), status }.
 */
import { readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import Database from "better-sqlite3";
import { failTask, finishTask } from "../lib/child-task.mjs";
import { benchS3Store, compileReaderWasm, loadPagecast } from "../lib/pagecast-api.mjs";
import { nowMs } from "../lib/request-ledger.mjs";

const args = JSON.parse(process.argv[2]);
try {
  const api = await loadPagecast();
  // As users run it in Node: `pagecast` (registers cacheDir), both wa-sqlite builds.
  await import(new URL("../../dist/index.node.js", import.meta.url).href);
  const wasm = await compileReaderWasm();
  const require = createRequire(import.meta.url);
  const syncWasm = await WebAssembly.compile(
    readFileSync(require.resolve("@journeyapps/wa-sqlite/dist/wa-sqlite.wasm")),
  );
  const store = benchS3Store(api, args);
  const results = [];
  const startAt = nowMs();
  let openAt;
  let endAt;
  let status;
  if (args.engine === "restore") {
    try {
      await api.restore(store, args.out);
      openAt = nowMs();
      const db = new Database(args.out, { readonly: true });
      try {
        for (const q of args.queries)
          results.push(
            db
              .prepare(q.sql)
              .raw()
              .all(...q.params),
          );
      } finally {
        db.close();
      }
      endAt = nowMs();
    } finally {
      await store.close();
      rmSync(args.out, { force: true });
    }
  } else {
    const replica = await api.openReplica({
      store,
      wasm,
      syncWasm,
      closeStore: true,
      ...(args.engine === "hydrate" ? { hydrate: true } : {}),
      ...(args.options ?? {}),
    });
    openAt = nowMs();
    try {
      for (const q of args.queries) results.push(await replica.values(q.sql, q.params));
      if (args.engine === "hydrate") await replica.hydrate();
      endAt = nowMs();
      status = replica.status();
    } finally {
      await replica.close();
    }
  }
  finishTask({
    results,
    ms: endAt - startAt,
    openMs: openAt - startAt,
    startAt,
    openAt,
    endAt,
    status,
  });
} catch (err) {
  failTask(err);
}
