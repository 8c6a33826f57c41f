import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/lib/clock.js";
import { startDiscovery } from "../../src/app/index.js";
import { InvalidError, NotFoundError } from "../../src/lib/errors.js";
import { compileQuery, serviceQuerySchema } from "../../src/registry/query.js";
import type { RegistryChange } from "../../src/registry/registry.js";
import type { ServiceEntry } from "../../src/model/schema.js";
import { MemoryStore, type Store, type StoreMutation } from "../../src/store/index.js";

const svc = (id: string, over: Record<string, unknown> = {}) => ({ id, name: "web", address: "10.0.0.1", port: 80, ...over });

async function start(opts: { store?: Store; clock?: ManualClock; cacheTtlMs?: number } = {}) {
  const clock = opts.clock ?? new ManualClock();
  const d = await startDiscovery({ nodeId: "n1", clock, ...(opts.store ? { store: opts.store } : {}), ...(opts.cacheTtlMs !== undefined ? { cacheTtlMs: opts.cacheTtlMs } : {}) });
  return { d, clock };
}

/** A store whose writes can be held back or failed, to see what the registry does meanwhile. */
class ControlledStore extends MemoryStore {
  fail = false;
  gate: Promise<void> | undefined;
  applied: StoreMutation[][] = [];
  override async apply(mutations: readonly StoreMutation[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.fail) throw new Error("disk full");
    this.applied.push([...mutations]);
    await super.apply(mutations);
  }
}

describe("registry writes", () => {
  it("sets server-managed fields itself and ignores the client's", async () => {
    const { d, clock } = await start();
    const e = await d.registerService({ ...svc("a"), healthStatus: "unhealthy", registeredAt: "2000-01-01T00:00:00Z", lastHealthCheck: "2000-01-01T00:00:00Z" } as never);
    expect(e).toMatchObject({ healthStatus: "healthy", registeredAt: new Date(clock.now()).toISOString(), lastHealthCheck: null, nodeId: "n1" });
    expect(Object.isFrozen(e) && Object.isFrozen(e.tags) && Object.isFrozen(e.metadata)).toBe(true);
  });

  it("starts an instance with a check as unknown, one without as healthy", async () => {
    const { d } = await start();
    expect((await d.registerService(svc("a", { healthEndpoint: "/health" }))).healthStatus).toBe("unknown");
    expect((await d.registerService(svc("b", { ttl: 10_000 }))).healthStatus).toBe("unknown");
    expect((await d.registerService(svc("c"))).healthStatus).toBe("healthy");
  });

  it("replaces an entry atomically on re-registration, indexes included", async () => {
    const { d } = await start();
    await d.registerService(svc("a", { tags: ["old"], nodeId: "n2", metadata: { k: "1" } }));
    await d.registerService(svc("a", { name: "api", tags: ["new"] }));
    expect(await d.discoverServices({ name: "web" })).toEqual([]);
    expect(await d.discoverServices({ tags: ["old"] })).toEqual([]);
    expect(await d.discoverServices({ nodeId: "n2" })).toEqual([]);
    expect((await d.discoverServices({ tags: ["new"] })).map((e) => e.id)).toEqual(["a"]);
    expect((await d.getService("a")).metadata).toEqual({});
    expect(d.registry.size).toBe(1);
  });

  it("keeps the health of a re-registered instance whose check did not change, resets it when it did", async () => {
    const { d } = await start();
    await d.registerService(svc("a", { healthEndpoint: "/h" }));
    d.registry.setHealth("a", "healthy");
    expect((await d.registerService(svc("a", { healthEndpoint: "/h", tags: ["x"] }))).healthStatus).toBe("healthy");
    expect((await d.registerService(svc("a", { healthEndpoint: "/other" }))).healthStatus).toBe("unknown");
  });

  it("bumps the generation and publishes every change on the feed", async () => {
    const { d } = await start();
    const seen: { changes: readonly RegistryChange[]; generation: number }[] = [];
    d.registry.onChange((changes, generation) => seen.push({ changes, generation }));
    const g0 = d.registry.generation;
    const a = await d.registerService(svc("a"));
    const a2 = await d.registerService(svc("a", { port: 81 }));
    d.registry.setHealth("a", "degraded");
    await d.deregisterService("a");
    expect(seen.map((s) => s.generation)).toEqual([g0 + 1, g0 + 2, g0 + 3, g0 + 4]);
    expect(seen.map((s) => s.changes.map((c) => c.cause))).toEqual([["register"], ["register"], ["health"], ["deregister"]]);
    expect(seen[0]!.changes[0]).toMatchObject({ id: "a", before: undefined, after: a });
    expect(seen[1]!.changes[0]).toMatchObject({ before: a, after: a2 });
    expect(seen[3]!.changes[0]!.after).toBeUndefined();
  });

  it("keeps going when a subscriber throws", async () => {
    const { d } = await start();
    d.registry.onChange(() => {
      throw new Error("broken subscriber");
    });
    await d.registerService(svc("a"));
    expect(d.registry.get("a")).toBeDefined();
  });

  it("changes nothing when the store refuses a write", async () => {
    const store = new ControlledStore();
    const { d } = await start({ store });
    await d.registerService(svc("a"));
    const g = d.registry.generation;
    let events = 0;
    d.registry.onChange(() => events++);
    store.fail = true;
    await expect(d.registerService(svc("a", { port: 99 }))).rejects.toThrow("disk full");
    await expect(d.registerService(svc("b"))).rejects.toThrow("disk full");
    await expect(d.deregisterService("a")).rejects.toThrow("disk full");
    expect(d.registry.get("a")?.port).toBe(80);
    expect(d.registry.get("b")).toBeUndefined();
    expect(d.registry.generation).toBe(g);
    expect(events).toBe(0);
    store.fail = false;
    expect((await d.registerService(svc("b"))).id).toBe("b");
  });

  it("acknowledges a write only after the store has it, and applies concurrent writes in order", async () => {
    const store = new ControlledStore();
    const { d } = await start({ store });
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const first = d.registerService(svc("a", { port: 1 }));
    const second = d.registerService(svc("a", { port: 2 }));
    await new Promise((r) => setTimeout(r, 10));
    expect(d.registry.get("a")).toBeUndefined(); // not durable yet, so not visible
    open();
    await Promise.all([first, second]);
    expect(d.registry.get("a")?.port).toBe(2);
    expect(store.applied.map((b) => (b[0] as { entry: ServiceEntry }).entry.port)).toEqual([1, 2]);
  });

  it("restores what the store holds; instances with checks come back unknown", async () => {
    const store = new MemoryStore();
    const first = await start({ store });
    await first.d.registerService(svc("a", { healthEndpoint: "/h" }));
    await first.d.registerService(svc("b"));
    first.d.registry.setHealth("a", "healthy");
    const second = await start({ store });
    expect(second.d.registry.get("a")?.healthStatus).toBe("unknown");
    expect(second.d.registry.get("b")?.healthStatus).toBe("healthy");
  });

  it("deregistering an unknown id is a NotFoundError", async () => {
    const { d } = await start();
    await expect(d.deregisterService("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(d.getService("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(d.deregisterService("bad/id")).rejects.toBeInstanceOf(InvalidError);
  });
});

describe("bulk writes", () => {
  it("applies everything in one generation", async () => {
    const { d } = await start();
    await d.registerService(svc("old"));
    const g = d.registry.generation;
    const r = await d.bulk({ register: [svc("a"), svc("b", { name: "api" })], deregister: ["old"] });
    expect(r.registered.map((e) => e.id)).toEqual(["a", "b"]);
    expect(r.deregistered).toEqual(["old"]);
    expect(r.generation).toBe(g + 1);
    expect(d.registry.size).toBe(2);
  });

  it("is all-or-nothing, with an error per bad item", async () => {
    const { d } = await start();
    await d.registerService(svc("keep"));
    const before = d.registry.get("keep");
    const err = await d.bulk({ register: [svc("a"), { id: "b", name: "-bad", address: "10.0.0.1", port: 0 } as never], deregister: ["keep", "missing", "a"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidError);
    const items = (err as InvalidError).details?.items as { index: number; code: string; message: string }[];
    expect(items.map((i) => [i.index, i.code])).toEqual([
      [1, "invalid"],
      [3, "not_found"],
      [4, "conflict"],
    ]);
    expect(items[0]!.message).toContain("name: must be a DNS label");
    expect(items[0]!.message).toContain("port: must be 1-65535");
    expect(d.registry.get("a")).toBeUndefined();
    expect(d.registry.get("keep")).toBe(before);
  });
});

describe("the query cache", () => {
  it("serves repeated queries from cache and counts hits and misses", async () => {
    const { d } = await start();
    await d.registerService(svc("a"));
    await d.discoverServices({ name: "web" });
    await d.discoverServices({ name: "web" });
    await d.discoverServices({ name: "WEB" });
    const { cache } = await d.getRegistryStats();
    expect(cache).toMatchObject({ entries: 1, hits: 2, misses: 1 });
  });

  it("never serves a stale result: a change to the queried name invalidates, others do not", async () => {
    const { d } = await start();
    await d.registerService(svc("a"));
    expect((await d.discoverServices({ name: "web" })).length).toBe(1);
    expect((await d.discoverServices({ tags: ["x"] })).length).toBe(0);
    await d.registerService(svc("other", { name: "api" })); // unrelated name: web stays cached
    expect(d.cache.stats().entries).toBe(1); // the name-less query was dropped, the web query kept
    expect((await d.discoverServices({ name: "web" })).length).toBe(1);
    expect(d.cache.stats().hits).toBe(1);
    await d.registerService(svc("b", { tags: ["x"] }));
    expect((await d.discoverServices({ name: "web" })).map((e) => e.id)).toEqual(["a", "b"]);
    expect((await d.discoverServices({ tags: ["x"] })).map((e) => e.id)).toEqual(["b"]);
    d.registry.setHealth("a", "unhealthy");
    expect((await d.discoverServices({ name: "web", healthStatus: "healthy" })).map((e) => e.id)).toEqual(["b"]);
    await d.deregisterService("b");
    expect((await d.discoverServices({ name: "web", healthStatus: "healthy" })).map((e) => e.id)).toEqual([]);
    // renaming an instance invalidates queries on its old and its new name
    await d.discoverServices({ name: "api" });
    await d.registerService(svc("a", { name: "api" }));
    expect((await d.discoverServices({ name: "web" })).map((e) => e.id)).toEqual([]);
    expect((await d.discoverServices({ name: "api" })).map((e) => e.id)).toEqual(["a", "other"]);
  });

  it("expires results after the TTL", async () => {
    const { d, clock } = await start({ cacheTtlMs: 1_000 });
    await d.discoverServices({ name: "web" });
    clock.advance(999);
    await d.discoverServices({ name: "web" });
    clock.advance(1);
    await d.discoverServices({ name: "web" });
    expect(d.cache.stats()).toMatchObject({ hits: 1, misses: 2 });
  });

  it("clearCache empties it", async () => {
    const { d } = await start();
    await d.discoverServices({ name: "web" });
    await d.discoverServices({ name: "api" });
    expect(await d.clearCache()).toEqual({ cleared: 2 });
    expect(d.cache.stats().entries).toBe(0);
  });

  it("agrees with an uncached scan after every one of many random changes", async () => {
    const { d } = await start();
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const names = ["web", "api", "db"];
    const tags = ["prod", "eu", "canary"];
    const statuses = ["healthy", "degraded", "unhealthy", "unknown"] as const;
    const queries = [
      {},
      { name: "web" },
      { name: "api", tags: ["prod"] },
      { tags: ["eu"] },
      { healthStatus: "healthy" as const },
      { name: "db", metadata: { team: "t1" } },
      { nodeId: "n2" },
      { version: "^1.1" },
    ];
    for (let step = 0; step < 400; step++) {
      const id = `i${rand(12)}`;
      const action = rand(10);
      if (action < 5) {
        await d.registerService({
          id,
          name: names[rand(3)]!,
          address: "10.0.0.1",
          port: 1 + rand(1000),
          version: `1.${rand(3)}.0`,
          nodeId: `n${rand(3)}`,
          tags: tags.filter(() => rand(2) === 0),
          metadata: { team: `t${rand(2)}` },
        });
      } else if (action < 7) {
        if (d.registry.get(id)) await d.deregisterService(id);
      } else {
        d.registry.setHealth(id, statuses[rand(4)]!);
      }
      for (const query of queries) {
        const cached = await d.discoverServices(query);
        const fresh = d.registry.query(compileQuery(serviceQuerySchema.parse(query)));
        expect(cached).toEqual(fresh);
      }
    }
    expect(d.cache.stats().hits).toBeGreaterThan(0);
  });
});
