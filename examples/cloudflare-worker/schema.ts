import { integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** The product catalog the Worker serves (written elsewhere by the primary). */
export const products = sqliteTable("products", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
  category: text("category").notNull(),
  price: real("price").notNull(),
});
