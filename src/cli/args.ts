import { DURATION_EXAMPLES, parseGoDuration } from "../config/duration.js";
import { UsageError } from "./cli-io.js";
import type { FlagDef } from "./commands.js";

/** Declares the flags a command accepts: `string` flags take a value, `boolean` flags do not. */
export type FlagSpec = Record<string, "string" | "boolean">;

export interface ParsedArgs {
  positionals: string[];
  /** By canonical flag name (an alias such as `-o` is stored under its flag's name). */
  flags: Record<string, string | boolean | undefined>;
}

/** `--name`/`-name` (any alias) -> the flag definition. */
function flagTable(flags: readonly FlagDef[] | FlagSpec): Map<string, FlagDef> {
  const defs: readonly FlagDef[] = Array.isArray(flags)
    ? flags
    : Object.entries(flags as FlagSpec).map(([name, kind]) => ({ name, kind, help: "" }));
  const table = new Map<string, FlagDef>();
  for (const d of defs) {
    table.set(d.name, d);
    for (const a of d.aliases ?? []) table.set(a, d);
  }
  return table;
}

/**
 * Parses `--name value`, `--name=value`, boolean `--name`, and the same with
 * one dash (`-config`, `-o`: Litestream's Go-style flags). Unknown flags are
 * a usage error rather than silently ignored, so a typo never changes
 * behaviour. `-` and negative numbers are positionals; `--` ends the flags.
 */
export function parseArgs(argv: string[], spec: readonly FlagDef[] | FlagSpec): ParsedArgs {
  const table = flagTable(spec);
  const positionals: string[] = [];
  const flags: ParsedArgs["flags"] = {};
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    const dashes = arg.startsWith("--") ? 2 : 1;
    const eq = arg.indexOf("=");
    const name = arg.slice(dashes, eq === -1 ? undefined : eq);
    const def = table.get(name);
    const shown = `${dashes === 1 && name.length === 1 ? "-" : "--"}${name}`;
    if (def === undefined)
      throw new UsageError(`unknown option ${arg.slice(0, eq === -1 ? undefined : eq)}`);
    if (def.kind === "boolean") {
      if (eq !== -1) throw new UsageError(`option ${shown} takes no value`);
      flags[def.name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`option ${shown} needs a value`);
    if (flags[def.name] !== undefined) throw new UsageError(`option ${shown} is given twice`);
    flags[def.name] = value;
  }
  return { positionals, flags };
}

/** Reads a non-negative safe integer flag, or `fallback` when absent. */
export function integerFlag(
  flags: ParsedArgs["flags"],
  name: string,
  fallback: number,
  min = 0,
): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || !/^\d+$/.test(raw)) {
    throw new UsageError(`--${name} must be a whole number`);
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be >= ${min}`);
  return n;
}

/** Parses durations like `500ms`, `1s`, `1.5m`, `2h`, `1h30m` into milliseconds (> 0). */
export function parseDuration(text: string, name: string): number {
  const ms = parseGoDuration(text);
  if (ms === undefined)
    throw new UsageError(`--${name} must be a duration like ${DURATION_EXAMPLES}`);
  if (ms <= 0) throw new UsageError(`--${name} must be positive`);
  return ms;
}

/** Exactly `count` positionals, or a usage error naming what is missing. */
export function expectPositionals(args: ParsedArgs, names: string[], rest = false): string[] {
  const p = args.positionals;
  if (p.length < names.length) {
    throw new UsageError(`missing ${names.slice(p.length).join(", ")}`);
  }
  if (!rest && p.length > names.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(p[names.length])}`);
  }
  return p;
}
