/**
 * What exists only on the primary's connection: temp tables and views (which
 * also shadow main tables of the same name), attached databases, the temp
 * schema and connection state such as `last_insert_rowid()`. Reads naming
 * any of it must run on the primary; a replica would fail ("no such table")
 * or, worse, answer from a main table the temp one shadows.
 *
 * Names are learned from the primary after each statement routed there that
 * may change them (DDL, ATTACH/DETACH, scripts, a rollback after DDL).
 * Objects created on the primary's handle behind the router's back are
 * caught when a replica reports them missing (see `classifyReplicaFailure`).
 */
import type { SqlConnection } from "./connection.js";
import type { StatementClass } from "./statement-classifier.js";

const TEMP_OBJECTS = "SELECT name FROM sqlite_temp_master WHERE type IN ('table', 'view')";
const ATTACHED = "SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')";

/** The primary connection's own objects, as last seen. */
export class PrimaryState {
  /** Temp tables and views, lower-cased. */
  #tempNames: ReadonlySet<string> = new Set();
  /** Schemas only the primary has (`temp` and attached databases), lower-cased. */
  #schemas: ReadonlySet<string> = new Set(["temp"]);

  /** Whether a read-only statement of class `cls` must run on the primary. */
  needsPrimary(cls: StatementClass): boolean {
    const refs = cls.refs;
    if (!refs) return false;
    if (refs.connectionState) return true;
    for (const schema of refs.schemas) if (this.#schemas.has(schema)) return true;
    for (const name of this.#tempNames) if (refs.names.has(name)) return true;
    return false;
  }

  /** Reads the temp objects and attached databases of `primary` again. */
  async refresh(primary: SqlConnection): Promise<void> {
    try {
      const temp = await primary.all(TEMP_OBJECTS, []);
      const attached = await primary.all(ATTACHED, []);
      this.#tempNames = new Set(temp.map((r) => String(r[0]).toLowerCase()));
      this.#schemas = new Set(["temp", ...attached.map((r) => String(r[0]).toLowerCase())]);
    } catch {
      // A primary that cannot tell keeps what was known; replicas' "no such
      // table" still sends reads of unknown objects to the primary.
    }
  }
}
