/**
 * Child process: pagecast's `restore` of a replica into a file; prints time,
 * bytes and this process's peak RSS.
 * Args: { endpoint, bucket, prefix, out, integrityCheck?, store?: "url" | "sdk",
 * options? } (`options`: further restore options, e.g. decodeThreads, for
 * experiments).
 */
import { rmSync } from "node:fs";
import { failTask, finishTask, peakRss } from "../lib/child-task.mjs";
import { benchS3Store, benchS3Url, loadPagecast } from "../lib/pagecast-api.mjs";
import { CREDENTIALS } from "../lib/servers.mjs";

const args = JSON.parse(process.argv[2]);
try {
  const api = await loadPagecast();
  if (!api.restore || !api.S3Store)
    throw new Error(`pagecast API missing: ${api.missing.join(", ")}`);
  // store "url": what `pagecast restore s3://...` opens with static
  // credentials (FetchS3Store over node:http); else the AWS SDK's S3Store.
  const store =
    args.store === "url"
      ? await (await import("pagecast/node")).openNodeStore(benchS3Url(args), {
          credentials: CREDENTIALS,
        })
      : benchS3Store(api, args);
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  // integrityCheck absent: restore's default check (quick_check).
  const res = await api.restore(store, args.out, {
    ...args.options,
    ...(args.integrityCheck !== undefined ? { integrityCheck: args.integrityCheck } : {}),
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  rmSync(args.out, { force: true });
  finishTask({
    ms,
    bytes: res.bytes,
    files: res.files,
    pages: res.commit,
    txid: res.txid,
    checksumVerified: res.checksumVerified,
    integrityCheck: res.integrityCheck,
    rssBefore,
    peakRss: peakRss(),
    // Every thread of the process, user + system.
    cpuMs: (cpu.user + cpu.system) / 1000,
  });
} catch (err) {
  rmSync(args.out, { force: true });
  failTask(err);
}
