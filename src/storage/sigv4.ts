/**
 * AWS Signature Version 4 for S3 requests sent with an `Authorization`
 * header, as `FetchS3Store` sends them. Written for S3 only (paths are
 * encoded once, `x-amz-content-sha256: UNSIGNED-PAYLOAD`), with the hashing
 * behind {@link SigV4Crypto} so each runtime uses its fastest primitive:
 * WebCrypto by default (Workers, browsers, Deno, Bun), `node:crypto` in Node
 * (synchronous, no thread-pool hop per request: a cold start signs its first
 * requests in microseconds, not milliseconds).
 *
 * The derived signing key is cached per secret, day, region and service, so
 * a request costs one SHA-256 and one HMAC.
 */

/** The hashing a signer needs. Results may be synchronous or promised. */
export interface SigV4Crypto {
  /** SHA-256 of the UTF-8 bytes of `text`, lower-case hex. */
  sha256Hex(text: string): string | Promise<string>;
  /** HMAC-SHA256 of the UTF-8 bytes of `text` under `key`. */
  hmac(key: Uint8Array, text: string): Uint8Array | Promise<Uint8Array>;
}

/** Keys signing a request. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What is signed. */
export interface SigV4Request {
  method: string;
  /** The URL as it will be sent: path and query already percent-encoded (RFC 3986). */
  url: string;
  /** Headers to send (any case); the signer adds its own to a copy. */
  headers?: Record<string, string>;
  /** `YYYYMMDDTHHMMSSZ`, the signing time (server-corrected by the caller). */
  datetime: string;
}

/**
 * Headers never signed: they may be changed or added on the way (proxies,
 * the runtime's fetch), and S3 does not require them signed. The same set
 * as other fetch-based signers, so servers see what they are used to.
 */
const UNSIGNED = new Set([
  "authorization",
  "content-type",
  "content-length",
  "user-agent",
  "presigned-expires",
  "expect",
  "x-amzn-trace-id",
  "range",
  "connection",
]);

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}

/** RFC 3986 percent-encoding of one path segment, query name or value (decoded text). */
export function encodeComponent(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** RFC 3986 encoding of a decoded path (or object key), slashes kept. */
export function encodePath(path: string): string {
  return path.split("/").map(encodeComponent).join("/");
}

/** The canonical path: S3 signs the path as sent, with each byte RFC 3986-encoded once. */
function canonicalPath(pathname: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    decoded = pathname;
  }
  return encodePath(decoded);
}

/** The canonical query: names and values encoded, sorted by name then value; S3 keeps the first of a repeated name. */
function canonicalQuery(search: URLSearchParams): string {
  const seen = new Set<string>();
  const pairs: [string, string][] = [];
  for (const [name, value] of search) {
    if (!name || seen.has(name)) continue;
    seen.add(name);
    pairs.push([encodeComponent(name), encodeComponent(value)]);
  }
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join("&");
}

/** `node:crypto`-free default: WebCrypto, with imported HMAC keys cached per key array. */
export function webCryptoSigV4(subtle: SubtleCrypto = globalThis.crypto.subtle): SigV4Crypto {
  const keys = new WeakMap<Uint8Array, Promise<CryptoKey>>();
  return {
    async sha256Hex(text) {
      return hex(new Uint8Array(await subtle.digest("SHA-256", encoder.encode(text))));
    },
    async hmac(key, text) {
      let imported = keys.get(key);
      if (!imported) {
        imported = subtle.importKey(
          "raw",
          key as Uint8Array<ArrayBuffer>,
          { name: "HMAC", hash: "SHA-256" },
          false,
          ["sign"],
        );
        keys.set(key, imported);
      }
      return new Uint8Array(await subtle.sign("HMAC", await imported, encoder.encode(text)));
    },
  };
}

/** Signs S3 requests for one region with one hashing implementation. */
export class SigV4Signer {
  readonly #crypto: SigV4Crypto;
  readonly #region: string;
  readonly #service: string;
  /** Derived signing key of the last (secret, day) seen: keys change rarely. */
  #derived: { secret: string; date: string; key: Promise<Uint8Array> } | undefined;

  constructor(options: { region: string; service?: string; crypto?: SigV4Crypto }) {
    this.#region = options.region;
    this.#service = options.service ?? "s3";
    this.#crypto = options.crypto ?? webCryptoSigV4();
  }

  /** The headers to send: the request's, plus `x-amz-date`, `x-amz-content-sha256`, the session token and `authorization`. */
  async sign(req: SigV4Request, creds: SigV4Credentials): Promise<Record<string, string>> {
    const url = new URL(req.url);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers ?? {})) {
      const lower = name.toLowerCase();
      if (lower === "host") continue;
      // Names differing only in case are one header, its values joined (as fetch's Headers does).
      const prev = headers[lower];
      headers[lower] = prev === undefined ? value.trim() : `${prev}, ${value.trim()}`;
    }
    headers["x-amz-content-sha256"] ??= "UNSIGNED-PAYLOAD";
    headers["x-amz-date"] = req.datetime;
    if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
    const signed = ["host", ...Object.keys(headers).filter((h) => !UNSIGNED.has(h))].sort();
    const canonicalHeaders = signed
      .map((h) => `${h}:${h === "host" ? url.host : headers[h]!.trim().replace(/\s+/g, " ")}\n`)
      .join("");
    const signedHeaders = signed.join(";");
    const canonical = [
      req.method.toUpperCase(),
      canonicalPath(url.pathname),
      canonicalQuery(url.searchParams),
      canonicalHeaders,
      signedHeaders,
      headers["x-amz-content-sha256"],
    ].join("\n");
    const date = req.datetime.slice(0, 8);
    const scope = `${date}/${this.#region}/${this.#service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${req.datetime}\n${scope}\n${await this.#crypto.sha256Hex(canonical)}`;
    const key = await this.#signingKey(creds.secretAccessKey, date);
    const signature = hex(await this.#crypto.hmac(key, toSign));
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  #signingKey(secret: string, date: string): Promise<Uint8Array> {
    const cached = this.#derived;
    if (cached && cached.secret === secret && cached.date === date) return cached.key;
    const c = this.#crypto;
    const key = (async () => {
      const kDate = await c.hmac(encoder.encode(`AWS4${secret}`), date);
      const kRegion = await c.hmac(kDate, this.#region);
      const kService = await c.hmac(kRegion, this.#service);
      return c.hmac(kService, "aws4_request");
    })();
    this.#derived = { secret, date, key };
    // A failed derivation is not kept.
    key.catch(() => {
      if (this.#derived?.key === key) this.#derived = undefined;
    });
    return key;
  }
}
