/**
 * User-supplied values are never interpolated into SQL (issue 7), checked by
 * behaviour rather than by grepping: hostile strings passed as query
 * parameters come back verbatim and match nothing they should not; hostile
 * time strings, TXIDs and bookmarks are refused before any SQL runs; and
 * nothing the replica, time travel or the CLI does with them changes the
 * database or fails with a SQL syntax error (which would betray
 * interpolation).
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { PagecastError } from "../../src/errors.js";
import { decodeBookmark } from "../../src/router/write-position.js";
import { MemoryStore } from "../../src/storage/memory-store.js";
import { timeTravel } from "../../src/time-travel/index.js";
import { openReplica, type Replica } from "../../src/vfs/index.js";
import { primaryValues, readSqliteWasm, ScriptedWriter } from "../vfs/helpers.js";

const HOSTILE = [
  "'; DROP TABLE users; --",
  "' OR '1'='1",
  "1; DELETE FROM users",
  "\"; ATTACH DATABASE '/tmp/x.db' AS x; --",
  "') UNION SELECT sql FROM sqlite_schema --",
  "\u0000'; --",
  "%' OR 1=1 --",
  "?",
  ":name",
  "$1",
  "\\'; SELECT 1; --",
  "2025-01-01T00:00:00Z'; DROP TABLE users; --",
  "1 hour ago; DROP TABLE users",
  "txid:1; DROP TABLE users",
];

let writer: ScriptedWriter;
let replica: Replica;
const CHECK = "SELECT count(*), group_concat(name) FROM users";

beforeAll(async () => {
  const mem = new MemoryStore({ name: "user-values" });
  writer = new ScriptedWriter(mem);
  await writer.commit("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
  await writer.commit(() => {
    const ins = writer.db.prepare("INSERT INTO users (name) VALUES (?)");
    for (const name of ["ann", "bob", ...HOSTILE]) ins.run(name);
  });
  replica = await openReplica({ store: mem, wasm: readSqliteWasm });
});

afterAll(async () => {
  await replica?.close();
  writer?.close();
});

async function unchanged(): Promise<void> {
  const primary = writer.primaryAt(writer.txid);
  try {
    expect(await replica.values(CHECK)).toEqual(primaryValues(primary, CHECK));
  } finally {
    primary.close();
  }
}

describe("user values stay values", () => {
  test("hostile strings bound as parameters round-trip and match only themselves", async () => {
    for (const value of HOSTILE) {
      expect(await replica.values("SELECT ? AS v", [value]), value).toEqual([[value]]);
      expect(await replica.query("SELECT :v AS v", { v: value }), value).toEqual([{ v: value }]);
      const rows = await replica.values("SELECT name FROM users WHERE name = ?", [value]);
      expect(rows, value).toEqual([[value]]);
      expect(await replica.values("SELECT count(*) FROM users WHERE name LIKE ?", [value])).toEqual(
        [[expect.any(Number)]],
      );
    }
    await unchanged();
  });

  test("hostile pinned times never reach SQL", async () => {
    for (const at of HOSTILE) {
      const err = await openReplica({
        store: new MemoryStore({ name: "user-values" }),
        wasm: readSqliteWasm,
        at,
      }).then(
        async (r) => {
          await r.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      // Either refused as a time, or (for strings Date.parse happens to read) a pinned replica.
      if (err !== undefined) {
        expect(err, at).toBeInstanceOf(PagecastError);
        expect((err as PagecastError).code, at).toMatch(
          /^(REPLICA_INVALID_ARGUMENT|RESTORE_TARGET_UNAVAILABLE)$/,
        );
      }
    }
    await unchanged();
  });

  test("time travel refuses hostile `when` values with a typed error", async () => {
    for (const when of [...HOSTILE, { txid: "1; DROP TABLE users" } as never, { txid: -1 }]) {
      const err = await timeTravel(replica, when).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, String(when)).toBeInstanceOf(PagecastError);
      expect((err as PagecastError).code).toMatch(/^TIME_TRAVEL_/);
    }
    await unchanged();
  });

  test("bookmarks with SQL in them are refused without echoing it", () => {
    for (const text of HOSTILE) {
      let err: unknown;
      try {
        decodeBookmark(`pc1.${text}`);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: "ROUTER_BOOKMARK_INVALID" });
      expect((err as Error).message).not.toContain(text);
    }
  });

  test("CLI --at values are validated, never spliced into SQL", async () => {
    for (const value of HOSTILE) {
      let stderr = "";
      const code = await main(
        ["query", "memory://user-values", "SELECT count(*) FROM users", "--at", value],
        {
          stdout: () => {},
          stderr: (t) => {
            stderr += t;
          },
          isTTY: false,
          env: {},
          signal: new AbortController().signal,
        },
      );
      expect([0, 1, 2], value).toContain(code);
      expect(stderr, value).not.toMatch(/syntax error|SQLITE_ERROR/);
    }
    await unchanged();
  });
});
