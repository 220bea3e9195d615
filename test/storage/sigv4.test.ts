import { createHash, createHmac } from "node:crypto";
import { AwsClient } from "aws4fetch";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  encodeComponent,
  encodePath,
  type SigV4Crypto,
  SigV4Signer,
  webCryptoSigV4,
} from "../../src/storage/sigv4.js";
import { nodeSigV4Crypto } from "../../src/storage/sigv4-node.js";

// The example keys of AWS's SigV4 documentation for S3.
const creds = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const implementations: [string, () => SigV4Crypto][] = [
  ["WebCrypto", () => webCryptoSigV4()],
  ["node:crypto", () => nodeSigV4Crypto],
];

describe.each(implementations)("SigV4Signer with %s", (_name, crypto) => {
  test("AWS's documented examples (GET Bucket list objects, GET Bucket lifecycle)", async () => {
    const signer = new SigV4Signer({ region: "us-east-1", crypto: crypto() });
    const list = await signer.sign(
      {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
        headers: { "x-amz-content-sha256": EMPTY_SHA256 },
        datetime: "20130524T000000Z",
      },
      creds,
    );
    expect(list.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, " +
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    const lifecycle = await signer.sign(
      {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/?lifecycle",
        headers: { "x-amz-content-sha256": EMPTY_SHA256 },
        datetime: "20130524T000000Z",
      },
      creds,
    );
    expect(lifecycle.authorization).toMatch(
      /Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543$/,
    );
  });
});

describe("SigV4Signer against aws4fetch (an independent implementation)", () => {
  const token = fc.string({ minLength: 1, maxLength: 12 });
  const request = fc.record({
    method: fc.constantFrom("GET", "HEAD", "PUT", "POST", "DELETE"),
    host: fc.constantFrom(
      "http://127.0.0.1:9000/bucket",
      "https://bucket.s3.eu-west-1.amazonaws.com",
    ),
    key: fc.string({ maxLength: 40, unit: "grapheme" }),
    query: fc.dictionary(
      fc.constantFrom(
        "list-type",
        "prefix",
        "uploadId",
        "partNumber",
        "delete",
        "continuation-token",
      ),
      fc.string({ maxLength: 10, unit: "grapheme" }),
    ),
    headers: fc.dictionary(
      fc.constantFrom(
        "if-none-match",
        "if-match",
        "content-type",
        "range",
        "content-md5",
        "x-amz-meta-note",
        "If-Match",
      ),
      fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/),
    ),
    // Tokens are base64 (a header value: no surrounding spaces).
    sessionToken: fc.option(fc.stringMatching(/^[A-Za-z0-9+/=]{1,24}$/), { nil: undefined }),
    secret: token,
    region: fc.constantFrom("us-east-1", "eu-west-1", "auto"),
    datetime: fc.date({
      min: new Date(2015, 0, 1),
      max: new Date(2035, 0, 1),
      noInvalidDate: true,
    }),
  });

  test.each(implementations)("same headers as aws4fetch, with %s", async (_name, crypto) => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const datetime = r.datetime.toISOString().replace(/[:-]|\.\d{3}/g, "");
        const q = Object.entries(r.query)
          .map(([k, v]) => (v === "" ? k : `${k}=${encodeComponent(v)}`))
          .join("&");
        const url = `${r.host}/${encodePath(r.key)}${q ? `?${q}` : ""}`;
        const keys = {
          accessKeyId: "AKIDEXAMPLE",
          secretAccessKey: r.secret,
          ...(r.sessionToken ? { sessionToken: r.sessionToken } : {}),
        };
        const ours = await new SigV4Signer({ region: r.region, crypto: crypto() }).sign(
          { method: r.method, url, headers: r.headers, datetime },
          keys,
        );
        const theirs = await new AwsClient({ ...keys, service: "s3", region: r.region }).sign(url, {
          method: r.method,
          headers: r.headers,
          aws: { datetime },
        });
        for (const name of [
          "authorization",
          "x-amz-date",
          "x-amz-content-sha256",
          "x-amz-security-token",
        ]) {
          expect(ours[name], name).toBe(theirs.headers.get(name) ?? undefined);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("one derived key per secret and day: a request costs one SHA-256 and one HMAC", async () => {
    let hashes = 0;
    let hmacs = 0;
    const counting: SigV4Crypto = {
      sha256Hex: (t) => {
        hashes++;
        return createHash("sha256").update(t).digest("hex");
      },
      hmac: (k, t) => {
        hmacs++;
        return createHmac("sha256", k).update(t).digest();
      },
    };
    const signer = new SigV4Signer({ region: "us-east-1", crypto: counting });
    const req = {
      method: "GET",
      url: "https://b.s3.amazonaws.com/k",
      datetime: "20260101T000000Z",
    };
    await signer.sign(req, creds);
    expect([hashes, hmacs]).toEqual([1, 5]);
    await signer.sign(req, creds);
    expect([hashes, hmacs]).toEqual([2, 6]);
    await signer.sign({ ...req, datetime: "20260102T000000Z" }, creds);
    expect([hashes, hmacs]).toEqual([3, 11]);
    await signer.sign(
      { ...req, datetime: "20260102T000000Z" },
      { ...creds, secretAccessKey: "other" },
    );
    expect([hashes, hmacs]).toEqual([4, 16]);
  });
});
