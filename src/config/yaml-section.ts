/**
 * Typed, line-aware reading of one YAML mapping of a config file. Every key
 * a reader asks for (or declares ignored or refused) is known; whatever is
 * left when the reader is done is an unknown key, reported with its line
 * and the closest known key, so a typo never silently changes behaviour.
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
} from "yaml";
import { ConfigError } from "./config-error.js";
import { DURATION_EXAMPLES, parseGoDuration } from "./duration.js";

/** What every section of one file shares. */
export interface ConfigContext {
  /** The file as the user named it (messages). */
  file: string;
  lines: LineCounter;
  doc: Document;
  env: Record<string, string | undefined>;
  /** Expand `$VAR` and `${VAR}` in values (Litestream's default; `-no-expand-env` turns it off). */
  expandEnv: boolean;
  /** Warnings, each `file:line: text`. */
  warnings: string[];
}

interface Entry {
  key: string;
  value: Node | null;
  line: number;
}

const VARIABLE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** The 1-based line of a node (0 when unknown). */
export function lineOf(ctx: ConfigContext, node: Node | null | undefined): number {
  const offset = node?.range?.[0];
  return offset === undefined ? 0 : ctx.lines.linePos(offset).line;
}

function resolve(ctx: ConfigContext, node: unknown): Node | null {
  let n = node as Node | null;
  // An alias (`*name`) stands for its anchored node.
  for (let hops = 0; n && isAlias(n) && hops < 32; hops++) {
    n = (n.resolve(ctx.doc) as Node | undefined) ?? null;
  }
  return n;
}

function kindOf(node: Node | null): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  return "a value";
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** One mapping of the file, read key by key. */
export class Section {
  readonly ctx: ConfigContext;
  /** Where it is, for messages: `dbs[0].replica`, or "" for the top level. */
  readonly path: string;
  readonly line: number;
  readonly #entries = new Map<string, Entry>();
  readonly #known = new Set<string>();

  constructor(ctx: ConfigContext, node: Node | null, path: string, line = lineOf(ctx, node)) {
    this.ctx = ctx;
    this.path = path;
    this.line = line;
    const map = resolve(ctx, node);
    if (map === null) return;
    if (!isMap(map)) {
      throw this.error(line, `${path || "the file"} must be a mapping of keys, got ${kindOf(map)}`);
    }
    this.#collect(map.items as Pair[], false);
  }

  #collect(items: Pair[], merged: boolean): void {
    for (const pair of items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      const line = lineOf(this.ctx, keyNode);
      if (key === undefined) throw this.error(line, `${this.where()}keys must be plain words`);
      if (key === "<<") {
        // A YAML merge key: the merged mapping's keys, unless given here.
        const source = resolve(this.ctx, pair.value);
        const sources = isSeq(source) ? source.items.map((i) => resolve(this.ctx, i)) : [source];
        for (const s of sources) {
          if (!isMap(s)) throw this.error(line, `${this.where()}"<<" must merge a mapping`);
          this.#collect(s.items as Pair[], true);
        }
        continue;
      }
      if (merged && this.#entries.has(key)) continue;
      this.#entries.set(key, { key, value: resolve(this.ctx, pair.value), line });
    }
  }

  /** `dbs[0].replica: ` (or "" at the top level), to start messages. */
  where(key?: string): string {
    const full = [this.path, key].filter(Boolean).join(".");
    return full ? `${full}: ` : "";
  }

  error(line: number, message: string): ConfigError {
    return new ConfigError("CONFIG_INVALID", `${this.ctx.file}:${line || this.line}: ${message}`);
  }

  /** An error about `key`'s value, at its line. */
  fail(key: string, message: string): never {
    const line = this.#entries.get(key)?.line ?? this.line;
    throw this.error(line, `${this.where(key)}${message}`);
  }

  warn(line: number, message: string): void {
    this.ctx.warnings.push(`${this.ctx.file}:${line || this.line}: ${message}`);
  }

  /** Whether `key` is present with a value (an empty `key:` counts as absent). */
  has(key: string): boolean {
    this.#known.add(key);
    const e = this.#entries.get(key);
    return e !== undefined && e.value !== null && !(isScalar(e.value) && e.value.value === null);
  }

  /** The line of `key` (of the section when absent). */
  lineOf(key: string): number {
    return this.#entries.get(key)?.line ?? this.line;
  }

  /** The raw node of `key`. */
  node(key: string): Node | null | undefined {
    this.#known.add(key);
    return this.#entries.get(key)?.value;
  }

  /** A scalar as text, environment variables expanded; undefined when absent. */
  text(key: string): string | undefined {
    if (!this.has(key)) return undefined;
    const e = this.#entries.get(key)!;
    if (!isScalar(e.value)) this.fail(key, `expected a value, got ${kindOf(e.value)}`);
    const raw = e.value.value;
    if (typeof raw !== "string") return String(raw);
    return this.#expand(raw, e.line);
  }

  #expand(raw: string, line: number): string {
    if (!this.ctx.expandEnv) return raw;
    return raw.replace(VARIABLE, (_, braced: string | undefined, bare: string | undefined) => {
      const name = (braced ?? bare)!;
      const value = this.ctx.env[name];
      if (value === undefined) {
        this.warn(line, `$${name} is not set: it expands to an empty string`);
        return "";
      }
      return value;
    });
  }

  string(key: string): string | undefined {
    const t = this.text(key);
    return t === undefined || t === "" ? undefined : t;
  }

  bool(key: string): boolean | undefined {
    const t = this.text(key);
    if (t === undefined || t === "") return undefined;
    if (/^(true|yes|on)$/i.test(t)) return true;
    if (/^(false|no|off)$/i.test(t)) return false;
    this.fail(key, `expected true or false, got ${JSON.stringify(t)}`);
  }

  int(key: string, min = 0): number | undefined {
    const t = this.text(key);
    if (t === undefined || t === "") return undefined;
    const n = /^\d+$/.test(t) ? Number(t) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min) {
      this.fail(key, `expected a whole number >= ${min}, got ${JSON.stringify(t)}`);
    }
    return n;
  }

  /** A Go-style duration in ms (`1s`, `500ms`, `1h30m`); `positive` refuses 0. */
  duration(key: string, positive = true): number | undefined {
    const t = this.text(key);
    if (t === undefined || t === "") return undefined;
    const ms = parseGoDuration(t);
    if (ms === undefined || (positive && ms === 0)) {
      this.fail(
        key,
        `expected a ${positive ? "positive " : ""}duration like ${DURATION_EXAMPLES}, got ${JSON.stringify(t)}`,
      );
    }
    return ms;
  }

  /** A nested mapping (undefined when absent). */
  section(key: string): Section | undefined {
    if (!this.has(key)) return undefined;
    const e = this.#entries.get(key)!;
    return new Section(this.ctx, e.value, [this.path, key].filter(Boolean).join("."), e.line);
  }

  /** A list of mappings (empty when absent). */
  sections(key: string): Section[] {
    if (!this.has(key)) return [];
    const e = this.#entries.get(key)!;
    if (!isSeq(e.value)) this.fail(key, `expected a list, got ${kindOf(e.value)}`);
    const base = [this.path, key].filter(Boolean).join(".");
    return e.value.items.map(
      (item, i) =>
        new Section(
          this.ctx,
          item as Node,
          `${base}[${i}]`,
          lineOf(this.ctx, item as Node) || e.line,
        ),
    );
  }

  /**
   * Litestream keys pagecast does not act on: each one present gets a
   * warning with the reason (never silence), and counts as known.
   */
  ignore(keys: Record<string, string>): void {
    for (const [key, reason] of Object.entries(keys)) {
      if (this.has(key)) this.warn(this.lineOf(key), `${this.where(key)}ignored: ${reason}`);
    }
  }

  /** Litestream keys pagecast cannot honour safely: present, they fail with the reason. */
  refuse(keys: Record<string, string>): void {
    for (const [key, reason] of Object.entries(keys)) {
      if (this.has(key)) this.fail(key, `not supported by pagecast: ${reason}`);
    }
  }

  /** Fails on the first key nobody asked for (an unknown key), naming the closest known one. */
  finish(): void {
    for (const e of this.#entries.values()) {
      if (this.#known.has(e.key)) continue;
      let best: string | undefined;
      let bestDistance = Number.POSITIVE_INFINITY;
      for (const k of this.#known) {
        const d = distance(e.key, k);
        if (d < bestDistance) {
          bestDistance = d;
          best = k;
        }
      }
      const hint =
        best !== undefined && bestDistance <= Math.max(2, Math.floor(e.key.length / 3))
          ? ` (did you mean "${best}"?)`
          : "";
      throw this.error(
        e.line,
        `unknown key "${e.key}"${this.path ? ` in ${this.path}` : " at the top level"}${hint}`,
      );
    }
  }
}
