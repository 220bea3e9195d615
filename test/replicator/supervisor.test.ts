/**
 * ReplicatorSupervisor: one database that cannot start (its lease held by
 * another writer, its file missing) is retried while the others replicate,
 * and starts once the obstacle goes; close() makes every final sync.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, test } from "vitest";
import { silentLogger } from "../../src/replicator/logger.js";
import { Replicator } from "../../src/replicator/replicator.js";
import { restore } from "../../src/replicator/restore.js";
import { ReplicatorSupervisor } from "../../src/replicator/supervisor.js";
import { openStore } from "../../src/storage/open-store.js";
import { openApp, tempDir } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let debug: (() => unknown) | undefined;
async function until(ok: () => boolean, limitMs = 20_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > end)
      throw new Error(`condition not met in time: ${JSON.stringify(debug?.())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("ReplicatorSupervisor", () => {
  test("a database whose lease is held elsewhere is retried; the others replicate meanwhile", async () => {
    const { dir, cleanup } = tempDir("pagecast-supervisor-");
    cleanups.push(cleanup);
    // Named memory stores: every store opened on a name shares its objects (the supervisor closes its own).
    const tag = Date.now().toString(36);
    const urls = {
      a: `memory://sup-a-${tag}`,
      b: `memory://sup-b-${tag}`,
      missing: `memory://sup-m-${tag}`,
    };
    const apps = { a: openApp(join(dir, "a.db")), b: openApp(join(dir, "b.db")) };
    for (const app of Object.values(apps)) {
      cleanups.push(() => app.close());
      app.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    }
    // Another writer holds b's replica.
    const other = await Replicator.start({
      db: join(dir, "b.db"),
      url: urls.b,
      syncInterval: 0,
    });
    const lines: string[] = [];
    const sup = new ReplicatorSupervisor({
      logger: { ...silentLogger, error: (m, f) => lines.push(`${m} ${JSON.stringify(f)}`) },
      retryDelay: 100,
      maxRetryDelay: 200,
    });
    cleanups.push(() => sup.close());
    for (const name of ["a", "b", "missing"] as const) {
      sup.add({
        db: join(dir, `${name}.db`),
        url: urls[name],
        openStore: () => openStore(urls[name]),
        options: { syncInterval: 50 },
      });
    }
    expect(sup.add({ db: join(dir, "a.db"), url: "x", openStore: () => openStore(urls.a) })).toBe(
      false,
    );
    await sup.started();
    debug = () => sup.status();
    const state = (n: string) => sup.status().find((s) => s.db === join(dir, n))!;
    expect(state("a.db").state).toBe("replicating");
    expect(state("b.db")).toMatchObject({ state: "retrying" });
    expect(state("b.db").lastError).toMatch(/lease/i);
    expect(state("missing.db").state).toBe("retrying");
    expect(sup.healthy()).toBe(false);

    apps.a.exec("INSERT INTO t VALUES (2);");
    const txid = state("a.db").txid!;
    await until(() => (state("a.db").txid ?? 0) > txid);
    expect(sup.metrics()).toMatch(
      /pagecast_database_state\{db="[^"]*b\.db",url="[^"]*",state="retrying"\} 1/,
    );

    // The other writer goes: b starts at the next attempt. The missing file appears: so does it.
    await other.close();
    writeFileSync(join(dir, "missing.db"), "");
    await until(
      () => state("b.db").state === "replicating" && state("missing.db").state === "replicating",
    );
    expect(state("b.db").failures).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes("b.db"))).toBe(true);

    apps.b.exec("INSERT INTO t VALUES (3);");
    await sup.close();
    expect(sup.status().every((s) => s.state === "stopped")).toBe(true);
    // The final sync published b's last commit.
    const store = await openStore(urls.b);
    const out = join(dir, "b-restored.db");
    await restore(store, out);
    await store.close();
    const restored = new Database(out, { readonly: true });
    expect(restored.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2 });
    restored.close();
  });
});
