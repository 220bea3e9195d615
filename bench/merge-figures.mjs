/**
 * Merges the figures of a partial run (`node bench/run.mjs --only ...`) into
 * a full run's BENCHMARKS.json and rewrites BENCHMARKS.md, saying which
 * figures come from which run:
 *
 *   node bench/merge-figures.mjs <full BENCHMARKS.json> <partial BENCHMARKS.json> [out dir]
 */
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { writeReports } from "./lib/report.mjs";

const [fullPath, partialPath, outDir] = process.argv.slice(2);
if (!fullPath || !partialPath) {
  console.error(
    "usage: node bench/merge-figures.mjs <full BENCHMARKS.json> <partial BENCHMARKS.json> [out dir]",
  );
  process.exit(2);
}
const full = JSON.parse(readFileSync(fullPath, "utf8"));
const partial = JSON.parse(readFileSync(partialPath, "utf8"));
const ids = new Set(partial.figures.map((f) => f.id));
const figures = full.figures.filter((f) => !ids.has(f.id));
for (const f of partial.figures)
  figures.push({
    ...f,
    run: {
      startedAt: partial.startedAt,
      command: partial.command,
      versions: partial.versions,
      machine: partial.machine,
    },
  });
figures.sort((a, b) => Number(a.id) - Number(b.id));
const from = `from \`${partial.command}\` started ${partial.startedAt} (pagecast ${partial.versions.pagecast}, load average at start ${partial.machine.loadAverage.map((x) => x.toFixed(2)).join(" / ")})`;
const notes = (full.notes ?? []).filter((n) => !ids.has(/^Figure (\d+):/.exec(n)?.[1] ?? ""));
for (const id of ids)
  notes.push(`Figure ${id}: ${from}; the other figures from the full run above unless noted.`);
notes.sort((a, b) => Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0));
const merged = { ...full, figures, notes };
writeReports(outDir ?? dirname(fullPath), merged);
console.log(`merged figures ${[...ids].join(", ")} into ${outDir ?? dirname(fullPath)}`);
