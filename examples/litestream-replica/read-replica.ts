/**
 * Reading a replica that Litestream 0.5 writes: point pagecast at the same
 * S3 path Litestream replicates to. There is no pagecast head object there,
 * so the replica discovers files by listing (status says `discovery: list`);
 * pages are still fetched lazily, and new files are followed as they appear.
 *
 *   PAGECAST_REPLICA_URL='s3://bucket/path/db?region=us-east-1' node read-replica.js [sql]
 *
 * Credentials come from the usual AWS environment variables.
 */
import { openReplica, vfsStatus } from "pagecast";
import "pagecast/node"; // Node: loads the SQLite WebAssembly from node_modules

const url = process.env.PAGECAST_REPLICA_URL;
if (!url) {
  console.error("set PAGECAST_REPLICA_URL to the path Litestream replicates to");
  process.exit(2);
}
const sql =
  process.argv[2] ??
  "SELECT name, type FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name";

const replica = await openReplica(url);
try {
  const status = vfsStatus(replica);
  console.log(
    `replica at TXID ${status.txid} (committed ${status.commitTime?.toISOString() ?? "?"}), ` +
      `discovery: ${status.discovery}, ${status.pages} pages of ${status.pageSize} bytes`,
  );
  for (const row of await replica.query(sql)) console.log(JSON.stringify(row));
  const after = vfsStatus(replica);
  const requests = Object.values(after.requests).reduce((n, t) => n + t.requests, 0);
  console.log(`${requests} requests, ${after.requests.page.requests} of them for pages`);
} finally {
  await replica.close();
}
