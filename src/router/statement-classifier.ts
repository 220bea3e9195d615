/**
 * Which statements may run on a replica. The classification errs toward the
 * primary: a statement is read-only only when a small SQLite tokenizer proves
 * it (one SELECT / VALUES / WITH ... SELECT without any writing keyword, or an
 * EXPLAIN). Everything else (writes, RETURNING, writing CTEs, DDL, PRAGMA,
 * transaction control, ATTACH, several statements, anything unparsable) goes
 * to the primary. Replicas are read-only at the VFS level anyway, so a
 * misclassification can cost a round trip, never a lost write.
 */

/** What a statement does, as far as routing cares. */
export type StatementKind =
  /** SELECT, VALUES or WITH ... SELECT without writes. */
  | "read"
  /** EXPLAIN [QUERY PLAN] of anything (never executes it). */
  | "explain"
  /** INSERT, UPDATE, DELETE, REPLACE, anything with RETURNING, writing CTEs. */
  | "write"
  /** CREATE, DROP, ALTER. */
  | "ddl"
  /** PRAGMA (even read-only ones: they may configure the connection). */
  | "pragma"
  /** BEGIN, COMMIT/END, ROLLBACK, SAVEPOINT, RELEASE. */
  | "transaction"
  /** ATTACH, DETACH. */
  | "attach"
  /** VACUUM, REINDEX, ANALYZE. */
  | "maintenance"
  /** More than one statement in one string. */
  | "multiple"
  /** Nothing but whitespace and comments. */
  | "empty"
  /** Unknown first keyword or unterminated literal/comment. */
  | "unknown";

/** The transaction-control effect of a statement. */
export type TransactionEffect =
  | { op: "begin" }
  | { op: "commit" }
  | { op: "rollback" }
  | { op: "savepoint"; name: string }
  | { op: "release"; name: string }
  | { op: "rollback-to"; name: string };

/**
 * What a read-only statement names that may exist only on the primary's
 * connection (temp objects, attached databases, connection state).
 */
export interface StatementReferences {
  /** Every identifier and keyword, lower-cased (a temp table's name is among them). */
  names: ReadonlySet<string>;
  /** Names used as a schema qualifier (`temp` in `temp.t`), lower-cased. */
  schemas: ReadonlySet<string>;
  /**
   * Reads state only the primary's connection has: the temp schema
   * (`sqlite_temp_master`), PRAGMA table-valued functions (`pragma_temp_store`)
   * or `last_insert_rowid()`, `changes()`, `total_changes()`.
   */
  connectionState: boolean;
}

/** Classification of one SQL string. */
export interface StatementClass {
  kind: StatementKind;
  /** True only when the statement is proven not to write: it may run on a replica. */
  readOnly: boolean;
  /** Set for `transaction` statements. */
  transaction?: TransactionEffect;
  /** Set for read-only statements. */
  refs?: StatementReferences;
}

interface Token {
  /** `word` (keyword or bare identifier), `name` (quoted identifier), `param`, `punct`, `literal`. */
  type: "word" | "name" | "param" | "punct" | "literal";
  /** Upper-cased text for words; the identifier for names; the character for punctuation. */
  text: string;
}

const WRITE_WORDS = new Set(["INSERT", "UPDATE", "DELETE", "RETURNING"]);
const TX_WORDS = new Set(["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]);
const MAINTENANCE_WORDS = new Set(["VACUUM", "REINDEX", "ANALYZE"]);

function isWordStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 0x80;
}

function isWordPart(c: number): boolean {
  return isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
}

/**
 * Splits `sql` into statements of tokens. Returns `undefined` when a string,
 * quoted identifier or block comment is unterminated (nothing can be proven).
 */
function tokenize(sql: string): Token[][] | undefined {
  const statements: Token[][] = [];
  let current: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    // Whitespace.
    if (c === 32 || (c >= 9 && c <= 13)) {
      i++;
      continue;
    }
    // -- line comment.
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf("\n", i + 2);
      i = end === -1 ? n : end + 1;
      continue;
    }
    // /* block comment */.
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const end = sql.indexOf("*/", i + 2);
      if (end === -1) return undefined;
      i = end + 2;
      continue;
    }
    // 'string', "identifier", `identifier`: doubled quote escapes.
    if (c === 39 || c === 34 || c === 96) {
      const quote = sql[i]!;
      let j = i + 1;
      let text = "";
      for (;;) {
        const k = sql.indexOf(quote, j);
        if (k === -1) return undefined;
        text += sql.slice(j, k);
        if (sql[k + 1] === quote) {
          text += quote;
          j = k + 2;
          continue;
        }
        j = k + 1;
        break;
      }
      current.push({ type: c === 39 ? "literal" : "name", text });
      i = j;
      continue;
    }
    // [identifier].
    if (c === 91) {
      const k = sql.indexOf("]", i + 1);
      if (k === -1) return undefined;
      current.push({ type: "name", text: sql.slice(i + 1, k) });
      i = k + 1;
      continue;
    }
    // Parameters: ?, ?NNN, :name, @name, $name (a parameter named :delete is no keyword).
    if (c === 63 || c === 58 || c === 64 || c === 36) {
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j))) j++;
      current.push({ type: "param", text: sql.slice(i, j) });
      i = j;
      continue;
    }
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j))) j++;
      current.push({ type: "word", text: sql.slice(i, j).toUpperCase() });
      i = j;
      continue;
    }
    if (c >= 48 && c <= 57) {
      let j = i + 1;
      while (j < n && (isWordPart(sql.charCodeAt(j)) || sql[j] === ".")) j++;
      current.push({ type: "literal", text: sql.slice(i, j) });
      i = j;
      continue;
    }
    if (c === 59) {
      if (current.length > 0) statements.push(current);
      current = [];
      i++;
      continue;
    }
    current.push({ type: "punct", text: sql[i]! });
    i++;
  }
  if (current.length > 0) statements.push(current);
  return statements;
}

/** The name after a SAVEPOINT / RELEASE / ROLLBACK TO, normalized as SQLite compares it. */
function savepointName(token: Token | undefined): string | undefined {
  if (!token) return undefined;
  if (token.type === "word" || token.type === "name") return token.text.toLowerCase();
  return undefined;
}

function transactionEffect(tokens: Token[]): TransactionEffect | undefined {
  const first = tokens[0]!.text;
  const word = (i: number) => (tokens[i]?.type === "word" ? tokens[i]!.text : undefined);
  switch (first) {
    case "BEGIN":
      return { op: "begin" };
    case "COMMIT":
    case "END":
      return { op: "commit" };
    case "ROLLBACK": {
      let i = 1;
      if (word(i) === "TRANSACTION") i++;
      if (word(i) !== "TO") return { op: "rollback" };
      i++;
      if (word(i) === "SAVEPOINT") i++;
      const name = savepointName(tokens[i]);
      return name === undefined ? undefined : { op: "rollback-to", name };
    }
    case "SAVEPOINT": {
      const name = savepointName(tokens[1]);
      return name === undefined ? undefined : { op: "savepoint", name };
    }
    case "RELEASE": {
      const i = word(1) === "SAVEPOINT" ? 2 : 1;
      const name = savepointName(tokens[i]);
      return name === undefined ? undefined : { op: "release", name };
    }
  }
  return undefined;
}

/** True when a SELECT/VALUES/WITH statement contains nothing that writes. */
function readsOnly(tokens: Token[]): boolean {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type !== "word") continue;
    if (WRITE_WORDS.has(t.text)) return false;
    // REPLACE(...) is a string function; REPLACE INTO is a write.
    if (t.text === "REPLACE") {
      const next = tokens[i + 1];
      if (next?.type !== "punct" || next.text !== "(") return false;
    }
  }
  return true;
}

/** Functions whose result is state of the connection that runs them. */
const CONNECTION_FUNCTIONS = new Set(["last_insert_rowid", "changes", "total_changes"]);
/** Schema tables of the connection's temp schema. */
const TEMP_SCHEMA_TABLES = new Set(["sqlite_temp_master", "sqlite_temp_schema"]);

function references(tokens: Token[]): StatementReferences {
  const names = new Set<string>();
  const schemas = new Set<string>();
  let connectionState = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type !== "word" && t.type !== "name") continue;
    const name = t.text.toLowerCase();
    names.add(name);
    const next = tokens[i + 1];
    if (next?.type === "punct" && next.text === ".") schemas.add(name);
    if (
      TEMP_SCHEMA_TABLES.has(name) ||
      name.startsWith("pragma_") ||
      // Called by a bare or a quoted name ("last_insert_rowid"() is the same call).
      (next?.type === "punct" && next.text === "(" && CONNECTION_FUNCTIONS.has(name))
    ) {
      connectionState = true;
    }
  }
  return { names, schemas, connectionState };
}

function classifyUncached(sql: string): StatementClass {
  const statements = tokenize(sql);
  if (!statements) return { kind: "unknown", readOnly: false };
  if (statements.length === 0) return { kind: "empty", readOnly: false };
  if (statements.length > 1) return { kind: "multiple", readOnly: false };
  const tokens = statements[0]!;
  const first = tokens[0]!;
  if (first.type !== "word") {
    // A parenthesized SELECT is not valid SQLite at top level; prove nothing.
    return { kind: "unknown", readOnly: false };
  }
  switch (first.text) {
    case "SELECT":
    case "VALUES":
    case "WITH":
      return readsOnly(tokens)
        ? { kind: "read", readOnly: true, refs: references(tokens) }
        : { kind: "write", readOnly: false };
    case "EXPLAIN":
      return { kind: "explain", readOnly: true, refs: references(tokens) };
    case "INSERT":
    case "UPDATE":
    case "DELETE":
    case "REPLACE":
      return { kind: "write", readOnly: false };
    case "CREATE":
    case "DROP":
    case "ALTER":
      return { kind: "ddl", readOnly: false };
    case "PRAGMA":
      return { kind: "pragma", readOnly: false };
    case "ATTACH":
    case "DETACH":
      return { kind: "attach", readOnly: false };
  }
  if (MAINTENANCE_WORDS.has(first.text)) return { kind: "maintenance", readOnly: false };
  if (TX_WORDS.has(first.text)) {
    const transaction = transactionEffect(tokens);
    return transaction
      ? { kind: "transaction", readOnly: false, transaction }
      : { kind: "unknown", readOnly: false };
  }
  return { kind: "unknown", readOnly: false };
}

const CACHE_LIMIT = 512;
const cache = new Map<string, StatementClass>();

/**
 * Classifies one SQL string (which may hold several statements). Results are
 * memoized for the most recent distinct strings: ORMs send the same SQL text
 * over and over.
 */
export function classifyStatement(sql: string): StatementClass {
  const hit = cache.get(sql);
  if (hit) return hit;
  const result = Object.freeze(classifyUncached(sql));
  // Long one-off strings are not worth keeping.
  if (sql.length <= 4096) {
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(sql, result);
  }
  return result;
}
