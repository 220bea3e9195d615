/**
 * Every ```ts snippet of the README compiles (strict) against the BUILT
 * package, imported by its name as users import it (`pagecast`,
 * `pagecast/node`, `pagecast/reader`: the package's own exports and .d.ts files). A snippet
 * that continues an earlier one uses its names: the context below declares
 * them (`url`, `db`, `users`, ...), and pagecast names a snippet uses without
 * importing are imported for it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, test } from "vitest";

const root = new URL("../..", import.meta.url).pathname;
const built = existsSync(join(root, "dist/index.d.ts"));

const CONTEXT = `import type { IncomingMessage, ServerResponse } from "node:http";
import type { PrimaryConnection, R2BucketLike, Replica, RouterDatabase } from "pagecast";
import type { users as usersTable } from "./schema.js";
declare global {
  const url: string;
  const req: IncomingMessage;
  const res: ServerResponse;
  function handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  const replica: Replica;
  const replicas: Replica[];
  const primary: PrimaryConnection;
  const users: typeof usersTable;
  const db: RouterDatabase<{ users: typeof usersTable }>;
  const env: { REPLICA_URL: string; BUCKET: R2BucketLike };
  const bytes: Uint8Array;
  const chunks: AsyncIterable<Uint8Array>;
  const wasm: WebAssembly.Module;
  /** Cloudflare Workers' default cache (their types add it). */
  interface CacheStorage {
    readonly default: Cache;
  }
}
`;

/** Workers import .wasm files as modules (wrangler's types say so); an ambient file, no imports. */
const WASM = `declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
`;

const SCHEMA = `import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
export const users = sqliteTable("users", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
});
`;

describe.skipIf(!built)("README snippets", () => {
  test("every TypeScript snippet compiles against the built package", async () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(snippets.length).toBeGreaterThan(5);
    // By path at run time: a clean clone typechecks before dist/ exists.
    const entry = pathToFileURL(join(root, "dist/index.js")).href;
    const exported = new Set(Object.keys((await import(entry)) as object));
    const dir = join(root, ".tmp", `readme-snippets-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(join(dir, "context.d.ts"), CONTEXT);
      writeFileSync(join(dir, "wasm.d.ts"), WASM);
      writeFileSync(join(dir, "schema.ts"), SCHEMA);
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            lib: ["ES2023", "DOM"],
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            skipLibCheck: true,
            noEmit: true,
            types: ["node"],
          },
          include: ["*.ts"],
        }),
      );
      snippets.forEach((code, i) => {
        const imported = new Set(
          [...code.matchAll(/import\s*\{([^}]*)\}\s*from\s*"pagecast(?:\/reader)?"/g)].flatMap(
            (m) => m[1]!.split(",").map((n) => n.trim().replace(/^type\s+/, "")),
          ),
        );
        const declared = new Set(
          [...code.matchAll(/\b(?:const|let|function|class)\s+([A-Za-z_$][\w$]*)/g)].map(
            (m) => m[1]!,
          ),
        );
        const used = [...exported].filter(
          (n) => !imported.has(n) && !declared.has(n) && new RegExp(`\\b${n}\\b`).test(code),
        );
        const header = used.length > 0 ? `import { ${used.join(", ")} } from "pagecast";\n` : "";
        writeFileSync(join(dir, `snippet-${i + 1}.ts`), `${header}${code}\nexport {};\n`);
      });
      let output = "";
      try {
        execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", dir], {
          encoding: "utf8",
        });
      } catch (err) {
        output = (err as { stdout?: string }).stdout ?? String(err);
      }
      // Name each failing snippet by its first line, so the README line is easy to find.
      const failures = [
        ...new Set([...output.matchAll(/snippet-(\d+)\.ts/g)].map((m) => Number(m[1]))),
      ];
      const where = failures.map((n) => `snippet ${n}: ${snippets[n - 1]!.split("\n", 1)[0]}`);
      expect(output, where.join("\n")).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
