/**
 * `pagecast/reader` as Node resolves it (the "node" export condition): the
 * same API, built into the chunks `pagecast` and `pagecast/node` share
 * (scripts/bundle-dist.mjs), so that a process using several entries has
 * one instance of each class (errors stay `instanceof` across entries) and
 * the wasm `pagecast` registers in Node serves this `openReplica` too.
 * Registers nothing itself and imports nothing from `node:`.
 */
export * from "./reader.js";
