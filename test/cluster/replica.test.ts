// The replica without etcd: this node's real registry, other nodes' writes into an etcd-shaped key space in memory
// (fake-kv.ts), read back as a range or as the watch's events.
import { describe, expect, it } from "vitest";
import { startDiscovery } from "../../src/app/index.js";
import { KeyLayout } from "../../src/cluster/keys.js";
import { SelfPreservation } from "../../src/cluster/preservation.js";
import { Replica } from "../../src/cluster/replica.js";
import { ManualClock } from "../../src/lib/clock.js";
import type { RegistryChange } from "../../src/registry/index.js";
import { serviceEntry } from "../helpers.js";
import { FakeKv } from "./fake-kv.js";
import { captureLog } from "./log.js";

const P = "/hd/test";
const T0 = Date.parse("2026-01-01T00:00:00Z");
const HOLD_MS = 60_000;

async function setup() {
  const d = await startDiscovery({ nodeId: "a", clock: new ManualClock(T0) });
  const kv = new FakeKv();
  const { log, msgs } = captureLog();
  const preservation = new SelfPreservation({ minNodes: 2, share: 0.5, windowMs: 7_000, holdMs: HOLD_MS });
  const replica = new Replica(new KeyLayout(P, "a"), d.registry, preservation, log, 2);
  const changes: RegistryChange[] = [];
  d.registry.onChange((c) => changes.push(...c));
  /** A node joins: its node key and instances on its lease. */
  const join = (node: string, ids: string[], state: "up" | "leaving" = "up") => {
    kv.put(`${P}/nodes/${node}`, JSON.stringify({ v: 1, nodeId: node, apiUrl: `http://${node}:8500`, dns: `${node}:8600`, version: "0.1.0", startedAt: "2026-01-01T00:00:00.000Z", state }), `lease-${node}`);
    for (const id of ids) publish(node, id);
  };
  const publish = (node: string, id: string, port = 80) => kv.put(`${P}/services/${node}/${id}`, JSON.stringify({ v: 1, entry: serviceEntry({ id, nodeId: node, port }) }), `lease-${node}`);
  const resync = (now = T0) => replica.resync(kv.range(`${P}/`).filter((x) => !x.key.toString().startsWith(`${P}/ids/`)), kv.revision, now);
  const deliver = (now = T0) => replica.applyEvents(kv.drain(), now);
  const owners = () => Object.fromEntries([...d.registry.remoteOwners()].sort());
  return { d, kv, replica, preservation, changes, join, publish, resync, deliver, owners, msgs };
}

describe("replica: range read and resync", () => {
  it("builds the replica from one range read: other nodes and their instances, never this node's own", async () => {
    const { d, kv, replica, join, resync, owners, msgs } = await setup();
    join("a", ["mine"]); // this node's keys as etcd holds them
    join("b", ["b1", "b2"]);
    join("c", ["c1"]);
    kv.put(`${P}/services/c/bad`, "{not json", "lease-c");
    resync(T0 + 5);
    expect(owners()).toEqual({ b1: "b", b2: "b", c1: "c" });
    expect(d.registry.get("b1")?.port).toBe(80);
    expect([...replica.nodes.keys()].sort()).toEqual(["b", "c"]);
    expect(replica.revision).toBe(kv.revision);
    expect(replica.lastSyncAt).toBe(T0 + 5);
    expect(replica.resyncs).toBe(1);
    expect(msgs("warn")).toEqual(["ignoring an instance key that does not hold a valid instance"]);
  });

  it("a resync (after a compaction, a watch error, a sync) never clears first: only what changed is applied, deletions included", async () => {
    const { d, kv, join, publish, resync, changes, owners } = await setup();
    join("b", ["b1", "b2", "b3"]);
    resync();
    changes.length = 0;
    kv.delete(`${P}/services/b/b1`); // the deletion's event compacted away
    publish("b", "b2", 81);
    publish("b", "b4");
    kv.drain();
    resync();
    expect(owners()).toEqual({ b2: "b", b3: "b", b4: "b" });
    expect(d.registry.get("b2")?.port).toBe(81);
    expect(changes.map((c) => [c.id, c.after === undefined ? "gone" : c.after.port])).toEqual([
      ["b2", 81],
      ["b4", 80],
      ["b1", "gone"],
    ]);
  });
});

describe("replica: the watch's events", () => {
  it("applies puts and deletes of other nodes' instances, one registry batch per response; replays below the applied revision are skipped", async () => {
    const { d, kv, replica, join, publish, resync, deliver, owners, changes } = await setup();
    join("b", ["b1"]);
    resync();
    const replay = kv.range(`${P}/services/b/b1`).map((x) => ({ type: "Put" as const, kv: { ...x, value: Buffer.from(JSON.stringify({ v: 1, entry: serviceEntry({ id: "b1", port: 1 }) })) } }));
    publish("b", "b2");
    kv.delete(`${P}/services/b/b1`);
    changes.length = 0;
    let batches = 0;
    d.registry.onChange(() => batches++);
    deliver(T0 + 10);
    expect(owners()).toEqual({ b2: "b" });
    expect(batches).toBe(1);
    expect(replica.revision).toBe(kv.revision);
    expect(replica.lastEventAt).toBe(T0 + 10);
    replica.applyEvents(replay, T0 + 20);
    expect(d.registry.get("b1")).toBeUndefined();
  });

  it("this node's own node key is the probe's echo; its own instance keys are ignored", async () => {
    const { kv, replica, join, resync, deliver, owners } = await setup();
    resync();
    join("a", ["mine"]);
    const rev = kv.revision;
    deliver();
    expect(replica.probeSeen).toBe(rev - 1);
    expect(owners()).toEqual({});
    expect(replica.nodes.size).toBe(0);
  });

  it("logs a node that joins, one that leaves, and one whose lease expired (its instances evicted at once, alone)", async () => {
    const { kv, join, resync, deliver, owners, msgs, preservation } = await setup();
    resync();
    join("b", ["b1"]);
    join("c", ["c1"]);
    join("d", ["d1"]);
    deliver();
    join("b", [], "leaving");
    deliver();
    kv.expire("lease-b");
    deliver();
    kv.expire("lease-c");
    deliver(T0 + 8_000); // a window later: one expiry of the two others known
    expect(owners()).toEqual({ d1: "d" });
    expect(preservation.status().active).toBe(false);
    expect(msgs("info")).toEqual(["node joined", "node joined", "node joined", "node leaving", "node left"]);
    expect(msgs("warn")).toEqual(["node gone without leaving: its lease expired"]);
  });
});

describe("replica: mass expiry (self-preservation)", () => {
  async function fourOthers() {
    const s = await setup();
    s.resync();
    for (const n of ["b", "c", "d", "e"]) s.join(n, [`${n}1`]);
    s.deliver();
    return s;
  }

  it("holds the instances of most nodes expiring at once, brings back the first evicted, and lets a node that returns replace its own", async () => {
    const { kv, preservation, deliver, owners, msgs, replica, join } = await fourOthers();
    kv.expire("lease-b");
    deliver(T0 + 1_000);
    expect(owners()).toEqual({ c1: "c", d1: "d", e1: "e" }); // one of four: evicted
    kv.expire("lease-c");
    kv.expire("lease-d");
    deliver(T0 + 2_000);
    expect(owners()).toEqual({ b1: "b", c1: "c", d1: "d", e1: "e" });
    expect(preservation.status()).toEqual({ active: true, since: new Date(T0 + 2_000).toISOString(), heldNodes: ["b", "c", "d"] });
    expect(msgs("warn")).toContain("self-preservation: many nodes expired at once; keeping their instances (stale) instead of evicting them");
    join("c", ["c1"]);
    expect(deliver(T0 + 3_000).released).toEqual(["c"]);
    expect(preservation.heldNodes()).toEqual(["b", "d"]);
    // A resync while holding keeps what is held, even though etcd has none of it.
    replica.resync(kv.range(`${P}/`), kv.revision, T0 + 4_000);
    expect(owners()).toEqual({ b1: "b", c1: "c", d1: "d", e1: "e" });
  });

  it("two of four expiring is not more than half: both evicted", async () => {
    const { kv, preservation, deliver, owners } = await fourOthers();
    kv.expire("lease-b");
    kv.expire("lease-c");
    deliver(T0 + 1_000);
    expect(owners()).toEqual({ d1: "d", e1: "e" });
    expect(preservation.status().active).toBe(false);
  });

  it("ends with a forced sync: the held nodes' instances go", async () => {
    const { kv, preservation, deliver, owners, replica } = await fourOthers();
    kv.expire("lease-b");
    kv.expire("lease-c");
    kv.expire("lease-d");
    deliver(T0 + 1_000);
    expect(preservation.status().active).toBe(true);
    replica.endPreservation("forced sync");
    expect(owners()).toEqual({ e1: "e" });
    expect(preservation.status().active).toBe(false);
  });

  it("ends when the hold time is over: the held nodes' instances go", async () => {
    const { kv, preservation, deliver, owners, replica, msgs } = await fourOthers();
    kv.expire("lease-b");
    kv.expire("lease-c");
    kv.expire("lease-d");
    deliver(T0 + 1_000);
    replica.holdOverdue(T0 + 1_000 + HOLD_MS);
    expect(owners()).toEqual({ b1: "b", c1: "c", d1: "d", e1: "e" });
    replica.holdOverdue(T0 + 1_001 + HOLD_MS);
    expect(owners()).toEqual({ e1: "e" });
    expect(preservation.status().active).toBe(false);
    expect(msgs("warn").at(-1)).toBe("self-preservation ended: evicting the held nodes' instances");
  });
});

describe("replica: routing policies", () => {
  async function withRouting() {
    const base = await setup();
    const replica = new Replica(new KeyLayout(P, "a"), base.d.registry, new SelfPreservation({ minNodes: 2, share: 0.5, windowMs: 7_000, holdMs: HOLD_MS }), captureLog().log, 2, base.d.routing);
    const policy = (name: string, weights: [string, number][], updatedAt = "2026-01-01T00:00:00.000Z") =>
      base.kv.put(`${P}/routing/${name}`, JSON.stringify({ v: 1, split: weights.map(([version, weight]) => ({ version, weight })), updatedAt, nodeId: "b" }));
    const resync = () => replica.resync(base.kv.range(`${P}/`).filter((x) => !x.key.toString().startsWith(`${P}/ids/`)), base.kv.revision, T0);
    const deliver = () => replica.applyEvents(base.kv.drain(), T0);
    const split = (name: string) => base.d.routing.get(name)?.split.map((s) => `${s.version}=${s.weight}`);
    return { ...base, replica, policy, resync, deliver, split };
  }

  it("takes the cluster's policies from the range read and the watch, and drops one etcd no longer holds", async () => {
    const { d, kv, policy, resync, deliver, split } = await withRouting();
    await d.routing.set("old", { split: [{ version: "^1", weight: 100 }] }); // set here before joining: not the cluster's
    policy("web", [["^2", 90], ["^3", 10]]);
    resync();
    expect(split("web")).toEqual(["^2=90", "^3=10"]);
    expect(d.routing.get("old")).toBeUndefined();
    policy("web", [["^3", 100]], "2026-01-01T00:01:00.000Z");
    policy("db", [["^5", 100]]);
    deliver();
    expect(split("web")).toEqual(["^3=100"]);
    expect(split("db")).toEqual(["^5=100"]);
    kv.delete(`${P}/routing/web`);
    kv.put(`${P}/routing/bad`, "{not json");
    deliver();
    expect(d.routing.get("web")).toBeUndefined();
    expect(d.routing.get("bad")).toBeUndefined();
    expect(Object.keys(d.routing.all())).toEqual(["db"]);
  });

  it("an event older than this node's own write of the name does not undo it; the echo of its own write changes nothing", async () => {
    const { d, kv, replica, policy, deliver, split } = await withRouting();
    policy("web", [["^2", 100]]); // another node's write, not yet delivered
    const stored = await d.routing.set("web", { split: [{ version: "^3", weight: 100 }] });
    kv.put(`${P}/routing/web`, JSON.stringify({ v: 1, split: stored!.split, updatedAt: stored!.updatedAt, nodeId: "a" }));
    replica.wroteRouting("web", kv.revision); // what publishRouting records from etcd's answer
    let told = 0;
    d.routing.onChange(() => told++);
    deliver();
    expect(split("web")).toEqual(["^3=100"]);
    expect(told).toBe(0);
  });

  it("a change made here goes to the publisher first; one it refuses is kept nowhere", async () => {
    const { d } = await withRouting();
    const sent: string[] = [];
    let down = false;
    d.routing.setPublisher(async (changes) => {
      if (down) throw new Error("etcd gone");
      sent.push(...changes.map(([name, s]) => `${name}:${s ? s.split.map((x) => x.weight).join("/") : "none"}`));
    });
    await d.routing.set("web", { split: [{ version: "^2", weight: 50 }, { version: "^3", weight: 50 }] });
    down = true;
    await expect(d.routing.set("web", { split: [{ version: "^3", weight: 100 }] })).rejects.toThrow(/etcd gone/);
    await expect(d.routing.set("web", undefined)).rejects.toThrow(/etcd gone/);
    expect(d.routing.get("web")?.split.map((s) => s.weight)).toEqual([50, 50]);
    down = false;
    await d.routing.replaceAll({ db: { split: [{ version: "^1", weight: 100 }] } });
    expect(sent).toEqual(["web:50/50", "web:none", "db:100"]);
  });
});
