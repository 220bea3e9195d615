import { afterEach, describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import { RecordingStore, readSqliteWasm, ScriptedWriter } from "./helpers.js";

const open: Replica[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

async function setup(head = true) {
  const mem = new MemoryStore();
  const store = new RecordingStore(mem);
  const writer = new ScriptedWriter(mem, { head });
  await writer.commit("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)");
  await writer.commit(() => {
    const ins = writer.db.prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
    for (let i = 0; i < 500; i++) ins.run(i, `v0-${i}`.padEnd(200, "x"));
  });
  return { mem, store, writer };
}

describe.each([true, false])("read transactions (head layout: %s)", (head) => {
  test("a transaction keeps its version across writer commits and polls; the next sees the newest", async () => {
    const { store, writer } = await setup(head);
    const replica = await openReplica({
      store,
      wasm: readSqliteWasm,
      pollIntervalMs: 0,
      connections: 2,
    });
    open.push(replica);
    const start = writer.txid;
    const seen = await replica.transaction(async (tx) => {
      const before = await tx.values("SELECT count(*), max(v) FROM kv");
      for (let round = 1; round <= 4; round++) {
        await writer.commit(
          `UPDATE kv SET v = 'v${round}-' || k; INSERT INTO kv (v) VALUES ('r${round}')`,
        );
        if (round === 3) await writer.commit("DELETE FROM kv WHERE k < 400; VACUUM");
        // Poll explicitly and through other queries on another connection.
        await replica.poll();
        expect(replica.status().txid).toBe(writer.txid);
        expect(await replica.values("SELECT count(*) FROM kv")).toEqual(
          writer.primaryAt(writer.txid).prepare("SELECT count(*) FROM kv").raw(true).all(),
        );
        const inside = await tx.values("SELECT count(*), max(v) FROM kv");
        expect(inside).toEqual(before);
        // A full scan inside the old version still reads consistent pages.
        const all = await tx.values("SELECT k, v FROM kv ORDER BY k");
        expect(all).toEqual(
          writer.primaryAt(start).prepare("SELECT k, v FROM kv ORDER BY k").raw(true).all(),
        );
      }
      return before;
    });
    expect(seen).toEqual(
      writer.primaryAt(start).prepare("SELECT count(*), max(v) FROM kv").raw(true).all(),
    );
    const after = await replica.values("SELECT count(*), min(v) FROM kv");
    expect(after).toEqual(
      writer.primaryAt(writer.txid).prepare("SELECT count(*), min(v) FROM kv").raw(true).all(),
    );
  });
});
