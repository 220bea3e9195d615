/**
 * The replicator's pluggable logger. Fields are plain values; the replicator
 * never logs credentials (store URLs are logged through `ObjectStore.url`,
 * which backends keep free of secrets).
 */
export interface ReplicatorLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Discards everything (the default: a library stays quiet unless asked). */
export const silentLogger: ReplicatorLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Logs one line per event to `write` (e.g. stderr), at `info` and above unless `debug` is set. */
export function lineLogger(
  write: (line: string) => void,
  options: { debug?: boolean } = {},
): ReplicatorLogger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields
      ? Object.entries(fields)
          .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
          .join(" ")
      : "";
    write(`${new Date().toISOString()} ${level} ${message}${extra ? ` ${extra}` : ""}\n`);
  };
  return {
    debug: (m, f) => {
      if (options.debug) emit("DEBUG", m, f);
    },
    info: (m, f) => emit("INFO", m, f),
    warn: (m, f) => emit("WARN", m, f),
    error: (m, f) => emit("ERROR", m, f),
  };
}
