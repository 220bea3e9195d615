/**
 * `pagecast` as Node resolves it (the "node" export condition): the same API
 * as the runtime-agnostic entry, plus wa-sqlite's wasm loaded from the
 * installed package, so `openReplica` needs no `wasm` option in Node.
 */
import { registerNodeSqliteWasm } from "./vfs-node/node-wasm.js";

registerNodeSqliteWasm();

export * from "./index.js";
