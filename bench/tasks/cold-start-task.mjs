/**
 * Child process measuring a cold start: what a fresh Node process (a Lambda
 * cold start, a CLI run) pays before its first answer. Imports nothing at the
 * top, so the times are the mode's own. Prints ms since the process started
 * (performance.now()) at each step.
 * Args: { mode: bare | import | replica | better-sqlite3, endpoint, bucket,
 *         prefix, path, accessKeyId, secretAccessKey, sql, params }.
 */
const args = JSON.parse(process.argv[2]);
const out = { mode: args.mode, startMs: performance.now() };
if (args.mode === "import") {
  await import("pagecast");
  out.importedMs = performance.now();
} else if (args.mode === "replica") {
  const { openReplica, S3Store } = await import("pagecast");
  out.importedMs = performance.now();
  const store = new S3Store({
    bucket: args.bucket,
    prefix: args.prefix,
    endpoint: args.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: args.accessKeyId, secretAccessKey: args.secretAccessKey },
  });
  const replica = await openReplica({ store, pollIntervalMs: 0 });
  out.openedMs = performance.now();
  const rows = await replica.query(args.sql, args.params);
  out.firstRowMs = performance.now();
  out.rows = rows.length;
  await replica.close();
  await store.close();
} else if (args.mode === "better-sqlite3") {
  const { default: Database } = await import("better-sqlite3");
  out.importedMs = performance.now();
  const db = new Database(args.path, { readonly: true });
  const rows = db.prepare(args.sql).all(...args.params);
  out.firstRowMs = performance.now();
  out.rows = rows.length;
  db.close();
}
out.rssBytes = process.memoryUsage().rss;
console.log(JSON.stringify(out));
