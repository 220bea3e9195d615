/**
 * An analytics script: today's figures next to the same figures as the
 * database stood 24 hours ago, both read lazily from the replica in object
 * storage (no restore, no download of the whole database).
 *
 *   PAGECAST_REPLICA_URL='s3://bucket/shop?region=eu-west-1' node compare-yesterday.js [--json]
 *
 * Credentials come from the usual AWS environment variables.
 */
import { countDistinct, desc, sql, sum } from "drizzle-orm";
import { drizzleReplica, openReplica, type ReadonlyDatabase, timeTravel } from "pagecast";
import "pagecast/node"; // Node: loads the SQLite WebAssembly from node_modules
import { orders } from "./schema.js";

interface Figures {
  txid: number;
  orders: number;
  revenue: number;
  customers: number;
  topCustomer: string | null;
}

async function figures(db: ReadonlyDatabase, txid: number): Promise<Figures> {
  const [totals] = await db
    .select({
      orders: sql<number>`count(*)`,
      revenue: sum(orders.amount).mapWith(Number),
      customers: countDistinct(orders.customer),
    })
    .from(orders);
  const [top] = await db
    .select({ customer: orders.customer, spent: sum(orders.amount) })
    .from(orders)
    .groupBy(orders.customer)
    .orderBy(desc(sum(orders.amount)), orders.customer)
    .limit(1);
  return {
    txid,
    orders: totals?.orders ?? 0,
    revenue: Math.round((totals?.revenue ?? 0) * 100) / 100,
    customers: totals?.customers ?? 0,
    topCustomer: top?.customer ?? null,
  };
}

function change(now: number, then: number): string {
  if (then === 0) return now === 0 ? "0%" : "new";
  const pct = ((now - then) / then) * 100;
  return `${pct >= 0 ? "+" : ""}${pct.toFixed(1)}%`;
}

const url = process.env.PAGECAST_REPLICA_URL;
if (!url) {
  console.error("set PAGECAST_REPLICA_URL to the replica's URL");
  process.exit(2);
}

const replica = await openReplica(url);
try {
  const today = await figures(drizzleReplica(replica), replica.status().txid ?? 0);
  const yesterday = await timeTravel(replica, "24 hours ago", (past) =>
    figures(past, past.$at.txid),
  );
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ today, yesterday }));
  } else {
    const rows: [string, string, string, string][] = [
      ["", "24 h ago", "now", "change"],
      ["TXID", String(yesterday.txid), String(today.txid), ""],
      [
        "orders",
        String(yesterday.orders),
        String(today.orders),
        change(today.orders, yesterday.orders),
      ],
      [
        "revenue",
        yesterday.revenue.toFixed(2),
        today.revenue.toFixed(2),
        change(today.revenue, yesterday.revenue),
      ],
      [
        "customers",
        String(yesterday.customers),
        String(today.customers),
        change(today.customers, yesterday.customers),
      ],
      ["top customer", yesterday.topCustomer ?? "-", today.topCustomer ?? "-", ""],
    ];
    const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows)
      console.log(
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      );
  }
} finally {
  await replica.close();
}
