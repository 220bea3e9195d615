/**
 * File-name patterns with Go's `filepath.Match` rules (what Litestream's
 * `pattern:` uses): `*` any run of characters, `?` one character, `[abc]`,
 * `[a-z]`, `[^a-z]` classes, `\` escapes. Matched against a base name.
 */

/** A matcher for `pattern`; throws a plain Error naming the problem when the pattern is malformed. */
export function globMatcher(pattern: string): (name: string) => boolean {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") {
      source += "[^/]*";
    } else if (c === "?") {
      source += "[^/]";
    } else if (c === "\\") {
      i++;
      if (i >= pattern.length) throw new Error("pattern ends with a lone backslash");
      source += escapeChar(pattern[i]!);
    } else if (c === "[") {
      const end = classEnd(pattern, i);
      let body = pattern.slice(i + 1, end);
      let negate = false;
      if (body.startsWith("^")) {
        negate = true;
        body = body.slice(1);
      }
      if (body === "") throw new Error("pattern has an empty character class");
      let cls = "";
      for (let j = 0; j < body.length; j++) {
        let ch = body[j]!;
        if (ch === "\\") ch = body[++j] ?? "";
        cls += ch === "]" || ch === "\\" || ch === "^" ? `\\${ch}` : ch === "-" ? "-" : ch;
      }
      source += `[${negate ? "^" : ""}${cls}]`;
      i = end;
    } else {
      source += escapeChar(c);
    }
  }
  const re = new RegExp(`^${source}$`, "u");
  return (name) => re.test(name);
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}

function classEnd(pattern: string, start: number): number {
  for (let j = start + 1; j < pattern.length; j++) {
    if (pattern[j] === "\\") j++;
    else if (pattern[j] === "]" && j > start + 1) return j;
  }
  throw new Error("pattern has an unclosed [");
}
