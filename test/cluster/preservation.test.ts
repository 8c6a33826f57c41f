// Self-preservation's rule, without etcd (a unit test, as the other machines' tests in test/cluster are).
import { describe, expect, it } from "vitest";
import { SelfPreservation } from "../../src/cluster/preservation.js";
import type { RemoteUpdate } from "../../src/registry/registry.js";
import type { ServiceEntry } from "../../src/model/schema.js";
import { serviceEntry } from "../helpers.js";

const entry = (id: string, nodeId: string): ServiceEntry => serviceEntry({ id, name: "svc", nodeId });
const gone = (id: string, owner: string): RemoteUpdate => ({ id, owner, entry: undefined });

function setup() {
  const sp = new SelfPreservation({ minNodes: 2, share: 0.5, windowMs: 7_000, holdMs: 60_000 });
  // What the replica holds: one instance per node n1..n4.
  const registry = new Map(["n1", "n2", "n3", "n4"].map((n) => [`${n}-svc`, { owner: n, entry: entry(`${n}-svc`, n) }]));
  const current = (id: string) => registry.get(id)?.entry;
  return { sp, registry, current };
}

describe("self-preservation", () => {
  it("evicts a single expired node at once", () => {
    const { sp, current } = setup();
    sp.expired("n1", 1_000, 3);
    const r = sp.filter([gone("n1-svc", "n1")], 1_000, current);
    expect(r).toEqual({ updates: [gone("n1-svc", "n1")], started: false });
    expect(sp.status().active).toBe(false);
  });

  it("holds when at least 2 and more than half of the others expire in one window, bringing back the first", () => {
    const { sp, current } = setup();
    // 4 others known (n1..n4); n1 expires and is evicted...
    sp.expired("n1", 1_000, 3);
    expect(sp.filter([gone("n1-svc", "n1")], 1_000, current).updates).toEqual([gone("n1-svc", "n1")]);
    // ...n2 expires 2 s later: 2 of 4 is not more than half, still evicted.
    sp.expired("n2", 3_000, 2);
    expect(sp.filter([gone("n2-svc", "n2")], 3_000, current).updates).toEqual([gone("n2-svc", "n2")]);
    // n3 too: 3 of 4, hold. n3's removal is dropped, n1's and n2's instances come back.
    sp.expired("n3", 4_000, 1);
    const r = sp.filter([gone("n3-svc", "n3")], 4_000, current);
    expect(r.started).toBe(true);
    expect(r.updates.map((u) => [u.id, u.entry === undefined ? "removed" : "put"])).toEqual([
      ["n1-svc", "put"],
      ["n2-svc", "put"],
    ]);
    expect(sp.status()).toMatchObject({ active: true, heldNodes: ["n1", "n2", "n3"] });
    // Later removals for a held node are held too.
    expect(sp.filter([gone("n2-svc", "n2")], 5_000, current).updates).toEqual([]);
  });

  it("does not count expiries from an earlier window", () => {
    const { sp, current } = setup();
    sp.expired("n1", 1_000, 3);
    sp.filter([gone("n1-svc", "n1")], 1_000, current);
    sp.expired("n2", 9_000, 2); // 8 s later: a new window
    expect(sp.filter([gone("n2-svc", "n2")], 9_000, current)).toEqual({ updates: [gone("n2-svc", "n2")], started: false });
  });

  it("ends when held nodes return, when the hold time is over, or when released", () => {
    const { sp, registry, current } = setup();
    sp.expired("n1", 0, 3);
    sp.expired("n2", 0, 2);
    sp.expired("n3", 0, 1);
    sp.filter([gone("n1-svc", "n1"), gone("n2-svc", "n2"), gone("n3-svc", "n3")], 0, current);
    expect(sp.heldNodes()).toEqual(["n1", "n2", "n3"]);
    expect(sp.release("n1")).toBe(true);
    expect(sp.release("n4")).toBe(false);
    expect(sp.heldNodes()).toEqual(["n2", "n3"]);
    expect(sp.overdue(60_000)).toBe(false);
    expect(sp.overdue(60_001)).toBe(true);
    // n3's id moved to another owner meanwhile: only what the held node still owns is removed.
    registry.set("n3-svc", { owner: "n4", entry: entry("n3-svc", "n4") });
    expect(sp.releaseAll((id) => registry.get(id)?.owner)).toEqual([gone("n2-svc", "n2")]);
    expect(sp.status()).toEqual({ active: false, since: null, heldNodes: [] });
  });
});
