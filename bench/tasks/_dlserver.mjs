// fauxqs in its own process with one 200 MB object; prints the port.

import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startFauxqs } from "fauxqs";

const s3 = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
const endpoint = `http://127.0.0.1:${s3.port}`;
const client = new S3Client({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId: "k", secretAccessKey: "s" },
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
await client.send(new CreateBucketCommand({ Bucket: "b" }));
const size = 8 << 20;
for (let i = 0; i < 25; i++) {
  const body = Buffer.alloc(size, i);
  await client.send(new PutObjectCommand({ Bucket: "b", Key: `p/obj${i}`, Body: body }));
}
console.log(JSON.stringify({ endpoint }));
setInterval(() => {}, 1 << 30);
