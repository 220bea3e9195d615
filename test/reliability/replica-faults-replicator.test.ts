/**
 * The differential fault check with the real writer: the Replicator publishes
 * a random workload (WAL mode, compactions) to a clean store, while a replica
 * reads it through `faultyStore` at a 10% fault rate (bit flips only where
 * the reader can check them). Every answer equals the
 * primary's at one of the published TXIDs the replica has reached, or is
 * SQLITE_IOERR; when storage recovers, the replica reaches the writer.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, expect, test } from "vitest";
import { Replicator } from "../../src/replicator/replicator.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { faultyStore, TRANSIENT_FAULT_KINDS } from "../../src/testing/faulty-store.js";
import { checkedLtxBits } from "../../src/testing/ltx-corruption.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica, ReplicaQueryError } from "../../src/vfs/index.js";
import { primaryValues, readSqliteWasm } from "../vfs/helpers.js";
import { ltxLayouts, randomQuery, randomWrite, SCHEMA, seedRows } from "./helpers.js";

const ROUNDS = Number(process.env.PAGECAST_FAULT_ROUNDS ?? 30);
const SEED = Number(process.env.PAGECAST_SEED ?? 8080);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

test(
  `Replicator-written replica at 10% faults: equal answers or SQLITE_IOERR (${ROUNDS} rounds)`,
  async () => {
    const r = prng(SEED);
    const dir = mkdtempSync(join(tmpdir(), "pagecast-rel-replicator-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "app.db");
    const app = new Database(path);
    cleanups.push(() => app.close());
    app.pragma("journal_mode = wal");
    app.exec(SCHEMA);
    seedRows(app, r, 300);
    const store = new MemoryStore();
    const writer = await Replicator.start({
      db: path,
      store,
      syncInterval: 0,
      compaction: false,
      retention: 0,
      checkpointPages: 200,
      truncatePages: 2000,
    });
    cleanups.push(() => writer.close());

    /** The primary's content at each published TXID. */
    const images = new Map<number, Database.Database>();
    const snapshot = async () => {
      const pos = await writer.sync();
      const image = app.serialize();
      // A WAL-mode header cannot be opened from memory; the content is what counts.
      image[18] = 1;
      image[19] = 1;
      const db = new Database(image, { readonly: true });
      cleanups.push(() => db.close());
      images.set(pos.txid, db);
      return pos.txid;
    };
    let top = await snapshot();
    const layouts = await ltxLayouts(store);

    const faulty = faultyStore(store, {
      rate: 0,
      kinds: [...TRANSIENT_FAULT_KINDS, "truncate", "bitflip"],
      seed: SEED,
      timeoutMs: 5,
      slowMs: 2,
      flipBit: checkedLtxBits(layouts),
    });
    const replica = await openReplica({
      store: faulty,
      wasm: readSqliteWasm,
      pollIntervalMs: 0,
      cacheBytes: 128 * 1024,
    });
    cleanups.push(() => replica.close());
    faulty.rate = 0.1;

    let equal = 0;
    let ioErrors = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let w = r.int(1, 2); w > 0; w--) randomWrite(app, r, round);
      if (round % 10 === 9) await writer.compactNow();
      top = await snapshot();
      await ltxLayouts(store, layouts);
      const users = (
        app.prepare("SELECT coalesce(max(id), 1) AS m FROM users").get() as { m: number }
      ).m;
      for (let q = 0; q < 8; q++) {
        const [sql, params] = randomQuery(r, users);
        const before = replica.status().txid!;
        let got: unknown[][];
        try {
          got = await replica.values(sql, params);
        } catch (err) {
          if (!(err instanceof ReplicaQueryError) || err.code !== "SQLITE_IOERR") throw err;
          ioErrors++;
          continue;
        }
        const after = replica.status().txid!;
        const wants = [before, after].map((txid) => {
          const db = images.get(txid);
          expect(db, `replica at unpublished TXID ${txid}`).toBeDefined();
          return JSON.stringify(primaryValues(db!, sql, params));
        });
        expect(
          wants,
          `seed ${SEED} round ${round}: WRONG ANSWER ${sql} ${JSON.stringify(params)}`,
        ).toContain(JSON.stringify(got));
        equal++;
      }
    }
    expect(faulty.faults).toBeGreaterThan(10);
    expect(equal).toBeGreaterThan((equal + ioErrors) / 5);
    console.info(
      `[replica-faults replicator] seed ${SEED}: ${faulty.requests} requests, ${faulty.faults} faults ` +
        `${JSON.stringify(faulty.injected)}; ${equal} equal answers, ${ioErrors} SQLITE_IOERR, 0 wrong`,
    );
    faulty.rate = 0;
    await replica.poll();
    expect(replica.status().txid).toBe(top);
  },
  Math.max(120_000, ROUNDS * 2000),
);
