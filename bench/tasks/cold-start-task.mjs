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
  const { openReplica } = await import("pagecast");
  out.importedMs = performance.now();
  // By URL, as the README opens replicas: pagecast picks the store (in Node,
  // with static credentials, FetchS3Store: no AWS SDK to load).
  const url = `s3://${args.bucket}/${args.prefix}?endpoint=${encodeURIComponent(args.endpoint)}&region=us-east-1`;
  const replica = await openReplica(url, {
    storeOptions: {
      credentials: { accessKeyId: args.accessKeyId, secretAccessKey: args.secretAccessKey },
    },
    pollIntervalMs: 0,
  });
  out.openedMs = performance.now();
  const rows = await replica.query(args.sql, args.params);
  out.firstRowMs = performance.now();
  out.rows = rows.length;
  // Whether the AWS SDK was loaded (CommonJS: it shows in require's cache).
  const { createRequire } = await import("node:module");
  const cache = createRequire(import.meta.url).cache;
  out.awsSdkLoaded = Object.keys(cache).some((k) => k.includes("@aws-sdk/client-s3"));
  // Whether Node's fetch (undici) was loaded: Node readers reach S3 over node:http.
  out.undiciLoaded = process.moduleLoadList.some((m) => m.includes("undici"));
  await replica.close();
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
