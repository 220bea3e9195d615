/**
 * Parsing of store URLs: `s3://bucket/prefix?endpoint=...&region=...&forcePathStyle=...`,
 * `file:///abs/path` and `memory://name/prefix`.
 *
 * Credentials never come from a URL: userinfo and any query parameter other
 * than the three above are refused, and error messages never repeat the
 * refused parts (they may be secrets).
 */
import { isMemoryStoreName } from "./memory-store.js";
import { InvalidStoreUrlError } from "./store-errors.js";
import { validatePrefix } from "./store-keys.js";

/** Where a store URL points. */
export type StoreLocation =
  | {
      scheme: "s3";
      bucket: string;
      /** Key prefix without leading or trailing `/` (`""` for the whole bucket). */
      prefix: string;
      endpoint?: string;
      region?: string;
      forcePathStyle?: boolean;
    }
  | { scheme: "file" /** Absolute path, percent-decoded. */; path: string }
  | {
      scheme: "memory";
      name: string /** Key prefix without leading or trailing `/`. */;
      prefix: string;
    };

const S3_PARAMS = new Set(["endpoint", "region", "forcePathStyle"]);
const MAX_URL_LENGTH = 4096;

function fail(message: string): never {
  throw new InvalidStoreUrlError(message);
}

function decodePath(pathname: string, what: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    fail(`${what} has malformed percent-encoding`);
  }
  if (decoded.includes("\u0000")) fail(`${what} contains a NUL character`);
  return decoded;
}

function prefixOf(pathname: string, scheme: string): string {
  const prefix = decodePath(pathname, `${scheme} URL path`).replace(/^\/+|\/+$/g, "");
  try {
    validatePrefix(prefix);
  } catch (error) {
    throw new InvalidStoreUrlError(`${scheme} URL path is not a valid key prefix`, {
      cause: error,
    });
  }
  return prefix;
}

function parseEndpoint(value: string): string {
  let endpoint: URL;
  try {
    endpoint = new URL(value);
  } catch {
    fail("s3 URL parameter endpoint is not a URL");
  }
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") {
    fail("s3 URL parameter endpoint must be an http or https URL");
  }
  if (endpoint.username || endpoint.password) {
    fail("s3 URL parameter endpoint must not contain credentials");
  }
  if (endpoint.search || endpoint.hash) {
    fail("s3 URL parameter endpoint must not have a query or fragment");
  }
  return endpoint.href.replace(/\/+$/, "");
}

/**
 * Parses and checks a store URL. Throws `InvalidStoreUrlError` for anything
 * unusable, including URLs that try to carry credentials.
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (typeof url !== "string" || url.length === 0) fail("store URL must be a non-empty string");
  if (url.length > MAX_URL_LENGTH) fail(`store URL is longer than ${MAX_URL_LENGTH} characters`);
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  const scheme = schemeMatch?.[1]?.toLowerCase();
  if (scheme !== "s3" && scheme !== "file" && scheme !== "memory") {
    fail("store URL must start with s3://, file:// or memory://");
  }
  if (!url.slice(scheme.length + 1).startsWith("//"))
    fail(`${scheme} URL must start with ${scheme}://`);
  // Checked before parsing so that no parser error can carry the secret along.
  const authority = url.slice(scheme.length + 3).split(/[/?#]/, 1)[0] ?? "";
  if (authority.includes("@")) {
    fail(`${scheme} URL must not contain credentials; use the environment or explicit options`);
  }
  // The URL parser silently resolves "." and ".." segments; refuse them instead.
  const rawPath = url.slice(scheme.length + 3 + authority.length).split(/[?#]/, 1)[0] ?? "";
  for (const segment of rawPath.split("/")) {
    const dots = segment.replace(/%2e/gi, ".");
    if (dots === "." || dots === "..") fail(`${scheme} URL path has a "." or ".." segment`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail(`${scheme} URL is malformed`);
  }
  if (parsed.hash) fail(`${scheme} URL must not have a fragment`);
  if (parsed.port) fail(`${scheme} URL must not have a port`);

  const params = new Map<string, string>();
  for (const [name, value] of parsed.searchParams) {
    if (scheme !== "s3" || !S3_PARAMS.has(name)) {
      fail(
        scheme === "s3"
          ? "s3 URL has an unknown or forbidden parameter (allowed: endpoint, region, forcePathStyle); credentials come from the environment or explicit options, never from the URL"
          : `${scheme} URL must not have query parameters`,
      );
    }
    if (params.has(name)) fail(`s3 URL repeats parameter ${name}`);
    params.set(name, value);
  }

  if (scheme === "file") {
    if (parsed.hostname !== "" && parsed.hostname !== "localhost") {
      fail("file URL must name a local path (file:///abs/path)");
    }
    // Node's fileURLToPath refuses encoded slashes too; refusing them here means
    // an encoded slash can never smuggle a ".." segment past the raw-path check.
    if (/%2f/i.test(parsed.pathname)) fail("file URL path must not contain an encoded '/'");
    const path = decodePath(parsed.pathname, "file URL path");
    if (!path.startsWith("/") || path === "/") fail("file URL must name an absolute directory");
    // Re-checked after decoding: the promise is about the path returned, not the URL text.
    for (const segment of path.split("/")) {
      if (segment === "." || segment === "..") fail('file URL path has a "." or ".." segment');
    }
    return { scheme, path };
  }

  const host = decodePath(parsed.hostname, `${scheme} URL host`);
  if (scheme === "memory") {
    if (!isMemoryStoreName(host)) {
      fail("memory URL needs a name of letters, digits, '.', '_' or '-' (memory://name)");
    }
    return { scheme, name: host, prefix: prefixOf(parsed.pathname, scheme) };
  }

  if (!/^[A-Za-z0-9._-]{1,255}$/.test(host))
    fail("s3 URL needs a bucket name (s3://bucket/prefix)");
  const location: StoreLocation = {
    scheme,
    bucket: host,
    prefix: prefixOf(parsed.pathname, scheme),
  };
  const endpoint = params.get("endpoint");
  if (endpoint !== undefined) location.endpoint = parseEndpoint(endpoint);
  const region = params.get("region");
  if (region !== undefined) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(region)) fail("s3 URL parameter region is malformed");
    location.region = region;
  }
  const pathStyle = params.get("forcePathStyle");
  if (pathStyle !== undefined) {
    if (!["true", "false", "1", "0"].includes(pathStyle)) {
      fail("s3 URL parameter forcePathStyle must be true or false");
    }
    location.forcePathStyle = pathStyle === "true" || pathStyle === "1";
  }
  return location;
}

/** The URL of a location, as `parseStoreUrl` reads it back (credential-free, canonical). */
export function formatStoreLocation(location: StoreLocation): string {
  const encode = (path: string) => path.split("/").map(encodeURIComponent).join("/");
  switch (location.scheme) {
    case "file":
      return `file://${encode(location.path)}`;
    case "memory":
      return `memory://${location.name}${location.prefix ? `/${encode(location.prefix)}` : ""}`;
    case "s3": {
      const params = new URLSearchParams();
      if (location.endpoint) params.set("endpoint", location.endpoint);
      if (location.region) params.set("region", location.region);
      if (location.forcePathStyle !== undefined) {
        params.set("forcePathStyle", String(location.forcePathStyle));
      }
      const query = params.toString();
      const path = location.prefix.replace(/\/+$/, "");
      return `s3://${location.bucket}${path ? `/${encode(path)}` : ""}${query ? `?${query}` : ""}`;
    }
  }
}
