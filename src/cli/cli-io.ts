import { PagecastError } from "../errors.js";

/** Where a CLI command writes; injectable so commands are testable without spawning processes. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is a terminal (colors, progress bars). */
  isTTY: boolean;
  /** True when stderr is a terminal (progress redrawn in place); default: `isTTY`. */
  stderrIsTTY?: boolean;
  /** Environment variables (credentials come from here, never from arguments). */
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM so long-running commands can stop cleanly. */
  signal: AbortSignal;
}

/** A CLI command: parses its own arguments, returns the process exit code. */
export type CliCommand = (argv: string[], io: CliIo) => Promise<number>;

/** Bad command-line usage: printed with the command's usage text, exit code 2. */
export class UsageError extends PagecastError {
  constructor(message: string) {
    super("CLI_USAGE", message);
  }
}

/**
 * Whether to color output: on a terminal, unless `NO_COLOR` is set to
 * anything but the empty string (https://no-color.org).
 */
export function useColor(io: CliIo): boolean {
  const noColor = io.env.NO_COLOR;
  return io.isTTY && (noColor === undefined || noColor === "");
}

const NOT_A_DATABASE = new Set(["SQLITE_HEADER_INVALID", "SQLITE_NOTADB"]);

/**
 * Runs `body` on the file at `path`; a failure about the file's content
 * names it: `not a database: ./x.bin`, `./x.ltx: LTX header needs 100
 * bytes, got 8`. File-system errors name their path already.
 */
export async function onFile<T>(path: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === "string" && NOT_A_DATABASE.has(code)) {
      throw new PagecastError(code, `not a database: ${path}`, { cause: err });
    }
    if (err instanceof PagecastError && !err.message.includes(path)) {
      throw new PagecastError(err.code, `${path}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
