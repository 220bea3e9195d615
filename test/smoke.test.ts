import { expect, inject, test } from "vitest";

test("fauxqs is reachable", async () => {
  const s3 = inject("s3");
  const res = await fetch(`${s3.endpoint}/${s3.bucket}`);
  expect(res.status).toBeLessThan(500);
});
