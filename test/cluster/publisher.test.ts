// The publisher without etcd: this node's real registry (a manual clock, a memory store) and an etcd-shaped key
// space in memory (fake-kv.ts) that evaluates the claims' compares as etcd does.
import { describe, expect, it } from "vitest";
import { startDiscovery } from "../../src/app/index.js";
import { KeyLayout } from "../../src/cluster/keys.js";
import { IDS_PER_TXN, Publisher } from "../../src/cluster/publisher.js";
import { ManualClock } from "../../src/lib/clock.js";
import { MemoryStore, type StoreMutation } from "../../src/store/index.js";
import { serviceEntry } from "../helpers.js";
import { FakeKv } from "./fake-kv.js";
import { captureLog } from "./log.js";

const P = "/hd/test";
const svc = (id: string, over: Record<string, unknown> = {}) => ({ id, name: "web", address: "10.0.0.1", port: 80, ...over });

/** A store whose writes can be held back or failed (a full disk). */
class ControlledStore extends MemoryStore {
  fail = false;
  gate: Promise<void> | undefined;
  override async apply(mutations: readonly StoreMutation[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.fail) throw new Error("disk full");
    await super.apply(mutations);
  }
}

async function setup() {
  const store = new ControlledStore();
  const d = await startDiscovery({ nodeId: "a", clock: new ManualClock(), store });
  const kv = new FakeKv();
  const { log, msgs } = captureLog();
  const pub = new Publisher(new KeyLayout(P, "a"), d.registry, log);
  const kicks = { soon: 0, now: 0 };
  pub.attach(d.registry, { soon: () => kicks.soon++, now: () => kicks.now++ });
  let lease: string | undefined = "100";
  const flush = () => pub.flush(kv, () => lease);
  const published = (id: string) => JSON.parse(kv.value(`${P}/services/a/${id}`) ?? "null")?.entry;
  return { d, store, kv, pub, kicks, flush, published, msgs, setLease: (l: string | undefined) => (lease = l) };
}

describe("publisher: pending writes", () => {
  it("publishes a registration when it is planned, with its claim, in one txn; the commit adds nothing", async () => {
    const { d, kv, pub, kicks, flush, published } = await setup();
    await d.registerService(svc("x"));
    expect(kicks.soon).toBeGreaterThan(0);
    expect([...pub.pending.keys()]).toEqual(["x"]);
    expect(await flush()).toEqual({ recheck: false, reread: false });
    expect(kv.txns).toHaveLength(1);
    expect(kv.txns[0]!.compare).toEqual([{ key: Buffer.from(`${P}/ids/x`), target: "Create", result: "Equal", create_revision: 0 }]);
    expect(published("x")).toMatchObject({ id: "x", address: "10.0.0.1" });
    expect(kv.value(`${P}/ids/x`)).toBe("a");
    expect(kv.leaseOf(`${P}/services/a/x`)).toBe("100");
    expect(pub.pending.size).toBe(0);
    await flush();
    expect(kv.txns).toHaveLength(1);
    expect(pub.counters.published).toBe(1);
  });

  it("coalesces by id (latest wins) and writes 64 ids (128 ops) per txn, in order", async () => {
    const { d, kv, flush, published } = await setup();
    for (let i = 0; i < 130; i++) await d.registerService(svc(`s${String(i).padStart(3, "0")}`));
    await d.registerService(svc("s000", { port: 81 }));
    await flush();
    expect(kv.txns.map((t) => t.success!.length)).toEqual([2 * IDS_PER_TXN, 2 * IDS_PER_TXN, 4]);
    expect(kv.txns[0]!.success![0]!.request_put!.key!.toString()).toBe(`${P}/services/a/s000`);
    expect(published("s000").port).toBe(81);
    expect(kv.keys(`${P}/services/a/`)).toHaveLength(130);
  });

  it("a deregistration deletes the instance and its claim if ours; one never published sends nothing", async () => {
    const { d, kv, flush } = await setup();
    await d.registerService(svc("x"));
    await flush();
    await d.deregisterService("x");
    await flush();
    expect(kv.txns[1]!.compare).toEqual([{ key: Buffer.from(`${P}/ids/x`), target: "Value", result: "Equal", value: Buffer.from("a") }]);
    expect(kv.keys()).toEqual([]);
    await d.registerService(svc("y"));
    await d.deregisterService("y");
    await flush();
    expect(kv.txns).toHaveLength(2);
  });

  it("checks that changed nothing are not published, a health change is", async () => {
    const { d, pub, flush } = await setup();
    await d.registerService(svc("x", { ttl: 10_000 }));
    await flush();
    d.registry.setHealth("x", "healthy");
    expect([...pub.pending.keys()]).toEqual(["x"]);
    await flush();
    d.registry.setHealth("x", "healthy");
    expect(pub.pending.size).toBe(0);
  });

  it("a local write that fails after its early publish: what the registry holds is published again", async () => {
    const { d, store, kicks, flush, published } = await setup();
    await d.registerService(svc("x", { port: 80 }));
    await flush();
    let open!: () => void;
    store.gate = new Promise((r) => (open = r));
    store.fail = true;
    const write = d.registerService(svc("x", { port: 81 }));
    await flush(); // while the store syncs
    expect(published("x").port).toBe(81);
    open();
    await expect(write).rejects.toThrow();
    expect(kicks.now).toBe(1);
    await flush();
    expect(published("x").port).toBe(80);
    expect(d.registry.get("x")?.port).toBe(80);
  });

  it("etcd gone: the flush fails and everything stays pending; the next flush publishes it", async () => {
    const { d, kv, pub, flush, published } = await setup();
    await d.registerService(svc("x"));
    kv.down = new Error("14 UNAVAILABLE: No connection established");
    await expect(flush()).rejects.toThrow("UNAVAILABLE");
    await d.registerService(svc("y"));
    expect([...pub.pending.keys()].sort()).toEqual(["x", "y"]);
    kv.down = undefined;
    await flush();
    expect([published("x")?.id, published("y")?.id]).toEqual(["x", "y"]);
  });

  it("stops when the lease is gone mid-way (lost), leaving the rest pending", async () => {
    const { d, kv, pub, flush, setLease } = await setup();
    for (let i = 0; i < IDS_PER_TXN + 1; i++) await d.registerService(svc(`s${i}`));
    const txn = kv.txn.bind(kv);
    kv.txn = async (req) => {
      setLease(undefined);
      return txn(req);
    };
    await flush();
    expect(kv.txns).toHaveLength(1);
    expect(pub.pending.size).toBe(1);
  });
});

describe("publisher: claims", () => {
  it("an id another node holds: the published one wins; this node drops its copy and reads the replica again", async () => {
    const { d, kv, pub, flush, msgs } = await setup();
    kv.put(`${P}/ids/x`, "b", "200");
    kv.put(`${P}/services/b/x`, JSON.stringify({ v: 1, entry: serviceEntry({ id: "x" }) }), "200");
    await d.registerService(svc("x"));
    expect(await flush()).toEqual({ recheck: false, reread: true });
    expect(d.registry.get("x")).toBeUndefined(); // deregistered here, so a restart does not bring it back
    expect(kv.value(`${P}/ids/x`)).toBe("b");
    expect(kv.keys(`${P}/services/a/`)).toEqual([]);
    expect(pub.conflicts()).toEqual(["x"]);
    expect(pub.counters.publishFailures).toBe(1);
    expect(msgs("warn")).toEqual(["instance id already published by another node: dropping this node's copy; the other node's is served"]);
    expect(pub.pending.size).toBe(0);
  });

  it("one id held elsewhere fails the batch's txn, not its other ids", async () => {
    const { d, kv, flush, published } = await setup();
    kv.put(`${P}/ids/x`, "b");
    for (const id of ["w", "x", "y"]) await d.registerService(svc(id));
    await flush();
    expect(kv.txns[0]!.success).toHaveLength(6); // the batch, refused
    expect([published("w")?.id, published("x"), published("y")?.id]).toEqual(["w", undefined, "y"]);
  });

  it("lists the latest 20 ids given up", async () => {
    const { d, kv, pub, flush } = await setup();
    for (let i = 0; i < 25; i++) {
      kv.put(`${P}/ids/c${String(i).padStart(2, "0")}`, "b");
      await d.registerService(svc(`c${String(i).padStart(2, "0")}`));
    }
    await flush();
    expect(pub.conflicts()).toEqual(Array.from({ length: 20 }, (_, i) => `c${String(i + 5).padStart(2, "0")}`));
  });

  it("a claim of this node's it did not know of (a previous run's) is taken over", async () => {
    const { d, kv, pub, flush, published } = await setup();
    kv.put(`${P}/ids/x`, "a", "50");
    await d.registerService(svc("x"));
    expect(await flush()).toEqual({ recheck: false, reread: false });
    expect(published("x")?.id).toBe("x");
    expect(kv.leaseOf(`${P}/ids/x`)).toBe("100");
    expect(pub.conflicts()).toEqual([]);
  });

  it("a claim that changed hands between the two calls: looked at again on a pass of its own", async () => {
    const { d, kv, pub, flush } = await setup();
    kv.put(`${P}/ids/x`, "a", "50");
    await d.registerService(svc("x"));
    const txn = kv.txn.bind(kv);
    kv.txn = async (req) => {
      if (kv.txns.length === 2) kv.put(`${P}/ids/x`, "b", "200"); // before the third: the batch, the free claim, ours
      return txn(req);
    };
    expect(await flush()).toEqual({ recheck: true, reread: false });
    expect(kv.txns).toHaveLength(3);
    expect(d.registry.get("x")).toBeDefined(); // nothing dropped on a claim seen changing
    expect(pub.conflicts()).toEqual([]);
  });

  it("deleting an id whose claim is another node's deletes only this node's instance key", async () => {
    const { d, kv, flush } = await setup();
    await d.registerService(svc("x"));
    await flush();
    kv.put(`${P}/ids/x`, "b", "200"); // taken over while this node was away
    await d.deregisterService("x");
    await flush();
    expect(kv.keys()).toEqual([`${P}/ids/x`]);
    expect(kv.value(`${P}/ids/x`)).toBe("b");
  });
});

describe("publisher: anti-entropy", () => {
  it("on a new lease: every local instance again, on it; what etcd holds that the store lacks, deleted", async () => {
    const { d, kv, pub, flush, published } = await setup();
    await d.registerService(svc("x"));
    pub.pending.clear(); // as if published on the previous lease
    kv.put(`${P}/services/a/old`, JSON.stringify({ v: 1, entry: serviceEntry({ id: "old" }) }), "1");
    kv.put(`${P}/ids/old`, "a", "1");
    expect(pub.republishAll(new Set(["old"]))).toBe(1);
    await flush();
    expect(published("x")?.id).toBe("x");
    expect(kv.leaseOf(`${P}/services/a/x`)).toBe("100");
    expect(kv.keys()).toEqual([`${P}/ids/x`, `${P}/services/a/x`]);
  });

  it("while running: a lost key, a changed value, a stale lease and a key the store lacks are published again; lastHealthCheck alone is not", async () => {
    const { d, kv, pub, flush, msgs } = await setup();
    for (const id of ["v", "w", "x", "y", "z"]) await d.registerService(svc(id));
    await flush();
    const entryOf = (id: string) => JSON.parse(kv.value(`${P}/services/a/${id}`)!).entry;
    kv.delete(`${P}/services/a/v`);
    kv.put(`${P}/services/a/w`, JSON.stringify({ v: 1, entry: { ...entryOf("w"), port: 9 } }), "100");
    kv.put(`${P}/services/a/x`, JSON.stringify({ v: 1, entry: entryOf("x") }), "99");
    kv.put(`${P}/services/a/y`, JSON.stringify({ v: 1, entry: { ...entryOf("y"), lastHealthCheck: "2026-01-01T00:00:05.000Z" } }), "100");
    kv.put(`${P}/services/a/gone`, JSON.stringify({ v: 1, entry: serviceEntry({ id: "gone" }) }), "100");
    expect(pub.check(kv.range(`${P}/services/a/`), "100")).toBe(4);
    expect([...pub.pending.keys()].sort()).toEqual(["gone", "v", "w", "x"]);
    await flush();
    expect(pub.check(kv.range(`${P}/services/a/`), "100")).toBe(0);
    expect(kv.keys(`${P}/services/a/`)).toEqual(["v", "w", "x", "y", "z"].map((id) => `${P}/services/a/${id}`));
    expect(msgs("warn")).toEqual([]);
  });
});
