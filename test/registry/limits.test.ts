// Limits keep memory, disk and answers bounded: a write past one is refused with a clear error and changes
// nothing, concurrent writes cannot pass a limit together, and the API says which limit (409, 400, 503).
import { afterEach, describe, expect, it } from "vitest";
import { startDiscovery } from "../../src/app/index.js";
import { ConflictError, InvalidError, UnavailableError } from "../../src/lib/errors.js";
import type { Discovery } from "../../src/registry/index.js";
import { api, startTestServer } from "../helpers.js";

let d: Discovery | undefined;
afterEach(() => d?.stop());
const svc = (id: string, name = "web", metadata: Record<string, string> = {}) => ({ id, name, address: "10.0.0.1", port: 80, metadata });

describe("registry limits", () => {
  it("refuses a new instance past --max-instances, and still takes re-registrations", async () => {
    d = await startDiscovery({ nodeId: "n1", limits: { maxInstances: 3 } });
    for (const id of ["a", "b", "c"]) await d.registerService(svc(id, id));
    const refused = await d.registerService(svc("d", "d")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toBe("the registry holds 3 instances, the most --max-instances allows: deregister some, or raise the limit");
    await expect(d.getService("d")).rejects.toThrow(/not registered/);
    expect((await d.registerService({ ...svc("a", "a"), port: 81 })).port).toBe(81);
    await d.deregisterService("b");
    expect((await d.registerService(svc("d", "d"))).id).toBe("d");
  });

  it("refuses past --max-instances-per-name, counting a renamed instance under its new name", async () => {
    d = await startDiscovery({ nodeId: "n1", limits: { maxInstancesPerName: 2 } });
    await d.registerService(svc("w1"));
    await d.registerService(svc("w2"));
    await expect(d.registerService(svc("w3"))).rejects.toThrow("service web has 2 instances, the most --max-instances-per-name allows");
    await d.registerService(svc("x1", "other"));
    await expect(d.registerService(svc("x1", "web"))).rejects.toBeInstanceOf(ConflictError);
    expect((await d.getService("x1")).name).toBe("other");
  });

  it("lets no burst of concurrent registrations pass a limit together", async () => {
    d = await startDiscovery({ nodeId: "n1", limits: { maxInstances: 3 } });
    const results = await Promise.allSettled(["a", "b", "c", "d", "e"].map((id) => d!.registerService(svc(id, id))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect((await d.getRegistryStats()).totalCount).toBe(3);
  });

  it("refuses metadata past --max-metadata-bytes as bad input", async () => {
    d = await startDiscovery({ nodeId: "n1", limits: { maxMetadataBytes: 64 } });
    const big = await d.registerService(svc("m", "m", { notes: "x".repeat(100) })).catch((e: unknown) => e);
    expect(big).toBeInstanceOf(InvalidError);
    expect((big as Error).message).toBe("invalid service: metadata: 105 bytes of keys and values, more than the 64 --max-metadata-bytes allows");
  });

  it("refuses a blocking query past --max-watchers, and counts each one out when it is answered", async () => {
    d = await startDiscovery({ nodeId: "n1", limits: { maxWatchers: 2 } });
    const { index } = await d.watchServices({ name: "web" });
    const waiting = [d.watchServices({ name: "web" }, { index, waitMs: 60_000 }), d.watchServices({ name: "web" }, { index, waitMs: 60_000 })];
    await expect(d.watchServices({ name: "web" }, { index, waitMs: 60_000 })).rejects.toBeInstanceOf(UnavailableError);
    await d.registerService(svc("w1"));
    expect((await Promise.all(waiting)).map((r) => r.services.length)).toEqual([1, 1]);
    expect((await d.getRegistryStats()).blockingQueries).toBe(0);
  });
});

describe("limits through the API", () => {
  it("answers 409 for a full registry (and a bulk call past it applies nothing), 503 for one watcher too many", async () => {
    const server = await startTestServer({ maxInstances: 2, maxWatchers: 1 });
    try {
      expect((await api(server.url, "PUT", "/v1/services/a", svc("a"))).status).toBe(201);
      const bulk = await api(server.url, "POST", "/v1/services/bulk", { register: [svc("b"), svc("c")] });
      expect(bulk.status).toBe(409);
      expect(bulk.body.error.items).toEqual([expect.objectContaining({ index: 1, id: "c", code: "limit" })]);
      expect((await api(server.url, "GET", "/v1/services/b")).status).toBe(404);
      expect((await api(server.url, "PUT", "/v1/services/b", svc("b"))).status).toBe(201);
      const full = await api(server.url, "PUT", "/v1/services/c", svc("c"));
      expect([full.status, full.body.error.code]).toEqual([409, "limit"]);
      expect(full.body.error.message).toContain("--max-instances");
      const index = (await api(server.url, "GET", "/v1/services?name=web")).headers.get("x-index");
      const held = api(server.url, "GET", `/v1/services?name=web&index=${index}&wait=30s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = await api(server.url, "GET", `/v1/services?name=web&index=${index}&wait=30s`);
      expect([second.status, second.body.error.code]).toEqual([503, "unavailable"]);
      await api(server.url, "DELETE", "/v1/services/a");
      expect((await held).body.count).toBe(1);
    } finally {
      await server.stop();
    }
  });
});
