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
