import { integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Orders as the shop's primary writes them. */
export const orders = sqliteTable("orders", {
  id: integer("id").primaryKey(),
  customer: text("customer").notNull(),
  amount: real("amount").notNull(),
  /** Order time, ms since epoch. */
  createdAt: integer("created_at").notNull(),
});
