/**
 * Where a database of a config file replicates to: Litestream's `replica:`
 * (a `url`, or `type: s3|file` with `bucket`/`path`/`endpoint`/`region`/
 * `force-path-style`), top-level settings as defaults, credentials from the
 * file. Built into a pagecast store URL, checked by `parseStoreUrl`.
 */
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { formatStoreLocation, parseStoreUrl, type StoreLocation } from "../storage/store-url.js";
import type { Section } from "./yaml-section.js";

/** A replica destination resolved from a config file. */
export interface ReplicaTarget {
  /** The store location (the URL is `formatStoreLocation(location)`). */
  location: Extract<StoreLocation, { scheme: "s3" | "file" }>;
  /** S3 credentials from the file (`access-key-id`/`secret-access-key`), else the environment's. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** The settings every replica inherits from the top level of the file (Litestream's `ReplicaSettings`). */
export interface ReplicaDefaults {
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  bucket?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  syncInterval?: number;
}

/** Replica settings pagecast does not act on, and why (Litestream has them). */
export const IGNORED_REPLICA_SETTINGS: Record<string, string> = {
  "validation-interval":
    "pagecast compares the database with the replica at every sync instead (verify-pages)",
  "max-sync-ltx-files": "pagecast publishes what is pending in one file per sync",
  "auto-recover": "pagecast repairs a replica by publishing a snapshot, always",
  "sign-payload": "pagecast's S3 client signs requests its own way",
  "require-content-md5": "pagecast's S3 client checksums only where S3 requires it",
  "skip-verify": "TLS certificates are always verified (use a trusted CA: NODE_EXTRA_CA_CERTS)",
  "storage-class": "objects use the bucket's default storage class",
  "part-size": "pagecast uploads in parts of at most 8 MiB",
  concurrency: "pagecast's S3 client sets its own upload concurrency",
};

/** Settings of replica types pagecast does not support (ignored on s3 and file replicas). */
const OTHER_TYPE_SETTINGS = [
  "account-name",
  "account-key",
  "sas-token",
  "host",
  "user",
  "password",
  "key-path",
  "concurrent-writes",
  "host-key",
  "webdav-url",
  "webdav-username",
  "webdav-password",
  "jwt",
  "seed",
  "creds",
  "nkey",
  "username",
  "token",
  "tls",
  "root-cas",
  "client-cert",
  "client-key",
  "max-reconnects",
  "reconnect-wait",
  "timeout",
];

/** Settings that would silently weaken security if ignored: refused. */
export const REFUSED_REPLICA_SETTINGS: Record<string, string> = {
  "sse-customer-algorithm": "server-side encryption settings (use bucket default encryption)",
  "sse-customer-key": "server-side encryption settings (use bucket default encryption)",
  "sse-customer-key-path": "server-side encryption settings (use bucket default encryption)",
  "sse-kms-key-id": "server-side encryption settings (use bucket default encryption)",
  age: "age encryption (Litestream 0.5 refuses it too)",
};

const SUPPORTED_TYPES = new Set(["s3", "file"]);
const OTHER_TYPES = new Set(["gs", "abs", "sftp", "webdav", "nats", "oss"]);

/** `~/x` and relative paths made absolute (relative to the working directory, as Litestream does). */
export function expandPath(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return join(homedir(), path.slice(2));
  return isAbsolute(path) ? resolve(path) : resolve(process.cwd(), path);
}

/** Litestream's endpoint rule: no scheme means http for a local host, https otherwise. */
function endpointWithScheme(endpoint: string): string {
  if (/^https?:\/\//i.test(endpoint)) return endpoint;
  const host = endpoint.split(/[/:]/, 1)[0]!.toLowerCase();
  const local =
    host === "localhost" ||
    /^127\./.test(host) ||
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    host.endsWith(".local");
  return `${local ? "http" : "https"}://${endpoint}`;
}

/** Reads the top-level replica settings (defaults for every replica). */
export function readReplicaDefaults(s: Section): ReplicaDefaults {
  const d: ReplicaDefaults = {};
  const set = <K extends keyof ReplicaDefaults>(k: K, v: ReplicaDefaults[K] | undefined) => {
    if (v !== undefined) d[k] = v;
  };
  set("accessKeyId", s.string("access-key-id"));
  set("secretAccessKey", s.string("secret-access-key"));
  set("region", s.string("region"));
  set("bucket", s.string("bucket"));
  set("endpoint", s.string("endpoint"));
  set("forcePathStyle", s.bool("force-path-style"));
  set("syncInterval", s.duration("sync-interval"));
  s.ignore(IGNORED_REPLICA_SETTINGS);
  s.refuse(REFUSED_REPLICA_SETTINGS);
  s.ignore(
    Object.fromEntries(
      OTHER_TYPE_SETTINGS.map((k) => [k, "a setting of replica types pagecast does not support"]),
    ),
  );
  return d;
}

/** The S3 location named by a Litestream-style `s3://` URL (virtual-host AWS names understood). */
function s3FromUrl(s: Section, url: URL): { bucket: string; prefix: string; region?: string } {
  let bucket = decodeURIComponent(url.hostname);
  let region: string | undefined;
  const aws = /^(.+)\.s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com$/.exec(bucket);
  if (aws) {
    bucket = aws[1]!;
    if (aws[2] && aws[2] !== "dualstack") region = aws[2];
  } else if (url.port || (bucket.includes(".") && /\.(com|dev|net|io|cloud)$/.test(bucket))) {
    s.fail(
      "url",
      `cannot tell the bucket from host ${JSON.stringify(url.host)}: write s3://BUCKET/PATH?endpoint=https://HOST`,
    );
  }
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, "");
  return { bucket, prefix, ...(region ? { region } : {}) };
}

/** Reads a database's `replica:` (or the one entry of `replicas:`) into a target. */
export function readReplica(
  s: Section,
  defaults: ReplicaDefaults,
): ReplicaTarget & { syncInterval?: number; retention?: number; snapshotInterval?: number } {
  const url = s.string("url");
  const type = s.string("type");
  const path = s.string("path");
  const bucket = s.string("bucket");
  const endpoint = s.string("endpoint") ?? defaults.endpoint;
  const region = s.string("region") ?? defaults.region;
  const forcePathStyle = s.bool("force-path-style") ?? defaults.forcePathStyle;
  const accessKeyId = s.string("access-key-id") ?? defaults.accessKeyId;
  const secretAccessKey = s.string("secret-access-key") ?? defaults.secretAccessKey;
  const syncInterval = s.duration("sync-interval") ?? defaults.syncInterval;
  // Litestream 0.3 kept these per replica; pagecast reads them where 0.5 moved them (snapshot:).
  const retention = s.duration("retention");
  const snapshotInterval = s.duration("snapshot-interval");
  s.ignore({
    name: "replica names are not used (Litestream 0.5 deprecated them too)",
    "retention-check-interval": "retention runs on the compaction cadence",
  });
  s.ignore(IGNORED_REPLICA_SETTINGS);
  s.refuse(REFUSED_REPLICA_SETTINGS);
  s.ignore(
    Object.fromEntries(
      OTHER_TYPE_SETTINGS.map((k) => [k, "a setting of replica types pagecast does not support"]),
    ),
  );

  let scheme: string;
  let parsedUrl: URL | undefined;
  if (url !== undefined) {
    if (path !== undefined) s.fail("url", "give either url or path, not both");
    if (bucket !== undefined) s.fail("url", "give either url or bucket, not both");
    try {
      parsedUrl = new URL(url);
    } catch {
      s.fail("url", `not a URL: ${JSON.stringify(url)} (forms: s3://bucket/prefix, file:///dir)`);
    }
    scheme = parsedUrl.protocol.slice(0, -1).toLowerCase();
    if (type !== undefined && type !== scheme) {
      s.fail("type", `type ${type} does not match the URL's scheme ${scheme}`);
    }
  } else {
    scheme = type ?? (bucket !== undefined || defaults.bucket !== undefined ? "s3" : "file");
  }
  if (OTHER_TYPES.has(scheme)) {
    s.fail(
      url !== undefined ? "url" : "type",
      `replica type ${scheme} is not supported by pagecast (s3 and file are)`,
    );
  }
  if (!SUPPORTED_TYPES.has(scheme)) {
    s.fail(
      url !== undefined ? "url" : "type",
      `unknown replica type ${JSON.stringify(scheme)} (s3 or file)`,
    );
  }

  let location: ReplicaTarget["location"];
  if (scheme === "file") {
    const dir = parsedUrl ? decodeURIComponent(parsedUrl.pathname) : path;
    if (!dir) s.fail(url !== undefined ? "url" : "path", "a file replica needs a path");
    if (parsedUrl?.host && parsedUrl.host !== "localhost") {
      s.fail("url", "a file URL names a local path: file:///absolute/dir");
    }
    location = { scheme: "file", path: expandPath(dir) };
  } else {
    let where: { bucket: string; prefix: string; region?: string };
    if (parsedUrl) {
      where = s3FromUrl(s, parsedUrl);
      for (const [name] of parsedUrl.searchParams) {
        if (!["endpoint", "region", "forcePathStyle"].includes(name)) {
          s.warn(
            s.lineOf("url"),
            `${s.where("url")}URL parameter ${name} ignored (pagecast reads endpoint, region and forcePathStyle)`,
          );
        }
      }
    } else {
      const b = bucket ?? defaults.bucket;
      if (!b) s.fail("bucket", "an s3 replica needs a bucket (or a url)");
      where = { bucket: b, prefix: (path ?? "").replace(/^\/+|\/+$/g, "") };
    }
    const qEndpoint = parsedUrl?.searchParams.get("endpoint") || undefined;
    const qRegion = parsedUrl?.searchParams.get("region") || undefined;
    const qPathStyle = parsedUrl?.searchParams.get("forcePathStyle") || undefined;
    const finalEndpoint = endpoint ?? qEndpoint;
    const finalRegion = region ?? qRegion ?? where.region;
    let pathStyle = forcePathStyle;
    if (pathStyle === undefined && qPathStyle !== undefined)
      pathStyle = qPathStyle === "true" || qPathStyle === "1";
    location = {
      scheme: "s3",
      bucket: where.bucket,
      prefix: where.prefix,
      ...(finalEndpoint ? { endpoint: endpointWithScheme(finalEndpoint) } : {}),
      ...(finalRegion ? { region: finalRegion } : {}),
      ...(pathStyle !== undefined ? { forcePathStyle: pathStyle } : {}),
    };
  }
  checkLocation(
    s,
    location,
    url !== undefined ? "url" : location.scheme === "s3" ? "bucket" : "path",
  );

  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    s.fail(
      accessKeyId === undefined ? "secret-access-key" : "access-key-id",
      "give both access-key-id and secret-access-key, or neither (then the environment's credentials are used)",
    );
  }
  return {
    location,
    ...(location.scheme === "s3" && accessKeyId !== undefined && secretAccessKey !== undefined
      ? { credentials: { accessKeyId, secretAccessKey } }
      : {}),
    ...(syncInterval !== undefined ? { syncInterval } : {}),
    ...(retention !== undefined ? { retention } : {}),
    ...(snapshotInterval !== undefined ? { snapshotInterval } : {}),
  };
}

/** Checks a location the way `openNodeStore` will (bad bucket names, endpoints, prefixes). */
function checkLocation(s: Section, location: ReplicaTarget["location"], key: string): void {
  try {
    parseStoreUrl(formatLocation(location));
  } catch (err) {
    s.fail(key, (err as Error).message);
  }
}

/** The store URL of a target's location. */
export function formatLocation(location: ReplicaTarget["location"]): string {
  return formatStoreLocation(location);
}

/**
 * The replica of a database found under a `dir` entry: the entry's replica
 * with the database's path relative to the directory appended (Litestream's
 * rule), so each database gets its own prefix or directory.
 */
export function childTarget(target: ReplicaTarget, relativePath: string): ReplicaTarget {
  const rel = relativePath
    .split(/[\\/]+/)
    .filter(Boolean)
    .join("/");
  const location: ReplicaTarget["location"] =
    target.location.scheme === "file"
      ? { ...target.location, path: join(target.location.path, rel) }
      : {
          ...target.location,
          prefix: [target.location.prefix, rel].filter(Boolean).join("/"),
        };
  return { ...target, location };
}
