/**
 * `pagecast replicate` as a real process, the way systemd, Docker, `nohup`
 * or a Kubernetes sidecar run it: stdio not a terminal, stdin closed. It must
 * stay up, replicate what other processes write, stop cleanly on SIGTERM,
 * exit 1 with a clear message when it loses its lease, and say on stderr
 * when storage is down and when it is back.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { LEASE_KEY } from "../../src/replicator/lease.js";
import { restore } from "../../src/replicator/restore.js";
import { FileStore } from "../../src/storage/file-store.js";
import { S3Store } from "../../src/storage/s3-store.js";
import { type FaultProxy, startFaultProxy } from "../../src/testing/fault-proxy-node.js";
import { dumpFile, integrity, tempDir } from "./helpers.js";
import { ensureBuilt, pagecast, sleep, sqlite3, startDaemon } from "./processes.js";

beforeAll(ensureBuilt, 180_000);
const { dir, cleanup } = tempDir("pagecast-daemon-");
afterAll(cleanup);

async function newDb(name: string): Promise<string> {
  const db = join(dir, name);
  await sqlite3(
    db,
    "PRAGMA journal_mode=WAL",
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
    "INSERT INTO t (v) VALUES ('start')",
  );
  return db;
}

describe("pagecast replicate as a daemon", () => {
  test("stays up with no terminal and stdin closed, replicates other processes' writes, exits 0 on SIGTERM", async () => {
    const db = await newDb("daemon.db");
    const rep = join(dir, "daemon-replica");
    const url = pathToFileURL(rep).href;
    const daemon = startDaemon(db, url, ["--sync-interval", "200ms"]);
    await daemon.ready;
    const started = Date.now();
    // An application in other processes: one sqlite3 process per write, for 20 s.
    let n = 0;
    let seenLatest = 0;
    while (Date.now() - started < 20_000) {
      expect(daemon.done, `exited on its own: ${daemon.stderr()}`).toBe(false);
      n++;
      await sqlite3(db, `INSERT INTO t (v) VALUES ('w${n}')`);
      if (n % 10 === 0) {
        // A reader in a third process sees it within seconds.
        const want = n;
        for (let i = 0; i < 40; i++) {
          const q = await pagecast(["query", url, "SELECT max(id) FROM t", "--json"]);
          expect(q.code, q.stderr).toBe(0);
          const got = Object.values(JSON.parse(q.stdout)[0])[0] as number;
          if (got >= want + 1) {
            seenLatest = want;
            break;
          }
          await sleep(250);
        }
        expect(seenLatest, `write ${want} never reached the replica`).toBe(want);
      }
      await sleep(300);
    }
    expect(daemon.done, daemon.stderr()).toBe(false);
    const stopAt = Date.now();
    expect(await daemon.stop("SIGTERM")).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect(daemon.stderr()).toMatch(/stopped at TXID \d+/);
    const out = join(dir, "daemon-restored.db");
    const store = new FileStore({ root: rep });
    await restore(store, out);
    await store.close();
    expect(integrity(out)).toBe("ok");
    expect(dumpFile(out)).toBe(dumpFile(db));
  }, 90_000);

  test("a lost lease ends it with exit 1 and says why", async () => {
    const db = await newDb("lease.db");
    const rep = join(dir, "lease-replica");
    const daemon = startDaemon(db, pathToFileURL(rep).href, [
      "--sync-interval",
      "100ms",
      "--lease-ttl",
      "1s",
    ]);
    await daemon.ready;
    // Another writer takes the path over.
    const store = new FileStore({ root: rep });
    const taken = {
      format: "pagecast-lease",
      version: 1,
      writerId: "someone-else",
      hostname: "elsewhere",
      pid: 1,
      acquiredAt: Date.now(),
      expiresAt: Date.now() + 60_000,
    };
    await store.put(LEASE_KEY, new TextEncoder().encode(JSON.stringify(taken)));
    await store.close();
    await sleep(600);
    await sqlite3(db, "INSERT INTO t (v) VALUES ('after takeover')");
    const code = await Promise.race([daemon.exited, sleep(20_000).then(() => "timeout")]);
    expect(code, daemon.stderr()).toBe(1);
    expect(daemon.stderr()).toMatch(/pagecast: .*lease.*\[LEASE_LOST\]/);
  }, 60_000);

  test("a storage outage is reported on stderr while it lasts, and the daemon catches up", async () => {
    const s3 = inject("s3");
    let down = false;
    const proxy: FaultProxy = await startFaultProxy({
      target: s3.endpoint,
      plan: (req) => (down && req.method === "PUT" ? "reset" : undefined),
    });
    try {
      const db = await newDb("outage.db");
      const prefix = `daemon-outage-${Date.now().toString(36)}`;
      const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(proxy.endpoint)}&region=${s3.region}&forcePathStyle=true`;
      const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
      const daemon = startDaemon(db, url, ["--sync-interval", "100ms"], env);
      await daemon.ready;
      down = true;
      for (let i = 0; i < 10; i++) {
        await sqlite3(db, `INSERT INTO t (v) VALUES ('during ${i}')`);
        await sleep(200);
      }
      for (let i = 0; i < 100 && !/storage unavailable/.test(daemon.stderr()); i++)
        await sleep(100);
      expect(daemon.stderr()).toMatch(/WARN storage unavailable; committed changes are kept/);
      down = false;
      for (let i = 0; i < 300 && !/storage available again/.test(daemon.stderr()); i++) {
        await sleep(100);
      }
      expect(daemon.stderr()).toMatch(/INFO storage available again; caught up/);
      expect(await daemon.stop("SIGTERM")).toBe(0);
      const store = new S3Store({
        bucket: s3.bucket,
        prefix,
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      const out = join(dir, "outage-restored.db");
      await restore(store, out);
      await store.close();
      expect(dumpFile(out)).toBe(dumpFile(db));
    } finally {
      await proxy.close();
    }
  }, 90_000);
});
