/**
 * Converts replica answers to the JS types of the primary's driver, so a
 * routed result does not depend on which side answered: a replica returns
 * numbers (bigint past 2^53) and Uint8Arrays; better-sqlite3 returns numbers
 * (precision lost past 2^53) or, with `safeIntegers`, a bigint for every
 * INTEGER, and Buffers. Which INTEGER is an INTEGER (not an integral REAL)
 * only the replica's SQLite knows: it is asked for bigints when the primary
 * returns them.
 */
import type { ReadOptions, ValueTypes } from "./connection.js";

const SAFE_INTEGERS: ReadOptions = Object.freeze({ safeIntegers: true });

/** What to ask a replica for, given the primary's types. */
export function readOptions(types: ValueTypes | undefined): ReadOptions | undefined {
  return types?.integers === "bigint" ? SAFE_INTEGERS : undefined;
}

function conformValue(value: unknown, types: ValueTypes): unknown {
  if (typeof value === "bigint") return types.integers === "number" ? Number(value) : value;
  if (types.blob && value instanceof Uint8Array) return types.blob(value);
  return value;
}

/** `row` with the primary's types: itself when nothing changes, else a copy. */
export function conformRow(row: unknown[], types: ValueTypes): unknown[] {
  let out = row;
  for (let i = 0; i < row.length; i++) {
    const value = row[i];
    const conformed = conformValue(value, types);
    if (conformed !== value) {
      if (out === row) out = row.slice();
      out[i] = conformed;
    }
  }
  return out;
}

/** `rows` with the primary's types (copied where anything changes: a replica's rows are its own). */
export function conformRows(rows: unknown[][], types: ValueTypes): unknown[][] {
  let out = rows;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const conformed = conformRow(row, types);
    if (conformed !== row) {
      if (out === rows) out = rows.slice();
      out[i] = conformed;
    }
  }
  return out;
}
