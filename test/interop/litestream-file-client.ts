/**
 * What Litestream's file replica client sees of a directory, reduced to its
 * rules (superfly/litestream `file/replica_client.go`): for each level 0..9 it
 * reads `<dir>/ltx/<level in decimal>/`, takes the entries whose names parse
 * as `%016x-%016x.ltx`, and uses their mtime as the file's creation time.
 * Nothing else in the directory is looked at. Plus a restore the way
 * Litestream plans one: the newest level-9 snapshot at or before the target
 * (else a file starting at TXID 1), extended by the file reaching furthest.
 * Independent of pagecast's store and planner on purpose.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { decodeLtx } from "../../src/format/index.js";

export interface LitestreamFile {
  level: number;
  minTXID: number;
  maxTXID: number;
  path: string;
  size: number;
  createdAt: number;
}

const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

/** Every LTX file Litestream's file client lists, level by level (0..9). */
export function litestreamFiles(dir: string): LitestreamFile[] {
  const out: LitestreamFile[] = [];
  for (let level = 0; level <= 9; level++) {
    const levelDir = join(dir, "ltx", String(level));
    let names: string[];
    try {
      names = readdirSync(levelDir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = NAME.exec(name);
      if (!m) continue;
      const info = statSync(join(levelDir, name));
      out.push({
        level,
        minTXID: Number.parseInt(m[1]!, 16),
        maxTXID: Number.parseInt(m[2]!, 16),
        path: join(levelDir, name),
        size: info.size,
        createdAt: info.mtimeMs,
      });
    }
  }
  return out.sort((a, b) => a.level - b.level || a.minTXID - b.minTXID);
}

/** The files Litestream would apply for the latest state (or `txid`), in order. */
export function litestreamPlan(files: LitestreamFile[], txid?: number): LitestreamFile[] {
  const limit = txid ?? Number.POSITIVE_INFINITY;
  const snapshots = files.filter((f) => f.level === 9 && f.maxTXID <= limit);
  const plan: LitestreamFile[] = [];
  let current = 0;
  const snapshot = snapshots.sort((a, b) => b.maxTXID - a.maxTXID)[0];
  if (snapshot) {
    plan.push(snapshot);
    current = snapshot.maxTXID;
  }
  for (;;) {
    const next = files
      .filter(
        (f) => f.level < 9 && f.minTXID <= current + 1 && f.maxTXID > current && f.maxTXID <= limit,
      )
      .sort((a, b) => b.maxTXID - a.maxTXID)[0];
    if (!next) break;
    plan.push(next);
    current = next.maxTXID;
  }
  const newest = Math.max(0, ...files.filter((f) => f.maxTXID <= limit).map((f) => f.maxTXID));
  if (current !== (txid ?? newest)) {
    throw new Error(`Litestream finds no chain to TXID ${txid ?? newest}: it stops at ${current}`);
  }
  return plan;
}

/** Applies `plan` to an empty database image: each file's pages, then its commit size. */
export function applyPlan(plan: LitestreamFile[]): Uint8Array {
  let image = new Uint8Array(0);
  for (const f of plan) {
    const { header, pages } = decodeLtx(readFileSync(f.path));
    const size = header.commit * header.pageSize;
    if (image.length !== size) {
      const resized = new Uint8Array(size);
      resized.set(image.subarray(0, Math.min(size, image.length)));
      image = resized;
    }
    for (const p of pages) image.set(p.data, (p.pgno - 1) * header.pageSize);
  }
  return image;
}
