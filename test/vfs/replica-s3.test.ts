/**
 * The replica over real HTTP S3 (fauxqs in-process; RGW when
 * PAGECAST_RGW_ENDPOINT is set): ranged GETs, conditional GETs (304),
 * listings, by URL as an application would open it.
 */
import { describe, expect, inject, test } from "vitest";
import { S3Store } from "../../src/storage/s3-store.js";
import { openReplica } from "../../src/vfs/index.js";
import { primaryValues, readSqliteWasm, ScriptedWriter } from "./helpers.js";

interface Target {
  name: string;
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  createBucket: boolean;
}

const s3 = inject("s3");
const targets: Target[] = [
  {
    name: "fauxqs",
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    createBucket: false,
  },
];
const rgw = process.env.PAGECAST_RGW_ENDPOINT;
if (rgw) {
  targets.push({
    name: "rgw",
    endpoint: rgw,
    bucket: `pagecast-vfs-${Date.now().toString(36)}`,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    createBucket: true,
  });
}

describe.each(targets)("replica over S3 ($name)", (t) => {
  test.each([true, false])("opens by URL, follows commits (head layout: %s)", async (head) => {
    if (t.createBucket) {
      const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
      const client = new S3Client({
        endpoint: t.endpoint,
        region: t.region,
        credentials: t.credentials,
        forcePathStyle: true,
      });
      await client.send(new CreateBucketCommand({ Bucket: t.bucket })).catch(() => {});
      client.destroy();
    }
    const prefix = `vfs-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const writerStore = new S3Store({
      bucket: t.bucket,
      prefix,
      endpoint: t.endpoint,
      region: t.region,
      credentials: t.credentials,
    });
    const writer = new ScriptedWriter(writerStore, { head });
    await writer.commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    await writer.commit(() => {
      const ins = writer.db.prepare("INSERT INTO t (v) VALUES (?)");
      for (let i = 0; i < 800; i++) ins.run(`${i}`.padEnd(300, "s"));
    });
    const url = `s3://${t.bucket}/${prefix}?endpoint=${encodeURIComponent(t.endpoint)}&region=${t.region}`;
    const replica = await openReplica(url, {
      wasm: readSqliteWasm,
      pollIntervalMs: 0,
      // Every query sees the newest version: no bound on the wait for its poll
      // (the default 1 s is passed by HTTP round trips on a loaded machine).
      pollWaitMs: Number.POSITIVE_INFINITY,
      storeOptions: { credentials: t.credentials },
    });
    try {
      const sql = "SELECT count(*), sum(length(v)), max(id) FROM t";
      expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
      await writer.commit("DELETE FROM t WHERE id % 3 = 0");
      expect(await replica.values(sql)).toEqual(primaryValues(writer.primaryAt(writer.txid), sql));
      const before = replica.status().requests;
      await replica.poll();
      const after = replica.status().requests;
      if (head) {
        // Idle: one conditional GET answered 304.
        expect(after.poll.requests - before.poll.requests).toBe(1);
        expect(after.list.requests - before.list.requests).toBe(0);
      }
      expect(replica.status()).toMatchObject({
        txid: writer.txid,
        lastError: null,
        health: "healthy",
      });
    } finally {
      await replica.close();
      writer.close();
      await writerStore.close();
    }
  });
});
