/**
 * Test S3 servers. `startFauxqs` runs the in-process emulator (used by the
 * vitest globalSetup and by the demo); RGW (real S3) is started by `.ci/run`
 * and announced through PAGECAST_RGW_ENDPOINT.
 */
import { startFauxqs as start } from "fauxqs";

export interface TestS3Server {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  stop(): Promise<void>;
}

/** Starts fauxqs on 127.0.0.1 with an OS-assigned port and one bucket. */
export async function startFauxqs(bucket = "pagecast-test"): Promise<TestS3Server> {
  const server = await start({ port: 0, host: "127.0.0.1", logger: false });
  server.createBucket(bucket);
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    bucket,
    accessKeyId: "test",
    secretAccessKey: "test",
    region: "us-east-1",
    stop: () => server.stop(),
  };
}

/** Ceph RGW of this machine (PAGECAST_RGW_ENDPOINT), when set: endpoint and credentials. */
export function rgwServer():
  | { endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } }
  | undefined {
  const endpoint = process.env.PAGECAST_RGW_ENDPOINT;
  if (!endpoint) return undefined;
  return {
    endpoint,
    credentials: {
      accessKeyId: process.env.PAGECAST_RGW_ACCESS_KEY ?? "S3RVER",
      secretAccessKey: process.env.PAGECAST_RGW_SECRET_KEY ?? "S3RVER",
    },
  };
}

/** Creates `bucket` on an S3 endpoint (path style). */
export async function createBucket(
  endpoint: string,
  bucket: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<void> {
  const { CreateBucketCommand, S3Client } = await import("@aws-sdk/client-s3");
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}
