/**
 * The databases of a `dir` + `pattern` entry: files whose base name matches
 * the pattern (in subdirectories too with `recursive`) and that start with
 * SQLite's header, as Litestream finds them. A file that does not have the
 * header yet (just created, still empty) is found by a later scan.
 */
import { type Dirent, promises as fs } from "node:fs";
import { join } from "node:path";
import { globMatcher } from "./glob.js";

const SQLITE_MAGIC = "SQLite format 3\u0000";

/** Whether `path` starts with SQLite's 16-byte header string. */
export async function isSqliteDatabase(path: string): Promise<boolean> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(path, "r");
    const buf = Buffer.alloc(16);
    const { bytesRead } = await handle.read(buf, 0, 16, 0);
    return bytesRead === 16 && buf.toString("latin1") === SQLITE_MAGIC;
  } catch {
    return false;
  } finally {
    await handle?.close();
  }
}

/**
 * Absolute paths of the databases under `dir` matching `pattern`, sorted.
 * Paths `known` says are known already are left out without being opened
 * (a watch rescans thousands of tenants every second).
 */
export async function findDatabases(
  dir: string,
  pattern: string,
  recursive: boolean,
  known: (path: string) => boolean = () => false,
): Promise<string[]> {
  const match = globMatcher(pattern);
  const found: string[] = [];
  const walk = async (at: string) => {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(at, { withFileTypes: true });
    } catch (err) {
      // The top directory must exist; a subdirectory may vanish mid-scan.
      if (at === dir) throw err;
      return;
    }
    for (const e of entries) {
      const path = join(at, e.name);
      if (e.isDirectory()) {
        if (recursive) await walk(path);
      } else if ((e.isFile() || e.isSymbolicLink()) && match(e.name) && !known(path)) {
        if (await isSqliteDatabase(path)) found.push(path);
      }
    }
  };
  await walk(dir);
  return found.sort();
}
