/**
 * Fault injection for pagecast's own tests and for applications that want to
 * test their use of it: an `ObjectStore` wrapper injecting storage faults,
 * structured LTX corruption, a seeded generator. Reader-safe (no `node:`
 * imports); the Node HTTP fault proxy is `fault-proxy-node.ts`.
 */
export {
  type BitFlipChooser,
  FAULT_KINDS,
  type FaultKind,
  type FaultRecord,
  FaultyStore,
  type FaultyStoreOptions,
  faultyStore,
  READ_FAULT_KINDS,
  TRANSIENT_FAULT_KINDS,
} from "./faulty-store.js";
export {
  type CorruptedLtx,
  checkedLtxBits,
  corruptLtx,
  DETECTABLE_LTX_CORRUPTIONS,
  type LtxCorruption,
  type LtxLayout,
  ltxLayout,
} from "./ltx-corruption.js";
export { type Prng, prng } from "./prng.js";
export { TestingError } from "./testing-error.js";
