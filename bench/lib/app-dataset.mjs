/**
 * The app-shaped dataset of figure 10: a small shop's database as an app
 * leaves it after a long life, never VACUUMed. Customers, products, orders,
 * order items and an event log are written day after day in interleaved
 * transactions (orders placed with their items, statuses updated, events
 * logged and pruned, customer notes rewritten, some orders deleted), so the
 * pages of every table and index are scattered over the file and interleave
 * with each other's; a few events carry payloads long enough to spill onto
 * overflow pages. Secondary indexes are not covering for the queries that
 * use them. Page size 4096, rollback journal (what sql.js-httpvfs needs).
 */
import Database from "better-sqlite3";
import { prng, randInt } from "./prng.mjs";

export const APP_SCHEMA = `
CREATE TABLE customers(
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  country TEXT NOT NULL,
  plan TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  notes TEXT
);
CREATE TABLE products(
  id INTEGER PRIMARY KEY,
  sku TEXT NOT NULL,
  name TEXT NOT NULL,
  category TEXT NOT NULL,
  price INTEGER NOT NULL,
  description TEXT NOT NULL
);
CREATE TABLE orders(
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  total INTEGER NOT NULL,
  ship_country TEXT NOT NULL,
  note TEXT
);
CREATE TABLE order_items(
  id INTEGER PRIMARY KEY,
  order_id INTEGER NOT NULL,
  product_id INTEGER NOT NULL,
  qty INTEGER NOT NULL,
  unit_price INTEGER NOT NULL
);
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  payload TEXT NOT NULL
);
CREATE UNIQUE INDEX customers_email ON customers(email);
CREATE INDEX customers_country ON customers(country);
CREATE UNIQUE INDEX products_sku ON products(sku);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX orders_created ON orders(created_at);
CREATE INDEX orders_status ON orders(status);
CREATE INDEX items_order ON order_items(order_id);
CREATE INDEX items_product ON order_items(product_id);
CREATE INDEX events_customer ON events(customer_id);`;

export const APP_T0 = 1_600_000_000;
const DAY = 86_400;
const COUNTRIES = [
  "US",
  "DE",
  "FR",
  "GB",
  "JP",
  "BR",
  "IN",
  "CA",
  "AU",
  "ES",
  "IT",
  "NL",
  "SE",
  "MX",
];
const PLANS = ["free", "free", "free", "pro", "pro", "team", "enterprise"];
const CATEGORIES = ["books", "games", "garden", "kitchen", "music", "outdoor", "tools", "toys"];
const EVENT_KINDS = ["login", "view", "view", "view", "search", "cart", "error"];
const WORDS =
  "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat".split(
    " ",
  );

function text(rand, min, max) {
  const n = randInt(rand, min, max);
  const out = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]);
  return out.join(" ");
}

/** Parameters of the app dataset (quick: a few MB; full: ~50 MB). */
export function appParams(quick) {
  return quick ? { days: 60, scale: 0.12, seed: 99 } : { days: 500, scale: 0.5, seed: 99 };
}

/** Builds the app database at `path` (see the module comment). */
export function buildApp(path, p, openForBuild) {
  const db = openForBuild(path);
  db.exec(APP_SCHEMA);
  const rand = prng(p.seed);
  const ins = {
    customer: db.prepare("INSERT INTO customers VALUES (?,?,?,?,?,?,?)"),
    product: db.prepare("INSERT INTO products VALUES (?,?,?,?,?,?)"),
    order: db.prepare("INSERT INTO orders VALUES (?,?,?,?,?,?,?)"),
    item: db.prepare("INSERT INTO order_items VALUES (?,?,?,?,?)"),
    event: db.prepare("INSERT INTO events VALUES (?,?,?,?,?)"),
  };
  const setStatus = db.prepare("UPDATE orders SET status = ? WHERE id = ?");
  const setNotes = db.prepare("UPDATE customers SET notes = ? WHERE id = ?");
  const delOrder = db.prepare("DELETE FROM orders WHERE id = ?");
  const delItems = db.prepare("DELETE FROM order_items WHERE order_id = ?");
  const pruneEvents = db.prepare(
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < ? ORDER BY random() LIMIT ?)",
  );
  const customersPerDay = Math.max(1, Math.round(70 * p.scale));
  const ordersPerDay = Math.max(1, Math.round(320 * p.scale));
  const eventsPerDay = Math.max(1, Math.round(160 * p.scale));
  let customers = 0;
  let products = 0;
  let orders = 0;
  let items = 0;
  let events = 0;
  const open = [];
  for (let day = 0; day < p.days; day++) {
    const t0 = APP_T0 + day * DAY;
    db.transaction(() => {
      const newProducts =
        day === 0 ? Math.max(20, Math.round(600 * p.scale)) : rand() < 0.3 ? 2 : 0;
      for (let i = 0; i < newProducts; i++) {
        products++;
        ins.product.run(
          products,
          `SKU-${(products * 7919).toString(36).toUpperCase()}`,
          text(rand, 2, 4),
          CATEGORIES[Math.floor(rand() * CATEGORIES.length)],
          randInt(rand, 199, 49_999),
          text(rand, 20, 60),
        );
      }
      // The day's activity, interleaved across tables.
      const steps = customersPerDay + ordersPerDay + eventsPerDay;
      for (let s = 0; s < steps; s++) {
        const x = rand() * steps;
        const at = t0 + Math.floor((s / steps) * DAY);
        if (x < customersPerDay || customers === 0) {
          customers++;
          ins.customer.run(
            customers,
            `user${customers}.${(customers * 2654435761) % 1000003}@example.com`,
            text(rand, 2, 3),
            COUNTRIES[Math.floor(rand() * COUNTRIES.length)],
            PLANS[Math.floor(rand() * PLANS.length)],
            at,
            rand() < 0.3 ? text(rand, 5, 30) : null,
          );
        } else if (x < customersPerDay + ordersPerDay) {
          orders++;
          const n = randInt(rand, 1, 5);
          let total = 0;
          const lines = [];
          for (let k = 0; k < n; k++) {
            const product = 1 + Math.floor(rand() ** 1.6 * products);
            const qty = randInt(rand, 1, 4);
            const price = randInt(rand, 199, 49_999);
            total += qty * price;
            lines.push([product, qty, price]);
          }
          ins.order.run(
            orders,
            1 + Math.floor(rand() * customers),
            "pending",
            at,
            total,
            COUNTRIES[Math.floor(rand() * COUNTRIES.length)],
            rand() < 0.1 ? text(rand, 3, 15) : null,
          );
          for (const [product, qty, price] of lines) {
            items++;
            ins.item.run(items, orders, product, qty, price);
          }
          open.push(orders);
        } else {
          events++;
          const kind = EVENT_KINDS[Math.floor(rand() * EVENT_KINDS.length)];
          // Errors carry stack traces: some spill onto overflow pages.
          const payload =
            kind === "error" && rand() < 0.15 ? text(rand, 600, 1800) : text(rand, 3, 25);
          ins.event.run(events, 1 + Math.floor(rand() * customers), kind, at, payload);
        }
      }
      // Orders move on: paid, shipped, delivered; a few refunded, cancelled or deleted.
      for (let i = open.length - 1; i >= 0; i--) {
        const id = open[i];
        const r = rand();
        if (r < 0.25) continue;
        let status;
        if (r < 0.27) status = "refunded";
        else if (r < 0.29) status = "cancelled";
        else if (r < 0.3) {
          delItems.run(id);
          delOrder.run(id);
          open.splice(i, 1);
          continue;
        } else status = r < 0.6 ? "paid" : r < 0.85 ? "shipped" : "delivered";
        setStatus.run(status, id);
        if (status !== "paid" && status !== "shipped") open.splice(i, 1);
      }
      // Customers' notes get rewritten (rows grow and move).
      for (let i = 0; i < Math.max(1, Math.round(20 * p.scale)); i++) {
        setNotes.run(text(rand, 10, 60), 1 + Math.floor(rand() * customers));
      }
      // Old events are pruned now and then.
      if (day % 7 === 6) pruneEvents.run(events - eventsPerDay * 30, Math.round(eventsPerDay * 2));
    })();
  }
  db.pragma("journal_mode = DELETE");
  db.close();
  return { customers, products, orders, items, events };
}

/**
 * The app's queries (figure 10): analytic shapes over non-covering indexes
 * and joins by rowid, plus two point lookups that must stay cheap.
 */
export const APP_QUERIES = {
  rangeLookups: {
    label: "revenue in a 30-day window (index range + rowid lookup per order)",
    shape: "rowid lookups from a non-covering index",
    sql: "SELECT count(*) AS orders, sum(total) AS revenue FROM orders WHERE created_at BETWEEN ? AND ?",
  },
  joinByRowid: {
    label: "refunds by customer country (index + join by rowid)",
    shape: "join by rowid",
    sql:
      "SELECT c.country, count(*) AS n, sum(o.total) AS amount FROM orders o " +
      "JOIN customers c ON c.id = o.customer_id WHERE o.status = ? GROUP BY c.country ORDER BY amount DESC",
  },
  groupBy: {
    label: "items sold per product category (GROUP BY, joins by rowid)",
    shape: "GROUP BY over a non-covering index",
    sql:
      "SELECT p.category, count(*) AS lines, sum(i.qty * i.unit_price) AS revenue FROM order_items i " +
      "JOIN products p ON p.id = i.product_id GROUP BY p.category ORDER BY p.category",
  },
  topLimit: {
    label: "latest pending orders (ORDER BY ... LIMIT over a non-covering index)",
    shape: "ORDER BY ... LIMIT over a non-covering index",
    sql: "SELECT id, customer_id, total, created_at FROM orders WHERE status = ? ORDER BY created_at DESC LIMIT 20",
  },
  scanFilter: {
    label: "error events and their payload size (scan with a filter, overflow pages)",
    shape: "scan with a filter",
    sql: "SELECT count(*) AS n, sum(length(payload)) AS bytes FROM events WHERE kind = ? AND created_at > ?",
  },
  pointRowid: {
    label: "one order by id (point lookup)",
    shape: "point lookup by rowid",
    sql: "SELECT * FROM orders WHERE id = ?",
    point: 3,
  },
  pointIndex: {
    label: "one customer by email (point lookup through an index)",
    shape: "point lookup through an index",
    sql: "SELECT * FROM customers WHERE email = ?",
    point: 4,
  },
};

/** Parameters of `kind` for sample `i` of a dataset with `counts` rows. */
export function appQueryParams(kind, counts, days, i) {
  const rand = prng(0x5eed ^ (i * 7919));
  switch (kind) {
    case "rangeLookups": {
      const start = APP_T0 + Math.floor(rand() * Math.max(1, days - 30)) * DAY;
      return [start, start + 30 * DAY];
    }
    case "joinByRowid":
      return [i % 2 === 0 ? "refunded" : "cancelled"];
    case "groupBy":
      return [];
    case "topLimit":
      return [i % 2 === 0 ? "pending" : "paid"];
    case "scanFilter":
      return ["error", APP_T0 + Math.floor(rand() * days * 0.3) * DAY];
    case "pointRowid":
      return [1 + Math.floor(rand() * counts.orders)];
    case "pointIndex": {
      const c = 1 + Math.floor(rand() * counts.customers);
      return [`user${c}.${(c * 2654435761) % 1000003}@example.com`];
    }
    default:
      throw new Error(`unknown query ${kind}`);
  }
}

/** Changes about 1% of the database's pages (the cacheDir rerun of figure 10). */
export function touchOnePercent(db, seed) {
  const rand = prng(seed);
  const pages = db.pragma("page_count", { simple: true });
  const maxOrder = db.prepare("SELECT max(id) FROM orders").pluck().get();
  const upd = db.prepare("UPDATE orders SET status = 'delivered', note = ? WHERE id = ?");
  // ~1 order per changed leaf of a scattered table; the index pages follow.
  const n = Math.max(1, Math.round(pages * 0.004));
  db.transaction(() => {
    for (let i = 0; i < n; i++) upd.run(`audited ${i}`, 1 + Math.floor(rand() * maxOrder));
  })();
}

export { Database };
