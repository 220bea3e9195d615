/**
 * `--help` texts, rendered from the command specs (src/cli/commands.ts):
 * what a command does, each flag with its default and unit, the URL forms
 * and where credentials come from.
 */
import { COMMAND_SPECS, type CommandSpec, type FlagDef } from "./commands.js";

const WIDTH = 80;

/** Wraps `text` to `WIDTH`, every line starting with `indent`. */
function wrap(text: string, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(indent + line);
  return lines.join("\n");
}

function flagNames(f: FlagDef): string {
  const names = [...(f.aliases ?? []).filter((a) => a.length === 1), f.name];
  const long = (f.aliases ?? []).filter((a) => a.length > 1);
  const shown = names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(", ");
  const value = f.value ? ` ${f.value}` : "";
  const also = long.length ? ` (also ${long.map((a) => `--${a}`).join(", ")})` : "";
  return `${shown}${value}${also}`;
}

const SECTIONS: Record<NonNullable<CommandSpec["sections"]>[number], string> = {
  urls: [
    "Replica URLs:",
    "  s3://BUCKET/PREFIX[?endpoint=URL&region=NAME&forcePathStyle=true|false]",
    wrap(
      "S3 or any S3-compatible server (MinIO, R2, Ceph RGW...: give endpoint=, e.g. endpoint=http://127.0.0.1:9000). Path-style addressing is the default when an endpoint is given; forcePathStyle=false turns it off. Region: region=, else AWS_REGION or AWS_DEFAULT_REGION, else us-east-1.",
      "      ",
    ),
    "  file:///ABSOLUTE/DIR",
    wrap("a directory, in Litestream's file layout (ltx/<level>/<min>-<max>.ltx).", "      "),
  ].join("\n"),
  credentials: [
    "Credentials (S3), never in the URL; the first that is set wins:",
    "  1. access-key-id and secret-access-key in the config file (-config)",
    "  2. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)",
    "  3. LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY",
    wrap(
      "4. the rest of the AWS SDK's chain: AWS_PROFILE and ~/.aws/credentials, SSO, web identity, container and EC2 instance roles",
      "  ",
    ),
  ].join("\n"),
  times: [
    "Times (TIME):",
    wrap(
      'an ISO 8601 time with a zone (2025-01-31T12:00:00Z, 2025-01-31T13:00:00+01:00), "N seconds|minutes|hours|days|weeks ago" ("2 hours ago", "an hour ago"), or epoch milliseconds. A time without a zone is refused: the local zone is never assumed.',
      "  ",
    ),
  ].join("\n"),
  config: [
    "Config file (-config), Litestream's format:",
    '  addr: ":9090"                      # metrics (Prometheus) and /healthz',
    "  dbs:",
    "    - path: /data/app.db",
    "      replica:",
    "        url: s3://my-bucket/app       # or type: s3 + bucket/path/endpoint/region",
    "    - dir: /data/tenants              # every database matching pattern",
    '      pattern: "*.db"',
    "      watch: true                     # pick up databases created later",
    "      replica:",
    "        url: file:///backups/tenants  # each under its relative path",
    wrap(
      "$VAR and $" +
        "{VAR} are expanded from the environment. An unknown key is an error naming its line; a Litestream key pagecast does not act on is a warning. The README lists every key.",
      "  ",
    ),
    "Durations: 500ms, 1s, 5m, 1h, 1h30m.",
  ].join("\n"),
};

/** `pagecast <command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const out: string[] = [`pagecast ${spec.name}: ${spec.summary}`, "", "Usage:"];
  for (const u of spec.usage) out.push(`  pagecast ${u}`);
  for (const p of spec.description) out.push("", wrap(p, ""));
  if (spec.flags.length > 0) {
    out.push("", "Options:");
    for (const f of spec.flags) {
      out.push(`  ${flagNames(f)}`);
      out.push(wrap(`${f.help}${f.default ? ` (default ${f.default})` : ""}`, "        "));
    }
    out.push("  -h, --help", "        this help");
  }
  for (const s of spec.sections ?? []) out.push("", SECTIONS[s]);
  if (spec.examples?.length) {
    out.push("", "Examples:");
    for (const e of spec.examples) out.push(`  ${e}`);
  }
  return `${out.join("\n")}\n`;
}

/** `pagecast --help`, or `pagecast ltx --help` (`group`). */
export function overviewHelp(version: string, group?: string): string {
  const specs = COMMAND_SPECS.filter((c) => !group || c.name.startsWith(`${group} `));
  const width = Math.max(...specs.map((c) => c.name.length));
  const out = group
    ? [`pagecast ${group}: tools for LTX files and replicas`, "", "Usage:"]
    : [
        `pagecast ${version}: SQLite replicas readable page by page straight out of S3`,
        "(Litestream 0.5 compatible)",
        "",
        "Usage:",
      ];
  out.push(
    `  pagecast ${group ? `${group} ` : ""}<command> [options] [arguments]`,
    "",
    "Commands:",
  );
  for (const c of specs) out.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
  out.push(
    "",
    `Run \`pagecast ${group ? `${group} ` : ""}<command> --help\` for a command's options.`,
  );
  if (!group) {
    out.push("", "  -h, --help     this help", "  --version      print the version");
    out.push("", SECTIONS.urls, "", SECTIONS.credentials);
  }
  return `${out.join("\n")}\n`;
}

/** The short usage printed with a usage error. */
export function usageLines(spec: CommandSpec): string {
  return `${spec.usage.map((u, i) => `${i === 0 ? "Usage: " : "       "}pagecast ${u}`).join("\n")}\nRun \`pagecast ${spec.name} --help\` for its options.\n`;
}
