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
