/**
 * Metrics in one naming for writer, replicas and routers: `replicator.metrics()`,
 * `replica.metrics()`, `db.$metrics()` and `metricsText([...])` render valid
 * Prometheus text (each family's HELP/TYPE once) that follows the data.
 * Also: the router's `$close()` closes the replicas it was given.
 */
import { afterEach, describe, expect, test } from "vitest";
import { MetricsText, metricsText } from "../../src/metrics/prometheus-text.js";
import { createRouter } from "../../src/router/router.js";
import { RouterError } from "../../src/router/router-error.js";
import { betterSqlitePrimary } from "../../src/router-node/better-sqlite-primary.js";
import { catchUp, replicatedPrimary, users } from "../router/helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Samples of `name` as `labels -> value` (labels text without braces). */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? "", Number(m[3]));
  }
  return out;
}

/** Every line is a comment or a well-formed sample; each family's HELP and TYPE appear once. */
function expectValidExposition(text: string): void {
  const help = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) {
      const name = line.split(" ")[2]!;
      expect(help.has(name), `HELP ${name} twice`).toBe(false);
      help.add(name);
    } else if (!line.startsWith("# TYPE ")) {
      expect(line).toMatch(
        /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/,
      );
    }
  }
}

describe("metrics", () => {
  test("writer, replicas and router share names; values follow commits", async () => {
    const env = await replicatedPrimary((fn) => cleanups.push(fn), { syncInterval: 0 });
    const { replicator, replicas, file } = env;
    await catchUp(env);
    const before = replicas[0]!.metrics({ labels: { app: "api" } });
    expectValidExposition(before);
    const txid0 = [...samples(before, "pagecast_txid").values()][0]!;
    expect([...samples(before, "pagecast_txid").keys()][0]).toMatch(/^app="api",url="memory:/);

    file.exec("INSERT INTO users (name) VALUES ('cy'); INSERT INTO users (name) VALUES ('di');");
    await catchUp(env);
    const writer = replicator.metrics();
    expectValidExposition(writer);
    const reader = replicas[0]!.metrics();
    const writerTxid = [...samples(writer, "pagecast_txid").values()][0]!;
    expect(writerTxid).toBeGreaterThan(txid0);
    expect([...samples(reader, "pagecast_txid").values()][0]).toBe(writerTxid);
    expect([...samples(writer, "pagecast_health").entries()]).toContainEqual([
      expect.stringMatching(/state="healthy"$/),
      1,
    ]);
    expect(
      [...samples(writer, "pagecast_sync_duration_seconds_count").values()][0],
    ).toBeGreaterThan(0);
    expect([...samples(reader, "pagecast_read_requests_total").values()].some((v) => v > 0)).toBe(
      true,
    );

    const db = createRouter({
      primary: betterSqlitePrimary(file, { replicator }),
      replicas,
      readYourWrites: false,
    });
    await db.select().from(users);
    const routed = db.$metrics();
    expectValidExposition(routed);
    const reads = samples(routed, "pagecast_router_reads_total");
    expect(reads.get('target="primary"')! + reads.get('target="replica"')!).toBe(1);
    // Each replica's own metrics, told apart by index.
    expect([...samples(routed, "pagecast_txid").keys()]).toEqual([
      expect.stringMatching(/url="memory:[^"]*",replica="0"/),
      expect.stringMatching(/url="memory:[^"]*",replica="1"/),
    ]);
    // One exposition of several sources: each family once.
    const all = metricsText([replicator, replicas[0]!, db]);
    expectValidExposition(all);
    expect(samples(all, "pagecast_txid").size).toBe(4);

    // $close closes the replicas it was given; the router refuses statements afterwards.
    await db.$close();
    await expect(replicas[0]!.query("SELECT 1")).rejects.toThrow();
    // Drizzle wraps the router's error (DrizzleQueryError), keeping it as the cause.
    const err = await db
      .select()
      .from(users)
      .then(
        () => undefined,
        (e: unknown) => e as { cause?: unknown },
      );
    expect(err?.cause).toBeInstanceOf(RouterError);
    expect(err?.cause).toMatchObject({ code: "ROUTER_CLOSED" });
  });

  test("label values are escaped; bad names are refused", () => {
    const t = new MetricsText().add("m", "gauge", "help", { l: 'a"b\\c\nd' }, 1);
    expect(t.text()).toContain('m{l="a\\"b\\\\c\\nd"} 1');
    expect(() => new MetricsText().add("bad-name", "gauge", "h", {}, 1)).toThrow(TypeError);
    expect(() => metricsText([{} as never])).toThrow(TypeError);
  });
});
