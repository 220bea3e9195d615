/**
 * ETags travel unquoted through pagecast (`abc`, not `"abc"`); servers and
 * callers may add quotes or a weak prefix, which these helpers drop.
 */

/** `"abc"`, `W/"abc"` and `abc` all become `abc`. */
export function unquoteEtag(etag: string): string {
  let tag = etag.trim();
  if (tag.startsWith("W/")) tag = tag.slice(2);
  if (tag.length >= 2 && tag.startsWith('"') && tag.endsWith('"')) tag = tag.slice(1, -1);
  return tag;
}

/** Whether two ETags name the same version, ignoring quoting. */
export function sameEtag(a: string, b: string): boolean {
  return unquoteEtag(a) === unquoteEtag(b);
}
