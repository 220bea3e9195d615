/**
 * Child process: a plain parallel download of given objects into a file, the
 * way `aws s3 cp` does it: ranged GETs of 8 MiB, `concurrency` in flight,
 * each response streamed to its place in the file. Same SDK (and so the same
 * HTTP stack) as pagecast's S3 store. Prints time, bytes and peak RSS.
 * Args: { endpoint, bucket, prefix, keys: [{key, size}], out, concurrency,
 * store?: "url" (FetchS3Store) | "sdk" }.
 */
import { open, rm } from "node:fs/promises";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { failTask, finishTask, peakRss } from "../lib/child-task.mjs";
import { benchS3Url } from "../lib/pagecast-api.mjs";
import { CREDENTIALS } from "../lib/servers.mjs";

const PART = 8 << 20;
const args = JSON.parse(process.argv[2]);
try {
  const client = new S3Client({
    endpoint: args.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDENTIALS,
    maxAttempts: 1,
  });
  const parts = [];
  let base = 0;
  for (const { key, size } of args.keys) {
    for (let off = 0; off < size; off += PART) {
      parts.push({ key, offset: off, end: Math.min(off + PART, size) - 1, at: base + off });
    }
    base += size;
  }
  const rssBefore = process.memoryUsage().rss;
  const fh = await open(args.out, "w");
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let next = 0;
  let bytes = 0;
  // store "url": the same ranged GETs through pagecast's FetchS3Store (the
  // HTTP stack `pagecast restore s3://...` uses with static credentials).
  const fetchStore =
    args.store === "url"
      ? await (await import("pagecast/node")).openNodeStore(benchS3Url(args), {
          credentials: CREDENTIALS,
        })
      : undefined;
  const worker = async () => {
    while (next < parts.length) {
      const p = parts[next++];
      if (fetchStore) {
        const got = await fetchStore.get(p.key, {
          range: { offset: p.offset, length: p.end - p.offset + 1 },
        });
        await fh.write(got.body, 0, got.body.length, p.at);
        bytes += got.body.length;
        continue;
      }
      const res = await client.send(
        new GetObjectCommand({
          Bucket: args.bucket,
          Key: `${args.prefix}/${p.key}`,
          Range: `bytes=${p.offset}-${p.end}`,
        }),
      );
      let pos = p.at;
      for await (const chunk of res.Body) {
        await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
        bytes += chunk.length;
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  await fh.sync();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await fh.close();
  client.destroy();
  await fetchStore?.close();
  await rm(args.out, { force: true });
  finishTask({
    ms,
    bytes,
    parts: parts.length,
    rssBefore,
    peakRss: peakRss(),
    cpuMs: (cpu.user + cpu.system) / 1000,
  });
} catch (err) {
  await rm(args.out, { force: true });
  failTask(err);
}
