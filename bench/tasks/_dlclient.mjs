import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";

const { endpoint, mode } = JSON.parse(process.argv[2]);
const creds = { accessKeyId: "k", secretAccessKey: "s" };
let get;
if (mode === "sdk") {
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds,
    maxAttempts: 1,
  });
  get = async (key) => {
    const res = await client.send(new GetObjectCommand({ Bucket: "b", Key: `p/${key}` }));
    let n = 0;
    for await (const c of res.Body) n += c.length;
    return n;
  };
} else {
  const { openNodeStore } = await import("pagecast/node");
  const store = await openNodeStore(
    `s3://b/p?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1`,
    { credentials: creds },
  );
  get = async (key) =>
    (await store.get(key, { range: { offset: 0, length: 8 << 20 } })).body.length;
}
const keys = Array.from({ length: 25 }, (_, i) => `obj${i}`);
for (let round = 0; round < 3; round++) {
  const t = performance.now();
  const c0 = process.cpuUsage();
  let next = 0,
    bytes = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < keys.length) {
        const n = await get(keys[next++]);
        bytes += n;
      }
    }),
  );
  const c = process.cpuUsage(c0);
  console.log(
    mode,
    round,
    (bytes / 1e6).toFixed(0),
    "MB",
    (performance.now() - t).toFixed(0),
    "ms wall",
    ((c.user + c.system) / 1000).toFixed(0),
    "ms cpu",
  );
}
process.exit(0);
