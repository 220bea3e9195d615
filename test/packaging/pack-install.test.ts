/**
 * Packaging as consumers meet it: the packed tarball installed into empty
 * projects. A reader-only project gets no native build (better-sqlite3 and
 * drizzle-orm are optional peers), reads a replica in its own process and
 * typechecks without @types/better-sqlite3; an app project with drizzle-orm
 * 0.45 compiles the README's TypeScript snippets.
 */
import { execFile, execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { S3Store } from "../../src/index.js";
import { Replicator } from "../../src/node.js";

const ROOT = join(import.meta.dirname, "../..");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const s3 = inject("s3");
const devVersion = (name: string): string =>
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies[name];

let dir: string;
let tarball: string;

/** Runs a command without blocking the test worker; resolves with its exit and output. */
function run(
  file: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number },
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { encoding: "utf8", timeout: 240_000, maxBuffer: 64 << 20, ...options },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ status: error ? (typeof code === "number" ? code : 1) : 0, stdout, stderr });
      },
    );
  });
}

async function npm(cwd: string, args: string[]): Promise<string> {
  const r = await run("npm", args, {
    cwd,
    env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false", CI: "true" },
  });
  if (r.status !== 0) throw new Error(`npm ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`;
}

function project(name: string, dependencies: Record<string, string>): string {
  const cwd = join(dir, name);
  mkdirSync(cwd);
  writeFileSync(
    join(cwd, "package.json"),
    JSON.stringify({ name, private: true, type: "module", dependencies }),
  );
  writeFileSync(
    join(cwd, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
    }),
  );
  return cwd;
}

async function tsc(cwd: string): Promise<{ ok: boolean; output: string }> {
  const r = await run(process.execPath, [TSC, "-p", "."], { cwd });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Every directory under node_modules (names only), to look for native builds. */
function walk(root: string, out: string[] = []): string[] {
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = join(root, e.name);
    out.push(p);
    walk(p, out);
  }
  return out;
}

beforeAll(() => {
  if (!existsSync(join(ROOT, "dist/index.js"))) throw new Error("run `npm run build` first");
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  dir = mkdtempSync(join(ROOT, ".tmp", "pack-"));
  const out = execFileSync("npm", ["pack", "--pack-destination", dir, "--json"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  tarball = join(dir, JSON.parse(out)[0].filename);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("reader-only install: no native build, no drizzle-orm, reads a replica in its own process (pagecast and pagecast/reader), types without @types/better-sqlite3", async () => {
  const cwd = project("reader", { pagecast: `file:${tarball}` });
  const log = await npm(cwd, [
    "install",
    "--omit=optional",
    "--prefer-offline",
    "--foreground-scripts",
  ]);
  expect(log).not.toMatch(/node-gyp|prebuild-install/);
  for (const name of ["better-sqlite3", "drizzle-orm", "@types/better-sqlite3"]) {
    expect(existsSync(join(cwd, "node_modules", name)), name).toBe(false);
  }
  const native = walk(join(cwd, "node_modules")).filter((p) => /[/\\]build[/\\]Release$/.test(p));
  expect(native).toEqual([]);

  // A replica published by the writer (this repo's), read by the installed package.
  const prefix = `pack-${Date.now().toString(36)}`;
  const file = join(dir, "app.db");
  const app = new Database(file);
  app.pragma("journal_mode = WAL");
  app.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)");
  app.prepare("INSERT INTO t VALUES (?, ?)").run(1, "ada");
  const store = new S3Store({
    bucket: s3.bucket,
    prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const replicator = await Replicator.start({
    db: file,
    store,
    syncInterval: 0,
    compaction: false,
  });
  await replicator.sync();
  await replicator.close();
  app.close();
  await store.close();

  writeFileSync(
    join(cwd, "reader.ts"),
    `import { openReplica, type Replica, type Row } from "pagecast";
const url = process.argv[2] ?? "";
const replica: Replica = await openReplica(url, { pollIntervalMs: 0 });
const rows: Row[] = await replica.query("SELECT id, name FROM t");
console.log(JSON.stringify(rows));
await replica.close();
`,
  );
  // pagecast/reader over a store pagecast opened (in Node they share modules and the wasm).
  writeFileSync(
    join(cwd, "reader-entry.ts"),
    `import { openStore } from "pagecast";
import { openReplica, type Replica, type SqlValue } from "pagecast/reader";
const store = await openStore(process.argv[2] ?? "");
const replica: Replica = await openReplica({ store, closeStore: true, pollIntervalMs: 0 });
const rows: SqlValue[][] = await replica.values("SELECT id, name FROM t");
console.log(JSON.stringify(rows));
await replica.close();
`,
  );
  writeFileSync(join(cwd, "node.d.ts"), "declare const process: { argv: string[] };\n");
  const checked = await tsc(cwd);
  expect(checked.output).toBe("");
  expect(checked.ok).toBe(true);
  // Run the same program (types stripped by hand: one line differs).
  writeFileSync(
    join(cwd, "reader.mjs"),
    readFileSync(join(cwd, "reader.ts"), "utf8")
      .replace(", type Replica, type Row", "")
      .replace(/: (Replica|Row\[\])/g, ""),
  );
  const url = `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(s3.endpoint)}&region=${s3.region}`;
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
  const r = await run(process.execPath, ["reader.mjs", url], { cwd, timeout: 60_000, env });
  expect(r.stderr).toBe("");
  expect(JSON.parse(r.stdout.trim())).toEqual([{ id: 1, name: "ada" }]);
  writeFileSync(
    join(cwd, "reader-entry.mjs"),
    readFileSync(join(cwd, "reader-entry.ts"), "utf8")
      .replace(", type Replica, type SqlValue", "")
      .replace(/: (Replica|SqlValue\[\]\[\])/g, ""),
  );
  const viaReader = await run(process.execPath, ["reader-entry.mjs", url], {
    cwd,
    timeout: 60_000,
    env,
  });
  expect(viaReader.stderr).toBe("");
  expect(JSON.parse(viaReader.stdout.trim())).toEqual([[1, "ada"]]);
}, 240_000);

/** Free names the README's snippets use without declaring them, and what they are. */
const SNIPPET_CONTEXT: Record<string, string> = {
  url: "declare const url: string;",
  env: 'declare const env: { REPLICA_URL: string; BUCKET: import("pagecast").R2BucketLike };',
  wasm: "declare const wasm: WebAssembly.Module;",
  caches: 'declare const caches: { default: import("pagecast").CacheApiLike };',
  users: 'import { users } from "./schema.js";',
  db: 'declare const db: import("pagecast").RouterDatabase<{ users: typeof import("./schema.js").users }>;',
  replica: 'declare const replica: import("pagecast").Replica;',
  primary: 'declare const primary: import("pagecast").PrimaryConnection;',
  replicas: 'declare const replicas: import("pagecast").Replica[];',
  req: 'declare const req: import("node:http").IncomingMessage;',
  res: 'declare const res: import("node:http").ServerResponse;',
  handle: "declare function handle(req: unknown, res: unknown): Promise<void>;",
  openReplica: 'import { openReplica } from "pagecast";',
  openStore: 'import { openStore } from "pagecast";',
  timeTravel: 'import { timeTravel } from "pagecast";',
  createRouter: 'import { createRouter } from "pagecast";',
  bytes: "declare const bytes: Uint8Array;",
  chunks: "declare const chunks: AsyncIterable<Uint8Array>;",
};

function readmeSnippets(): string[] {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
}

function withContext(code: string): string {
  const declared = new Set<string>();
  for (const m of code.matchAll(/\b(?:const|let|using|function)\s+(\{[^}]*\}|\w+)/g)) {
    for (const n of (m[1] ?? "").replace(/[{}]/g, "").split(",")) declared.add(n.trim());
  }
  for (const m of code.matchAll(/import\s+(?:(\w+)|\{([^}]*)\})\s+from/g)) {
    for (const n of (m[1] ?? m[2] ?? "").split(","))
      declared.add(n.replace(/^\s*type\s+/, "").trim());
  }
  const prelude = Object.entries(SNIPPET_CONTEXT)
    .filter(([name]) => !declared.has(name) && new RegExp(`\\b${name}\\b`).test(code))
    .map(([, decl]) => decl);
  return `${prelude.join("\n")}\n${code}\nexport {};\n`;
}

test("README snippets typecheck against the packed package with drizzle-orm 0.45", async () => {
  const drizzle = devVersion("drizzle-orm");
  expect(drizzle).toMatch(/^0\.45\./);
  const cwd = project("app", {
    pagecast: `file:${tarball}`,
    "drizzle-orm": drizzle,
    "better-sqlite3": devVersion("better-sqlite3"),
    "@types/better-sqlite3": devVersion("@types/better-sqlite3"),
    "@types/node": devVersion("@types/node"),
    "@journeyapps/wa-sqlite": devVersion("@journeyapps/wa-sqlite") ?? "2.0.6",
  });
  // Types only: no native build needed to typecheck.
  await npm(cwd, ["install", "--ignore-scripts", "--prefer-offline"]);
  const tsconfig = JSON.parse(readFileSync(join(cwd, "tsconfig.json"), "utf8"));
  tsconfig.compilerOptions.types = ["node"];
  writeFileSync(join(cwd, "tsconfig.json"), JSON.stringify(tsconfig));
  writeFileSync(
    join(cwd, "schema.ts"),
    `import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
export const users = sqliteTable("users", { id: integer("id").primaryKey(), name: text("name").notNull() });
`,
  );
  writeFileSync(
    join(cwd, "wasm.d.ts"),
    'declare module "*.wasm" { const m: WebAssembly.Module; export default m; }\n',
  );
  const snippets = readmeSnippets();
  expect(snippets.length).toBeGreaterThan(5);
  snippets.forEach((code, i) => {
    writeFileSync(join(cwd, `snippet-${i + 1}.ts`), withContext(code));
  });
  const checked = await tsc(cwd);
  expect(checked.output).toBe("");
}, 240_000);
