import { UsageError } from "./cli-io.js";

/** Declares the flags a command accepts: `string` flags take a value, `boolean` flags do not. */
export type FlagSpec = Record<string, "string" | "boolean">;

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean | undefined>;
}

/**
 * Parses `--name value`, `--name=value` and boolean `--name`. Unknown flags are
 * a usage error rather than silently ignored, so a typo never changes behaviour.
 */
export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  const positionals: string[] = [];
  const flags: ParsedArgs["flags"] = {};
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith("--") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = spec[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name}`);
    if (kind === "boolean") {
      if (eq !== -1) throw new UsageError(`option --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`option --${name} needs a value`);
    flags[name] = value;
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

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses durations like `500ms`, `1s`, `1.5m`, `2h` into milliseconds. */
export function parseDuration(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new UsageError(`--${name} must be a duration like 500ms, 1s, 5m or 1h`);
  const value = Number(m[1]) * DURATION_UNITS[m[2]!]!;
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be positive`);
  return Math.round(value);
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
