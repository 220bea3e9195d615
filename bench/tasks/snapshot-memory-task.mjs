/**
 * Child process: publishes the initial snapshot of a (large) database with
 * the Replicator and reports this process's peak RSS, so that the memory a
 * snapshot costs is measured on its own. Run it directly to compare builds:
 *
 *   node bench/tasks/snapshot-memory-task.mjs '{"db": "/data/big.db", "root": "/tmp/replica"}'
 *   node bench/tasks/snapshot-memory-task.mjs '{"db": "...", "endpoint": "http://127.0.0.1:PORT",
 *        "bucket": "b", "prefix": "p", "dist": "/path/to/other/build/dist"}'
 *
 * Args: { db, root (file store) | endpoint + bucket + prefix (S3), dist?
 *         (directory of the built pagecast to load; default this tree's dist/) }.
 * The database is copied first (the Replicator puts it into WAL mode).
 */
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { failTask, finishTask, peakRss } from "../lib/child-task.mjs";
import { benchS3Store } from "../lib/pagecast-api.mjs";

const args = JSON.parse(process.argv[2]);
const dist = args.dist ?? new URL("../../dist/", import.meta.url).pathname;
const copy = `${args.db}.snapshot-task-${process.pid}.db`;
let sampled = 0;
const sampler = setInterval(() => {
  sampled = Math.max(sampled, process.memoryUsage().rss);
}, 20);
try {
  const node = await import(pathToFileURL(join(dist, "node.js")).href);
  const core = await import(pathToFileURL(join(dist, "index.js")).href);
  copyFileSync(args.db, copy);
  const store = args.root
    ? new node.FileStore({ root: args.root, fsync: false })
    : benchS3Store(core, args);
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const replicator = await node.Replicator.start({
    db: copy,
    store,
    syncInterval: 0,
    compaction: false,
  });
  await replicator.sync();
  const ms = performance.now() - t0;
  const stats = replicator.stats();
  await replicator.close();
  await store.close();
  clearInterval(sampler);
  finishTask({
    ms,
    bytesUploaded: stats.bytesUploaded,
    puts: stats.store.requests.put,
    rssBefore,
    rssSampledMax: sampled,
    peakRss: peakRss(),
  });
} catch (err) {
  clearInterval(sampler);
  failTask(err);
} finally {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${copy}${suffix}`, { force: true });
}
