/** The queries every engine runs, with deterministic parameters. */
import { COUNTRIES, skuOf, T0 } from "./datasets.mjs";
import { prng } from "./prng.mjs";

/** Point lookups (figure 1, 3). */
export const POINT_QUERIES = {
  rowid: {
    label: "point lookup by rowid",
    sql: "SELECT * FROM items WHERE id = ?",
  },
  index: {
    label: "point lookup through an index (sku)",
    sql: "SELECT * FROM items WHERE sku = ?",
  },
};

/** Analytical queries (figure 2). */
export const SCAN_QUERIES = {
  rangeCount: {
    label: "index-range count (2% of items)",
    sql: "SELECT count(*) AS n FROM items WHERE created_at BETWEEN ? AND ?",
  },
  join: {
    label: "join: scan of users x items index (1 country)",
    sql:
      "SELECT u.country, count(*) AS n FROM users u JOIN items i ON i.user_id = u.id " +
      "WHERE u.country = ? GROUP BY u.country",
  },
  groupBy: {
    label: "group-by over covering index (5 categories)",
    sql:
      "SELECT category, count(*) AS n, sum(price) AS total FROM items " +
      "WHERE category BETWEEN ? AND ? GROUP BY category ORDER BY category",
  },
};

/** `count` random item ids (salted per use so caches never help across figures). */
export function randomIds(params, count, salt) {
  const rand = prng(0xc0ffee ^ salt);
  return Array.from({ length: count }, () => 1 + Math.floor(rand() * params.items));
}

/** Parameters of a point query for item `id`. */
export function pointParams(kind, id, params) {
  return kind === "rowid" ? [id] : [skuOf(id, params.seed)];
}

/** Parameters of an analytical query, different per `salt`. */
export function scanParams(kind, params, salt) {
  const rand = prng(0xbadcafe ^ salt);
  if (kind === "rangeCount") {
    const width = Math.floor(params.items * 0.02);
    const first = 1 + Math.floor(rand() * (params.items - width));
    return [T0 + first * 30, T0 + (first + width) * 30 - 1];
  }
  if (kind === "join") return [COUNTRIES[Math.floor(rand() * COUNTRIES.length)]];
  const c = Math.floor(rand() * 95);
  return [c, c + 4];
}
