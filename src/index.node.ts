/**
 * `pagecast` as Node resolves it (the "node" export condition): the same API
 * as the runtime-agnostic entry, plus wa-sqlite's wasm loaded from the
 * installed package (so `openReplica` needs no `wasm` option), file://
 * stores (every URL the CLI and the Replicator accept) and router sessions
 * carried by AsyncLocalStorage.
 */
import { createRequire } from "node:module";
import { setDrizzleRequire } from "./router/drizzle-runtime.js";
import { registerNodeSessionContext } from "./router-node/async-session-context.js";
import { registerNodeFileStores } from "./storage/open-node-store.js";
import { registerNodeCacheDir } from "./vfs-node/directory-cache.js";
import { registerNodeSqliteWasm } from "./vfs-node/node-wasm.js";

registerNodeSqliteWasm();
// drizzle-orm loads when a router or Drizzle database is first built, not on import.
setDrizzleRequire(createRequire);
// openStore, openReplica and time travel accept file:// like the rest of pagecast in Node.
registerNodeFileStores();
// `cacheDir` keeps pages in a directory.
registerNodeCacheDir();
// Read-your-writes follows async contexts (AsyncLocalStorage) without explicit sessions.
registerNodeSessionContext();

export * from "./index.js";
