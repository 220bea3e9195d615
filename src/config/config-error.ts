import { PagecastError } from "../errors.js";

/**
 * A configuration file that cannot be used: `CONFIG_NOT_FOUND` (no such
 * file), `CONFIG_INVALID` (YAML syntax, an unknown key, a bad value, a
 * setting pagecast refuses). Messages start with `file:line:`.
 */
export class ConfigError extends PagecastError {
  /** Warnings gathered before the error (an unset variable often explains it). */
  warnings: string[] = [];
}
