/**
 * The replica under injected storage faults (issue 7): with 10% of requests
 * failing, stalling, answering slowly, truncated or with a flipped bit in a
 * checked field, every answer equals the primary's at the replica's TXID or
 * is SQLITE_IOERR; the replica never goes back in time, keeps its last good
 * version while polls fail, says so in status, and catches up once storage
 * recovers.
 *
 * Long run: PAGECAST_FAULT_ROUNDS (default 30) and PAGECAST_SEED.
 */
import { afterEach, describe, expect, test } from "vitest";
import { HEAD_OBJECT_KEY } from "../../src/layout/index.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { faultyStore, READ_FAULT_KINDS } from "../../src/testing/faulty-store.js";
import { checkedLtxBits, type LtxLayout } from "../../src/testing/ltx-corruption.js";
import { prng } from "../../src/testing/prng.js";
import { openReplica, type Replica, ReplicaQueryError } from "../../src/vfs/index.js";
import { primaryValues, readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";
import {
  differentialQuery,
  ltxLayouts,
  randomQuery,
  randomWrite,
  SCHEMA,
  seedRows,
  tally,
  topUser,
} from "./helpers.js";

const ROUNDS = Number(process.env.PAGECAST_FAULT_ROUNDS ?? 30);
const SEED = Number(process.env.PAGECAST_SEED ?? 7001);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function track(replica: Replica): Promise<Replica> {
  cleanups.push(() => replica.close());
  return replica;
}

describe("replica under injected faults", () => {
  test(
    `10% faults over ${ROUNDS} rounds: equal answers or SQLITE_IOERR, never wrong`,
    async () => {
      const r = prng(SEED);
      const mem = new MemoryStore();
      const writer = new ScriptedWriter(mem);
      cleanups.push(() => writer.close());
      await writer.commit(SCHEMA);
      await writer.commit(() => seedRows(writer.db, r, 600));
      const layouts = new Map<string, LtxLayout>();
      await ltxLayouts(mem, layouts);
      const faulty = faultyStore(mem, {
        rate: 0,
        kinds: READ_FAULT_KINDS,
        seed: SEED,
        timeoutMs: 5,
        slowMs: 2,
        flipBit: checkedLtxBits(layouts),
      });
      const replica = await track(
        await openReplica({
          store: faulty,
          wasm: readSqliteWasm,
          pollIntervalMs: 0,
          // Small cache: pages are fetched again and again, so faults keep hitting page reads.
          cacheBytes: 64 * 1024,
        }),
      );
      faulty.rate = 0.1;
      const t = tally();
      let lastTxid = replica.status().txid!;
      let erroredStatus = 0;
      for (let round = 0; round < ROUNDS; round++) {
        for (let w = r.int(1, 2); w > 0; w--) {
          await writer.commit(() => randomWrite(writer.db, r, round));
        }
        if (round % 7 === 6) await writer.compact(1);
        if (round % 11 === 10) await writer.publish({ snapshot: true });
        await ltxLayouts(mem, layouts);
        const top = topUser(writer, writer.txid);
        for (let q = 0; q < 12; q++) {
          const [sql, params] = randomQuery(r, top);
          await differentialQuery(replica, writer, sql, params, t, `seed ${SEED} round ${round}`);
          const st = replica.status();
          // Never back in time, never ahead of what was published.
          expect(st.txid!).toBeGreaterThanOrEqual(lastTxid);
          expect(st.txid!).toBeLessThanOrEqual(writer.txid);
          lastTxid = st.txid!;
          if (st.lastError) erroredStatus++;
        }
      }
      // The faults really happened and really reached queries.
      expect(faulty.faults).toBeGreaterThan(20);
      for (const kind of [
        "error500",
        "slowDown",
        "timeout",
        "reset",
        "truncate",
        "slow",
      ] as const) {
        expect(faulty.injected[kind], kind).toBeGreaterThan(0);
      }
      expect(faulty.injected.bitflip).toBeGreaterThan(0);
      expect(t.ioErrors).toBeGreaterThan(0);
      // Most queries still answer (more fail as the database outgrows the small cache).
      expect(t.equal).toBeGreaterThan((t.equal + t.ioErrors) / 5);
      expect(erroredStatus).toBeGreaterThan(0);
      console.info(
        `[replica-faults] seed ${SEED}: ${faulty.requests} requests, ${faulty.faults} faults ` +
          `${JSON.stringify(faulty.injected)}; ${t.equal} equal answers, ${t.ioErrors} SQLITE_IOERR ` +
          `(${JSON.stringify(Object.fromEntries(t.causes))}), 0 wrong`,
      );

      // Storage recovers: the replica catches up and every query answers.
      faulty.rate = 0;
      await replica.poll();
      expect(replica.status().txid).toBe(writer.txid);
      const top = topUser(writer, writer.txid);
      const clean = tally();
      for (let q = 0; q < 40; q++) {
        const [sql, params] = randomQuery(r, top);
        await differentialQuery(replica, writer, sql, params, clean, "after recovery");
      }
      expect(clean.ioErrors).toBe(0);
      expect(replica.status().health).toBe("healthy");
    },
    Math.max(120_000, ROUNDS * 1500),
  );

  test("failed polls keep the last good version, report the error and the growing lag, then recover", async () => {
    const r = prng(11);
    let now = Date.UTC(2025, 5, 1);
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem);
    cleanups.push(() => writer.close());
    await writer.commit(SCHEMA);
    await writer.commit(() => seedRows(writer.db, r, 300));
    const known = new Set((await mem.list()).objects.map((o) => o.key));
    // Only discovery of new data fails: the head object and files the replica has not seen.
    const faulty = faultyStore(mem, {
      rate: 0,
      kinds: ["error500", "slowDown", "reset", "timeout"],
      timeoutMs: 1,
      match: (op, key) => op !== "get" || key === HEAD_OBJECT_KEY || !known.has(key ?? ""),
    });
    const replica = await track(
      await openReplica({
        store: faulty,
        wasm: readSqliteWasm,
        pollIntervalMs: 0,
        clock: () => now,
      }),
    );
    const sql = "SELECT count(*), sum(score), max(name) FROM users";
    const good = writer.txid;
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(good), sql));
    expect(replica.status()).toMatchObject({ txid: good, health: "healthy", lastError: null });

    faulty.rate = 1;
    await writer.commit("UPDATE users SET score = score * 2");
    await writer.commit("DELETE FROM users WHERE id % 5 = 0");
    for (let i = 0; i < 5; i++) {
      now += 70_000;
      // The query polls first; the poll fails; the query still answers from the last good version.
      expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(good), sql));
      await expect(replica.poll()).rejects.toMatchObject({ code: "STORE_REQUEST_FAILED" });
    }
    const st = replica.status();
    expect(st.txid).toBe(good);
    expect(st.lastError).toMatchObject({ code: "STORE_REQUEST_FAILED" });
    expect(st.lastError!.message).toContain("injected fault");
    expect(st.lagSeconds).toBeGreaterThanOrEqual(350);
    expect(st.health).toBe("stale");

    faulty.rate = 0;
    now += 1000;
    expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
    expect(replica.status()).toMatchObject({ txid: writer.txid, health: "healthy" });
    expect(faulty.faults).toBeGreaterThan(0);
  });

  test("a failed page read fails that query only; the connection and other queries carry on", async () => {
    const r = prng(12);
    const mem = new MemoryStore();
    const writer = new ScriptedWriter(mem);
    cleanups.push(() => writer.close());
    await writer.commit(SCHEMA);
    await writer.commit(() => seedRows(writer.db, r, 2000));
    const faulty = faultyStore(mem, { rate: 0, kinds: ["error500", "reset", "truncate"] });
    const replica = await track(
      await openReplica({
        store: faulty,
        wasm: readSqliteWasm,
        pollIntervalMs: 60_000,
        connections: 2,
        readAheadPages: 0,
      }),
    );
    const point = "SELECT name FROM users WHERE id = 1";
    const scan = "SELECT count(*), sum(length(bio)) FROM users";
    const primary = writer.primaryAt(writer.txid);
    cleanups.push(() => primary.close());
    const pointWant = primaryValues(primary, point);
    // Warm the pages of the point lookup.
    expect(await replica.values(point)).toEqual(pointWant);
    faulty.rate = 1;
    const [scanResult, ...points] = await Promise.allSettled([
      replica.values(scan),
      replica.values(point),
      replica.values(point),
    ]);
    expect(scanResult.status).toBe("rejected");
    const err = (scanResult as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(ReplicaQueryError);
    expect(err).toMatchObject({ code: "SQLITE_IOERR", isIoError: true });
    expect(err.cause).toMatchObject({ code: expect.stringMatching(/^(STORE_|REPLICA_)/) });
    for (const p of points) expect(p).toEqual({ status: "fulfilled", value: pointWant });

    // Inside an explicit transaction: the failure surfaces, the transaction rolls back, a retry works.
    await expect(replica.transaction((tx) => tx.values(scan))).rejects.toMatchObject({
      code: "SQLITE_IOERR",
    });
    faulty.rate = 0;
    expect(await replica.transaction((tx) => tx.values(scan))).toEqual(
      primaryValues(primary, scan),
    );
    expect(await replica.values(scan)).toEqual(primaryValues(primary, scan));
    expect(replica.status().lastError).not.toBeNull();
  });
});
