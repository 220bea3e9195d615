import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A tiny notes app. */
export const notes = sqliteTable("notes", {
  id: integer("id").primaryKey(),
  text: text("text").notNull(),
  createdAt: integer("created_at").notNull(),
});
