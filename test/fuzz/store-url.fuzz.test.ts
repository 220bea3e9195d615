/**
 * Fuzzing replica/store URLs (src/storage/store-url.ts parseStoreUrl,
 * openStore, openNodeStore): random strings and grammar-built near-valid
 * URLs. Outcome: a location that keeps every safety invariant (no credentials,
 * no `.`/`..` key segments, http(s) endpoints only), or InvalidStoreUrlError;
 * never another error, and never a secret echoed in an error.
 */
import { inspect } from "node:util";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openNodeStore } from "../../src/storage/open-node-store.js";
import { openStore } from "../../src/storage/open-store.js";
import { validatePrefix } from "../../src/storage/store-keys.js";
import { parseStoreUrl, type StoreLocation } from "../../src/storage/store-url.js";
import { assertProperty, expectTyped, FUZZ_CASES, fuzzParams, fuzzTimeout } from "./fuzz-config.js";

const URL_CODES = /^STORE_INVALID_URL$/;
/** Marks secrets planted in URLs: no error may ever repeat them. */
const SECRET = "Zq9SECRETx7Kw";

const segment = fc.oneof(
  { weight: 30, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "",
      ".",
      "..",
      "%2e",
      "%2E%2e",
      ".%2e",
      "%2F",
      "a%2F..%2Fb",
      "%00",
      "%ZZ",
      "%",
      "%e2%82%ac",
      "€",
      "\u0000",
      "\n",
      "\\",
      "..\\..",
      "a b",
      "%20",
      "@",
      ":",
      "?",
      "#",
      "\ud800",
      "x".repeat(300),
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: "binary" }) },
);

const host = fc.oneof(
  fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,20}$/),
  fc.constantFrom(
    "",
    "localhost",
    "bucket:9000",
    "[::1]",
    "b%41",
    "a..b",
    "UPPER",
    "xn--nxasmq6b",
    "%00",
    "bucket.s3.amazonaws.com",
    "x".repeat(300),
  ),
);

const secretUserinfo = fc.constantFrom(
  `AKIAIOSFODNN7EXAMPLE:${SECRET}@`,
  `${SECRET}@`,
  `user:${SECRET}@`,
  `:${SECRET}@`,
);

const param = fc.oneof(
  fc.tuple(
    fc.constantFrom("endpoint"),
    fc.oneof(
      fc.constantFrom(
        "http://127.0.0.1:9000",
        "https://s3.example.com/",
        "ftp://x",
        "notaurl",
        "http://",
        `http://key:${SECRET}@127.0.0.1:9000`,
        `http://127.0.0.1:9000/?X-Amz-Signature=${SECRET}`,
        "http://127.0.0.1:9000#frag",
        "javascript:alert(1)",
        "file:///etc/passwd",
      ),
      fc.webUrl(),
    ),
  ),
  fc.tuple(
    fc.constantFrom("region"),
    fc.oneof(fc.constantFrom("eu-west-1", "", "a b", "x".repeat(70)), fc.string({ maxLength: 10 })),
  ),
  fc.tuple(
    fc.constantFrom("forcePathStyle"),
    fc.constantFrom("true", "false", "1", "0", "yes", ""),
  ),
  fc.tuple(
    fc.constantFrom(
      "accessKeyId",
      "secretAccessKey",
      "sessionToken",
      "X-Amz-Signature",
      "X-Amz-Credential",
      "AWS_SECRET_ACCESS_KEY",
      "token",
    ),
    fc.constant(SECRET),
  ),
  fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })),
);

/** `arb`'s values one time in seven, else undefined. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

/** Grammar-built URLs around the three schemes. */
const grammarUrl = fc
  .record({
    scheme: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom("s3", "file", "memory") },
      { weight: 2, arbitrary: fc.constantFrom("S3", "Memory", "http", "s3:", "", "gs", "S3 ") },
    ),
    slashes: fc.oneof(
      { weight: 8, arbitrary: fc.constant("://") },
      { weight: 2, arbitrary: fc.constantFrom(":/", ":", ":///", "://localhost/", ":\\\\") },
    ),
    userinfo: rarely(secretUserinfo),
    host,
    port: rarely(fc.constantFrom(":9000", ":", ":0", ":99999")),
    path: fc.array(segment, { maxLength: 4 }),
    trailing: fc.boolean(),
    params: fc.oneof(
      { weight: 2, arbitrary: fc.constant<[string, string][]>([]) },
      { weight: 1, arbitrary: fc.array<[string, string]>(param, { maxLength: 4 }) },
    ),
    fragment: rarely(fc.constantFrom("#", "#frag", `#${SECRET}`)),
  })
  .map(
    (u) =>
      `${u.scheme}${u.slashes}${u.userinfo ?? ""}${u.host}${u.port ?? ""}` +
      `${u.path.length ? `/${u.path.join("/")}` : ""}${u.trailing ? "/" : ""}` +
      `${u.params.length ? `?${u.params.map(([k, v]) => `${k}=${v.includes("&") || v.includes("?") ? encodeURIComponent(v) : v}`).join("&")}` : ""}` +
      `${u.fragment ?? ""}`,
  );

const anyUrl = fc.oneof(
  { weight: 6, arbitrary: grammarUrl },
  { weight: 2, arbitrary: fc.string({ maxLength: 80, unit: "binary" }) },
  { weight: 1, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("s3://b/".padEnd(5000, "a"), "memory://".padEnd(4097, "m")),
  },
);

/**
 * Whether `url` carries the planted secret only where credentials would go
 * (userinfo, query, fragment). A secret-looking string in the path is just a
 * path, and may be echoed like any path.
 */
function secretIsCredential(url: string): boolean {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(url)?.[0].length ?? 0;
  let rest = url.slice(scheme);
  let authority = "";
  if (rest.startsWith("//")) {
    authority = rest.slice(2).split(/[/?#]/, 1)[0] ?? "";
    rest = rest.slice(2 + authority.length);
  }
  const path = rest.split(/[?#]/, 1)[0] ?? "";
  return url.includes(SECRET) && !path.includes(SECRET);
}

function noSecret(rendered: string, label: string): void {
  if (!secretIsCredential(label)) return;
  expect(rendered.includes(SECRET), `${label}: secret echoed in ${rendered.slice(0, 300)}`).toBe(
    false,
  );
}

function checkLocation(loc: StoreLocation, url: string): void {
  // Credentials never survive parsing.
  noSecret(JSON.stringify(loc), url);
  switch (loc.scheme) {
    case "s3":
      expect(loc.bucket).toMatch(/^[A-Za-z0-9._-]{1,255}$/);
      validatePrefix(loc.prefix);
      expect(loc.prefix.split("/")).not.toContain("..");
      if (loc.endpoint !== undefined) {
        const e = new URL(loc.endpoint);
        expect(["http:", "https:"]).toContain(e.protocol);
        expect(e.username + e.password).toBe("");
        expect(e.search + e.hash).toBe("");
      }
      if (loc.region !== undefined) expect(loc.region).toMatch(/^[A-Za-z0-9-]{1,64}$/);
      return;
    case "memory":
      expect(loc.name).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
      validatePrefix(loc.prefix);
      return;
    case "file":
      expect(loc.path.startsWith("/")).toBe(true);
      expect(loc.path).not.toContain("\u0000");
  }
}

/** Parses `url`: success must keep the invariants, failure must be typed and secret-free. */
function parseChecked(url: string): StoreLocation | undefined {
  try {
    const loc = parseStoreUrl(url);
    checkLocation(loc, url);
    // Userinfo is never accepted (it would be a credential).
    expect(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*@/.test(url), url).toBe(false);
    return loc;
  } catch (err) {
    expectTyped(err, URL_CODES, JSON.stringify(url));
    for (const rendered of [String(err), inspect(err, { depth: 5 }), JSON.stringify(err)]) {
      noSecret(rendered, url);
    }
    return undefined;
  }
}

describe(`fuzz: store URLs (${FUZZ_CASES} cases per property)`, () => {
  test(
    "parseStoreUrl: invariants or InvalidStoreUrlError, never a secret in an error",
    async () => {
      let accepted = 0;
      await assertProperty(
        fc.property(anyUrl, (url) => {
          if (parseChecked(url)) accepted++;
        }),
      );
      // The grammar reaches the accepting paths too.
      expect(accepted).toBeGreaterThan(FUZZ_CASES / 50);
    },
    fuzzTimeout(1),
  );

  test(
    "openStore and openNodeStore: a store without credentials in its url, or a typed error",
    async () => {
      await fc.assert(
        fc.asyncProperty(anyUrl, async (url) => {
          for (const open of [openStore, openNodeStore]) {
            let store: ObjectStore | undefined;
            try {
              store = await open(url, { retry: { maxAttempts: 1 } });
            } catch (err) {
              expectTyped(err, /^STORE_INVALID_(URL|ARGUMENT)$/, JSON.stringify(url));
              noSecret(`${String(err)} ${inspect(err, { depth: 5 })}`, url);
              continue;
            }
            noSecret(store.url, url);
            expect(store.url).not.toMatch(/[?&](accessKeyId|secretAccessKey|X-Amz-)/i);
            await store.close();
          }
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(3),
  );

  /*
   * A file URL never yields a path with a ".." segment, even one hidden behind
   * encoded slashes ("a%2F..%2Fb"): encoded slashes are refused.
   */
  test("file URLs never yield a path with a '..' segment", () => {
    for (const url of [
      "file:///srv/replicas/a%2F..%2F..%2Fetc",
      "file:///srv/replicas/a%2f..",
      "file:///srv/replicas/%2E%2E%2Fetc",
    ]) {
      expect(() => parseStoreUrl(url), url).toThrow(
        expect.objectContaining({ code: "STORE_INVALID_URL" }),
      );
    }
    // Property: whatever is accepted has no "." or ".." segment.
    for (const url of ["file:///srv/a%2Fb", "file:///srv/a%252F..%252Fb", "file:///srv/..%2e"]) {
      let loc: StoreLocation;
      try {
        loc = parseStoreUrl(url);
      } catch (err) {
        expectTyped(err, /^STORE_INVALID_URL$/, url);
        continue;
      }
      const segments = loc.scheme === "file" ? loc.path.split("/") : [];
      expect(segments.includes("..") || segments.includes("."), url).toBe(false);
    }
  });
});
