import { describe, expect, test } from "vitest";
import type { RouterReplica } from "../../src/router/connection.js";
import { ReplicaSelector } from "../../src/router/replica-selector.js";

/** A replica whose polls stay in flight until the test settles them. */
function slowReplica(txid: number) {
  const pending: (() => void)[] = [];
  const replica = {
    name: "r",
    txid,
    status: () => ({ txid: replica.txid, lagSeconds: 10 }),
    poll: () => new Promise<void>((resolve) => pending.push(resolve)),
    all: async () => [],
    get: async () => undefined,
  };
  return { replica: replica as typeof replica & RouterReplica, pending };
}

const options = {
  maxLagSeconds: 5,
  tieSeconds: 0.5,
  retryAfterMs: 1000,
  pollKickMs: 200,
  assumePublishedWithinMs: 1000,
};

describe("ReplicaSelector polls", () => {
  test("a lagging replica is kicked once per pollKickMs while its poll is in flight", async () => {
    let now = 0;
    const { replica, pending } = slowReplica(1);
    const selector = new ReplicaSelector([replica], { ...options, now: () => now });
    selector.choose(undefined);
    selector.choose(undefined);
    expect(pending).toHaveLength(1);
    now += 500; // past pollKickMs, but the first poll is still in flight
    selector.choose(undefined);
    expect(pending).toHaveLength(1);
    pending[0]!();
    await Promise.resolve();
    await Promise.resolve();
    selector.choose(undefined);
    expect(pending).toHaveLength(2);
  });

  test("wake(txid) polls even with a poll in flight (it may predate the publish), but not twice", async () => {
    const { replica, pending } = slowReplica(1);
    const selector = new ReplicaSelector([replica], { ...options, now: () => 0 });
    selector.choose(undefined); // a background kick, in flight
    expect(pending).toHaveLength(1);
    selector.wake(2);
    expect(pending).toHaveLength(2);
    selector.wake(3);
    expect(pending).toHaveLength(2);
    // A replica that already has the TXID is left alone.
    replica.txid = 3;
    for (const settle of pending.splice(0)) settle();
    await new Promise((r) => setTimeout(r, 0));
    selector.wake(3);
    expect(pending).toHaveLength(0);
  });
});
