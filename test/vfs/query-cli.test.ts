import { describe, expect, test } from "vitest";
import type { CliIo } from "../../src/cli/cli-io.js";
import { query } from "../../src/cli/query.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { ScriptedWriter } from "./helpers.js";

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    isTTY: false,
    env: {},
    signal: new AbortController().signal,
  };
  return { cli, out: () => out.join(""), err: () => err.join("") };
}

describe("pagecast query", () => {
  test("prints rows, JSON, and past states with --at", async () => {
    const name = `cli-query-${Math.random().toString(36).slice(2)}`;
    const writer = new ScriptedWriter(new MemoryStore({ name }));
    await writer.commit("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
    await writer.commit("INSERT INTO t (v, b) VALUES ('one', x'0102'), ('two', NULL)");
    const t2 = new Date(writer.times.get(2)!).toISOString();
    await writer.commit("INSERT INTO t (v) VALUES ('three')");
    const url = `memory://${name}`;

    const a = io();
    expect(await query([url, "SELECT id, v, b FROM t ORDER BY id"], a.cli)).toBe(0);
    expect(a.out()).toBe("id|v|b\n1|one|x'0102'\n2|two|NULL\n3|three|NULL\n");

    const b = io();
    expect(await query([url, "SELECT count(*) AS n FROM t", "--json"], b.cli)).toBe(0);
    expect(JSON.parse(b.out())).toEqual([{ n: 3 }]);

    const c = io();
    expect(await query([url, "SELECT count(*) AS n FROM t", "--at", t2, "--json"], c.cli)).toBe(0);
    expect(JSON.parse(c.out())).toEqual([{ n: 2 }]);

    const d = io();
    expect(await query([url, "SELECT v FROM t ORDER BY id", "--at", "txid:2"], d.cli)).toBe(0);
    expect(d.out()).toBe("v\none\ntwo\n");

    await expect(query([url, "DELETE FROM t"], io().cli)).rejects.toMatchObject({
      code: "SQLITE_READONLY",
    });
    await expect(query([url, "SELECT 1", "--at", "soon"], io().cli)).rejects.toMatchObject({
      code: "CLI_USAGE",
    });
    await expect(query([url], io().cli)).rejects.toMatchObject({ code: "CLI_USAGE" });
  });
});
