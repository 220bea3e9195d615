/**
 * A poll the replica gave up on (its request hung past `pollAbandonMs`) and
 * the newer poll that replaced it share one Discovery (review by a helper).
 * When the abandoned one's head read came back, later and with a newer head,
 * while the newer poll was being applied, it left its ETag to be adopted: the
 * replica then sat on the older head, every conditional poll answering "not
 * modified", while it reported itself fresh. An overtaken poll now leaves
 * discovery's state alone.
 */
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import type { GetOptions, GetResult } from "../../src/storage/object-store.js";
import { Discovery } from "../../src/vfs/discovery.js";
import { openApp, tempDir } from "../replicator/helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A store whose next head read waits for `release()`. */
class GatedHead extends MemoryStore {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  constructor(readonly inner: MemoryStore) {
    super();
  }
  holdNextHeadRead(): () => void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
    return () => this.#open!();
  }
  override async get(key: string, options?: GetOptions): Promise<GetResult> {
    if (key.endsWith(".json") && this.#gate) {
      const gate = this.#gate;
      this.#gate = undefined;
      await gate;
    }
    return this.inner.get(key, options);
  }
  override list(...args: Parameters<MemoryStore["list"]>) {
    return this.inner.list(...args);
  }
}

test("a poll overtaken by a newer one does not leave its head's ETag to be adopted", async () => {
  const { dir, cleanup } = tempDir("pagecast-discovery-");
  cleanups.push(cleanup);
  const app = openApp(join(dir, "app.db"));
  cleanups.push(() => app.close());
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a')");
  const inner = new MemoryStore();
  const replicator = await Replicator.start({
    db: join(dir, "app.db"),
    store: inner,
    syncInterval: 0,
  });
  cleanups.push(() => replicator.close());
  const commit = async () => {
    app.prepare("INSERT INTO t (v) VALUES ('b')").run();
    await replicator.sync();
    return replicator.position.txid;
  };
  const store = new GatedHead(inner);
  const discovery = new Discovery({ head: store, poll: store, list: store });
  const first = await discovery.poll(undefined);
  expect(first.kind).toBe("update");
  discovery.acknowledge();
  const at = (txid: number) => ({
    txid,
    generation: (first as { generation?: string }).generation,
  });
  let served = (first as { txid: number }).txid;

  const second = await commit();
  // Poll A: its head read hangs (the replica gives up on it) ...
  const release = store.holdNextHeadRead();
  const abandoned = discovery.poll(at(served));
  // ... poll B replaces it and reads the head at `second`.
  const b = await discovery.poll(at(served));
  expect(b).toMatchObject({ kind: "update", txid: second });
  // While B is applied, A's read is served, later, with a newer head.
  const third = await commit();
  release();
  await abandoned;
  discovery.acknowledge(); // B applied
  served = second;
  // The next poll must find `third`, not "not modified" against A's ETag.
  const c = await discovery.poll(at(served));
  expect(c).toMatchObject({ kind: "update", txid: third });
});
