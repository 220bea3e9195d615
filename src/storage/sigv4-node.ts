/**
 * SigV4 hashing on `node:crypto`: synchronous and ready at once, where
 * WebCrypto in Node loads its modules on first use and hops to the thread
 * pool for every digest (milliseconds per request on a cold start).
 */
import { createHash, createHmac } from "node:crypto";
import type { SigV4Crypto } from "./sigv4.js";

/** The hashing of `SigV4Signer` on `node:crypto`. */
export const nodeSigV4Crypto: SigV4Crypto = {
  sha256Hex: (text) => createHash("sha256").update(text, "utf8").digest("hex"),
  hmac: (key, text) => createHmac("sha256", key).update(text, "utf8").digest(),
};
