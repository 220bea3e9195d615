/**
 * The replicas written by the reference LTX implementation (see the README
 * in the fixture directory). CI keeps them at `../shared/fixtures/` next to
 * the repository; a worktree nested deeper finds them in an ancestor's
 * `shared/`. `PAGECAST_LITESTREAM_FIXTURES` overrides. Missing fixtures fail
 * the tests that need them (never a silent skip).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** The repository root (this file is at `test/interop/`). */
export const REPO_ROOT = resolve(import.meta.dirname, "../..");

const RELATIVE = join("shared", "fixtures", "litestream-reference");

/** Absolute path of the fixture directory; throws naming where it looked. */
export function fixturesDir(): string {
  const override = process.env.PAGECAST_LITESTREAM_FIXTURES;
  if (override) return resolve(override);
  const tried: string[] = [];
  for (let dir = dirname(REPO_ROOT); ; dir = dirname(dir)) {
    const candidate = join(dir, RELATIVE);
    tried.push(candidate);
    if (existsSync(join(candidate, "README.md"))) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error(`Litestream reference fixtures not found; looked in ${tried.join(", ")}`);
}

/** One fixture replica. */
export interface FixtureReplica {
  name: string;
  dir: string;
  /** `s3`: `%04x/` level directories; `file`: Litestream's `ltx/<level>/`. */
  layout: "s3" | "file";
  /** Every LTX file: level, TXIDs and path. */
  files: { level: number; minTXID: number; maxTXID: number; path: string }[];
}

const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

/** Every fixture replica (`A-...` to `E-...`), with its files read straight from the directory. */
export function fixtureReplicas(): FixtureReplica[] {
  const root = fixturesDir();
  const out: FixtureReplica[] = [];
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!/^[A-Z]-/.test(name) || !statSync(dir).isDirectory()) continue;
    const layout = existsSync(join(dir, "ltx")) ? "file" : "s3";
    const levelsDir = layout === "file" ? join(dir, "ltx") : dir;
    const files: FixtureReplica["files"] = [];
    for (const levelName of readdirSync(levelsDir)) {
      const level = layout === "file" ? Number(levelName) : Number.parseInt(levelName, 16);
      for (const file of readdirSync(join(levelsDir, levelName))) {
        const m = NAME_RE.exec(file);
        if (!m) continue;
        files.push({
          level,
          minTXID: Number.parseInt(m[1]!, 16),
          maxTXID: Number.parseInt(m[2]!, 16),
          path: join(levelsDir, levelName, file),
        });
      }
    }
    files.sort((a, b) => a.level - b.level || a.minTXID - b.minTXID);
    out.push({ name, dir, layout, files });
  }
  return out;
}

/** `states/s<txid>.db`: the whole database after transaction `txid`. */
export function fixtureState(txid: number): Uint8Array {
  return readFileSync(join(fixturesDir(), "states", `s${txid}.db`));
}

/** Path of `states/s<txid>.db`. */
export function fixtureStatePath(txid: number): string {
  return join(fixturesDir(), "states", `s${txid}.db`);
}
