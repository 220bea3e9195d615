/** vitest globalSetup: one fauxqs for the whole run; tests read its endpoint via `inject("s3")`. */
import type { TestProject } from "vitest/node";
import { startFauxqs, type TestS3Server } from "./s3-server.js";

let server: TestS3Server | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startFauxqs();
  const { stop: _stop, ...info } = server;
  project.provide("s3", info);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    s3: Omit<TestS3Server, "stop">;
  }
}
