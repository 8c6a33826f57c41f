// The registry's cluster replica: other nodes' instances are indexed and answered like local ones, never stored
// or checked here, and only their owner may change them.
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/lib/clock.js";
import { startDiscovery } from "../../src/app/index.js";
import { ConflictError } from "../../src/lib/errors.js";
import { compileQuery } from "../../src/registry/query.js";
import type { RegistryChange } from "../../src/registry/registry.js";
import type { ServiceEntry } from "../../src/model/schema.js";
import { MemoryStore, type StoreMutation } from "../../src/store/index.js";
import { serviceEntry } from "../helpers.js";

class RecordingStore extends MemoryStore {
  applied: StoreMutation[] = [];
  override async apply(mutations: readonly StoreMutation[]): Promise<void> {
    this.applied.push(...mutations);
    await super.apply(mutations);
  }
}

const remote = (id: string, over: Partial<ServiceEntry> = {}): ServiceEntry =>
  serviceEntry({ id, nodeId: "n2", address: "10.0.0.9", metadata: { zone: "b" }, tags: ["blue"], ...over });

async function start() {
  const store = new RecordingStore();
  const d = await startDiscovery({ nodeId: "n1", clock: new ManualClock(), store });
  const changes: RegistryChange[] = [];
  d.registry.onChange((c) => changes.push(...c));
  return { d, store, changes };
}

describe("registry replica", () => {
  it("indexes remote instances for queries without storing them, and tells local from remote", async () => {
    const { d, store, changes } = await start();
    await d.registerService({ id: "local-1", name: "web", address: "10.0.0.1", port: 80, tags: ["blue"] });
    // It has a check, which only its owner runs: nothing here may probe it (nothing listens on port 9 anyway).
    d.registry.applyRemote([{ id: "r-1", owner: "n2", entry: remote("r-1", { address: "127.0.0.1", port: 9, healthEndpoint: "/health" }) }]);
    expect(changes.at(-1)).toMatchObject({ id: "r-1", cause: "replica", before: undefined });
    expect(d.registry.query(compileQuery({ tags: ["blue"] })).map((e) => e.id)).toEqual(["local-1", "r-1"]);
    expect(d.registry.query(compileQuery({ metadata: { zone: "b" } })).map((e) => e.id)).toEqual(["r-1"]);
    expect(await d.discoverServices({ name: "web" })).toHaveLength(2); // the query cache follows replica changes
    expect(d.registry.ownerOf("r-1")).toBe("n2");
    expect(d.registry.ownerOf("local-1")).toBe("n1");
    expect(d.registry.ownerOf("nope")).toBeUndefined();
    expect(d.registry.localSize).toBe(1);
    expect([...d.registry.localValues()].map((e) => e.id)).toEqual(["local-1"]);
    expect(store.applied.map((m) => (m.op === "put" ? m.entry.id : m.id))).toEqual(["local-1"]);
    await new Promise((r) => setTimeout(r, 20));
    const stats = await d.getRegistryStats();
    expect(stats.checks).toMatchObject({ checks: 0, scheduled: 0 });
    expect(stats).toMatchObject({ localCount: 1, totalCount: 2 });
    await d.stop();
  });

  it("refuses local writes to another node's instance, but lets a registration take it over", async () => {
    const { d } = await start();
    d.registry.applyRemote([{ id: "r-1", owner: "n2", entry: remote("r-1") }]);
    await expect(d.deregisterService("r-1")).rejects.toBeInstanceOf(ConflictError);
    await expect(d.setMaintenance("r-1", { enable: true })).rejects.toThrow(/registered on node n2/);
    await expect(d.bulk({ deregister: ["r-1"] })).rejects.toMatchObject({ kind: "conflict", details: { items: [{ id: "r-1", code: "owned_elsewhere" }] } });
    expect(d.registry.get("r-1")?.nodeId).toBe("n2");

    const taken = await d.registerService({ id: "r-1", name: "web", address: "10.0.0.1", port: 80 });
    expect(taken.nodeId).toBe("n1");
    expect(d.registry.ownerOf("r-1")).toBe("n1");
    expect(d.registry.remoteOwners().size).toBe(0);
    await d.stop();
  });

  it("keeps a local instance over a remote one with its id, and removes only what the same owner published", async () => {
    const { d, changes } = await start();
    await d.registerService({ id: "x", name: "web", address: "10.0.0.1", port: 80 });
    const n = changes.length;
    d.registry.applyRemote([{ id: "x", owner: "n2", entry: remote("x") }]);
    expect(changes.length).toBe(n);
    expect(d.registry.get("x")?.address).toBe("10.0.0.1");

    d.registry.applyRemote([{ id: "y", owner: "n2", entry: remote("y") }]);
    d.registry.applyRemote([{ id: "y", owner: "n3", entry: remote("y", { nodeId: "n3", address: "10.0.0.3" }) }]);
    d.registry.applyRemote([{ id: "y", owner: "n2", entry: undefined }]); // n2's late delete: y moved to n3
    expect(d.registry.get("y")?.address).toBe("10.0.0.3");
    d.registry.applyRemote([{ id: "y", owner: "n3", entry: undefined }]);
    expect(d.registry.get("y")).toBeUndefined();
    expect(d.registry.size).toBe(1);
    await d.stop();
  });
});
