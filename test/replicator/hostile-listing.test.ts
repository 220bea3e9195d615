/**
 * Issue 18: a restarted writer takes TXIDs from what it can trust (the head,
 * and above it the files' own headers), never from object names alone. A
 * 3-byte object named `0000/<2^53-3>-<2^53-3>.ltx`, or a real LTX file under
 * a name its header contradicts, is ignored with a warning; replication
 * continues at the next TXID without a snapshot.
 */
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { ltxKey } from "../../src/format/index.js";
import { HEAD_OBJECT_KEY, listAllLevels, parseHeadObject } from "../../src/layout/index.js";
import type { ReplicatorLogger } from "../../src/replicator/logger.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { dump, dumpFile, openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function recordingLogger(): { logger: ReplicatorLogger; warnings: string[] } {
  const warnings: string[] = [];
  const logger: ReplicatorLogger = {
    debug() {},
    info() {},
    warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f ?? {})}`),
    error() {},
  };
  return { logger, warnings };
}

describe("hostile objects in the replica's listing", () => {
  test("a 3-byte object named 0000/<2^53-3>-<2^53-3>.ltx and a file under a wrong name do not poison a restarted writer", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const dbPath = join(dir, "app.db");
    const app = openApp(dbPath);
    cleanups.push(() => app.close());
    app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    const store = new MemoryStore();
    const first = await Replicator.start({ db: dbPath, store, syncInterval: 0 });
    app.prepare("INSERT INTO t (v) VALUES ('a')").run();
    const before = await first.sync();
    await first.close();

    const huge = 2 ** 53 - 3;
    await store.put(ltxKey(0, huge, huge), new Uint8Array([1, 2, 3]));
    // A sound LTX file (TXID 2's) under the name of TXID 7.
    const real = (await store.get(ltxKey(0, before.txid, before.txid))).body!;
    await store.put(ltxKey(0, before.txid + 9, before.txid + 9), real);

    const { logger, warnings } = recordingLogger();
    const r = await Replicator.start({ db: dbPath, store, syncInterval: 0, logger });
    cleanups.push(() => r.close());
    // Resumed (the start publishes its pin's one-frame bump write as the next TXID).
    const resumed = r.position.txid;
    expect(resumed).toBe(before.txid + 1);
    expect(r.stats().snapshots).toBe(0);
    expect(warnings.join("\n")).toContain(ltxKey(0, huge, huge));
    expect(warnings.join("\n")).toContain(ltxKey(0, before.txid + 9, before.txid + 9));
    app.prepare("INSERT INTO t (v) VALUES ('b')").run();
    expect((await r.sync()).txid).toBe(resumed + 1);
    app.prepare("INSERT INTO t (v) VALUES ('c')").run();
    expect((await r.sync()).txid).toBe(resumed + 2);
    expect(r.stats().errors).toBe(0);
    const head = parseHeadObject((await store.get(HEAD_OBJECT_KEY)).body!);
    expect(head.txid).toBe(resumed + 2);
    expect((await listAllLevels(store)).length).toBeGreaterThan(2);
    const out = join(dir, "restored.db");
    // (Restore plans from the listing, where the hostile objects still are: name the TXID.)
    await restore(store, out, { txid: head.txid });
    expect(dumpFile(out)).toBe(dump(app));
  });
});
