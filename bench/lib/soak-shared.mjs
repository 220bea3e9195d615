/**
 * What the soak writer and replicas agree on: the payload of each row, so a
 * replica can tell a right answer from a wrong one without asking the writer.
 */

/** The payload of row `id`: 160-287 characters, different for every id. */
export function payloadOf(id) {
  const word = `#${id}:${(Math.imul(id, 2654435761) >>> 0).toString(36)}|`;
  return word.repeat(Math.ceil(288 / word.length)).slice(0, 160 + (id % 128));
}

/** `sum(v)` over ids lo..hi where v = id % 1000. */
export function sumV(lo, hi) {
  let s = 0;
  for (let id = lo; id <= hi; id++) s += id % 1000;
  return s;
}
