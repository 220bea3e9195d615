/**
 * Drizzle migrations for a router: always on the primary (a replica may lag
 * behind the migrations table), all pending migrations in one atomic batch.
 */
import type { MigrationConfig } from "drizzle-orm/migrator";
import { migrate as proxyMigrate } from "drizzle-orm/sqlite-proxy/migrator";
import { type RouterDatabase, routerInternals } from "../router/router.js";
import { RouterError } from "../router/router-error.js";

/** Applies the migrations in `config.migrationsFolder` to the router's primary. */
export async function migrate<TSchema extends Record<string, unknown>>(
  db: RouterDatabase<TSchema>,
  config: MigrationConfig,
): Promise<void> {
  const router = routerInternals(db);
  if (!router)
    throw new RouterError("ROUTER_INVALID_ARGUMENT", "migrate needs a router (createRouter)");
  await proxyMigrate(
    db.$primary,
    async (queries) => {
      if (queries.length === 0) return;
      await router.primaryBatch(
        queries.map((sql) => ({ sql, params: [], method: "run" as const })),
      );
    },
    config,
  );
}
