import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceEntrySchema } from "../../src/model/schema.js";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";

let server: ServerHandle;
let base: string;
const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => api(base, method, path, body, headers);

beforeAll(async () => {
  server = await startTestServer();
  base = server.url;
});
afterAll(() => server.stop());

describe("HTTP API", () => {
  it("registers (201), replaces (200), reads and deregisters an instance", async () => {
    const body = { name: "Web-API", version: "1.2.0", address: "10.0.0.5", port: 8080, tags: ["Prod"], metadata: { team: "platform" } };
    const created = await call("PUT", "/v1/services/web-1", body);
    expect(created.status).toBe(201);
    expect(created.headers.get("content-type")).toContain("application/json");
    expect(created.body).toMatchObject({ id: "web-1", name: "web-api", tags: ["prod"], nodeId: "test-node", healthStatus: "healthy", healthCheckInterval: 30000 });
    expect(Date.parse(created.body.registeredAt)).not.toBeNaN();
    expect(serviceEntrySchema.safeParse(created.body).error).toBeUndefined();

    const replaced = await call("PUT", "/v1/services/web-1", { ...created.body, port: 9090 });
    expect(replaced.status).toBe(200);
    expect(replaced.body.port).toBe(9090);

    expect((await call("GET", "/v1/services/web-1")).body.port).toBe(9090);
    const gone = await call("DELETE", "/v1/services/web-1");
    expect(gone.status).toBe(200);
    expect(gone.body.id).toBe("web-1");
    expect((await call("GET", "/v1/services/web-1")).status).toBe(404);
  });

  it("queries by every filter, in a stable order", async () => {
    await call("POST", "/v1/services/bulk", {
      register: [
        { id: "q-3", name: "q", version: "2.3.0", address: "10.0.0.3", port: 3, nodeId: "nas", tags: ["prod", "eu"], metadata: { team: "platform" } },
        { id: "q-1", name: "q", version: "1.4.0", address: "10.0.0.1", port: 1, nodeId: "pi", tags: ["prod"], metadata: { team: "data" } },
        { id: "q-2", name: "q", version: "2.0.1", address: "10.0.0.2", port: 2, nodeId: "nas", tags: ["canary"], metadata: { team: "platform", tier: "1" } },
      ],
    });
    const ids = async (qs: string) => {
      const r = await call("GET", `/v1/services?${qs}`);
      expect(r.status).toBe(200);
      expect(r.body.count).toBe(r.body.services.length);
      return r.body.services.map((s: { id: string }) => s.id);
    };
    expect(await ids("name=q")).toEqual(["q-1", "q-2", "q-3"]);
    expect(await ids("name=Q&version=^2")).toEqual(["q-2", "q-3"]);
    expect(await ids(`name=q&version=${encodeURIComponent(">=1.2 <2")}`)).toEqual(["q-1"]);
    expect(await ids("name=q&tag=prod")).toEqual(["q-1", "q-3"]);
    expect(await ids("name=q&tag=prod&tag=eu")).toEqual(["q-3"]);
    expect(await ids("name=q&tag=prod,eu")).toEqual(["q-3"]);
    expect(await ids("name=q&node=nas")).toEqual(["q-2", "q-3"]);
    expect(await ids("name=q&meta.team=platform")).toEqual(["q-2", "q-3"]);
    expect(await ids("name=q&meta.team=platform&meta.tier=1")).toEqual(["q-2"]);
    expect(await ids("name=q&health=healthy")).toEqual(["q-1", "q-2", "q-3"]);
    expect(await ids("name=q&health=unhealthy")).toEqual([]);
    expect(await ids("name=nothing")).toEqual([]);
  });

  it("answers a cached query with the registry's latest state", async () => {
    const r1 = await call("GET", "/v1/services?name=fresh");
    expect(r1.body.count).toBe(0);
    await call("PUT", "/v1/services/fresh-1", { name: "fresh", address: "10.0.0.9", port: 1 });
    expect((await call("GET", "/v1/services?name=fresh")).body.count).toBe(1);
    await call("DELETE", "/v1/services/fresh-1");
    expect((await call("GET", "/v1/services?name=fresh")).body.count).toBe(0);
  });

  it("rejects bad queries with 400 and a message", async () => {
    for (const qs of ["tags=x", "name=-bad", "health=sick", "name=a&name=b", "meta.=x", "meta.k=a&meta.k=b"]) {
      const r = await call("GET", `/v1/services?${qs}`);
      expect(r.status, qs).toBe(400);
      expect(r.body.error.code).toBe("invalid");
      expect(r.body.error.message).toMatch(/^invalid query/);
    }
    // Named as the URL names them (health, node, meta.<key>), not as the query object's fields.
    const sick = (await call("GET", "/v1/services?health=sick")).body.error;
    expect(sick.issues[0].path).toEqual(["health"]);
    expect(sick.message).toMatch(/^invalid query: health: /);
    expect((await call("GET", `/v1/services?meta.team=${"x".repeat(513)}`)).body.error.issues[0].path).toEqual(["meta", "team"]);
  });

  it("rejects bad input with 4xx, never 500, and loses nothing", async () => {
    await call("PUT", "/v1/services/keep", { name: "keep", address: "10.0.0.1", port: 1 });
    const before = (await call("GET", "/v1/services/keep")).body;

    const invalid = await call("PUT", "/v1/services/keep", { name: "keep", address: "not an address", port: 70000 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.issues.map((i: { path: string[] }) => i.path[0])).toEqual(["address", "port"]);

    const mismatch = await call("PUT", "/v1/services/keep", { id: "other", name: "keep", address: "10.0.0.1", port: 1 });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.message).toContain("does not match");

    expect((await call("PUT", "/v1/services/keep", "{not json")).status).toBe(400);
    expect((await call("PUT", "/v1/services/keep", "[1,2]")).status).toBe(400);
    expect((await call("PUT", "/v1/services/keep", "null")).status).toBe(400);
    const noType = await call("PUT", "/v1/services/keep", JSON.stringify(before), { "content-type": "text/plain" });
    expect(noType.status).toBe(415);
    expect(noType.body.error.code).toBe("unsupported_media_type");
    expect((await call("PUT", "/v1/services/bad%2Fid", { name: "x", address: "10.0.0.1", port: 1 })).status).toBe(400);
    const big = await call("PUT", "/v1/services/keep", JSON.stringify({ name: "keep", address: "10.0.0.1", port: 1, metadata: { a: "x".repeat(2 * 1024 * 1024) } }));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("payload_too_large");
    // The same without a Content-Length (chunked): counted as it comes, refused alike.
    const chunks = [JSON.stringify({ name: "keep", address: "10.0.0.1", port: 1, metadata: { a: "" } }).slice(0, -3), "x".repeat(2 * 1024 * 1024), '"}}'];
    const chunked = await fetch(`${base}/v1/services/keep`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: new ReadableStream({ pull: (ctl) => (chunks.length > 0 ? ctl.enqueue(new TextEncoder().encode(chunks.shift()!)) : ctl.close()) }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");

    expect((await call("GET", "/v1/services/keep")).body).toEqual(before);
  });

  it("bulk: all-or-nothing with per-item errors", async () => {
    const bad = await call("POST", "/v1/services/bulk", {
      register: [{ id: "b-1", name: "b", address: "10.0.0.1", port: 1 }, { id: "b-2", name: "b" }],
      deregister: ["no-such-id"],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("nothing was applied");
    expect(bad.body.error.items).toEqual([
      { index: 1, id: "b-2", code: "invalid", message: "address: is required; port: is required" },
      { index: 2, id: "no-such-id", code: "not_found", message: "service no-such-id is not registered" },
    ]);
    expect((await call("GET", "/v1/services/b-1")).status).toBe(404);

    const ok = await call("POST", "/v1/services/bulk", { register: [{ id: "b-1", name: "b", address: "10.0.0.1", port: 1 }] });
    expect(ok.status).toBe(200);
    expect(ok.body.registered).toHaveLength(1);
    expect((await call("POST", "/v1/services/bulk", { register: "x" })).status).toBe(400);
    expect((await call("POST", "/v1/services/bulk", { upsert: [] })).status).toBe(400);

    // The same id twice is refused, not "the last one wins".
    const twice = await call("POST", "/v1/services/bulk", {
      register: [{ id: "b-9", name: "b", address: "10.0.0.1", port: 1 }, { id: "b-9", name: "b", address: "10.0.0.2", port: 1 }],
      deregister: ["b-1", "b-1"],
    });
    expect(twice.status).toBe(400);
    expect(twice.body.error.items).toEqual([
      { index: 1, id: "b-9", code: "conflict", message: "registered twice in the same call (also at index 0)" },
      { index: 3, id: "b-1", code: "conflict", message: "deregistered twice in the same call" },
    ]);
    expect((await call("GET", "/v1/services/b-9")).status).toBe(404);
    expect((await call("GET", "/v1/services/b-1")).status).toBe(200);
  });

  it("unknown ids are 404 on every route", async () => {
    for (const [method, path] of [
      ["GET", "/v1/services/ghost"],
      ["DELETE", "/v1/services/ghost"],
      ["POST", "/v1/services/ghost/check"],
    ] as const) {
      const r = await call(method, path);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error).toEqual({ code: "not_found", message: "service ghost is not registered" });
    }
    const route = await call("GET", "/v2/nothing");
    expect(route.status).toBe(404);
    expect(route.body.error.code).toBe("not_found");
  });

  it("answers a wrong method on a path it serves with 405 and Allow", async () => {
    for (const [method, path, allow] of [
      ["POST", "/v1/services", "GET, HEAD"],
      ["GET", "/v1/checks", "POST"],
      ["PATCH", "/v1/services/web-1", "DELETE, GET, HEAD, PUT"],
      ["GET", "/v1/services/web-1/heartbeat", "PUT"],
    ] as const) {
      const r = await call(method, path);
      expect([r.status, r.headers.get("allow")], `${method} ${path}`).toEqual([405, allow]);
      expect(r.body.error.code).toBe("method_not_allowed");
    }
  });

  it("reports stats, status, cache clearing and an honest sync", async () => {
    const stats = await call("GET", "/v1/stats");
    expect(stats.body).toMatchObject({ nodeId: "test-node", clusterName: "test", store: "memory" });
    expect(stats.body.localCount).toBeGreaterThan(0);
    expect(Object.keys(stats.body.byHealth).sort()).toEqual(["degraded", "healthy", "unhealthy", "unknown"]);
    expect(stats.body.cache).toHaveProperty("hits");
    expect(stats.body.cache).toHaveProperty("misses");
    expect(stats.body.cache.entries).toBeGreaterThan(0);

    const cleared = await call("DELETE", "/v1/cache");
    expect(cleared.body.cleared).toBe(stats.body.cache.entries);
    expect((await call("GET", "/v1/stats")).body.cache.entries).toBe(0);

    const sync = await call("POST", "/v1/sync");
    expect(sync.body).toMatchObject({ mode: "standalone", synced: false });

    const status = await call("GET", "/v1/status");
    expect(status.body).toMatchObject({ status: "ok", nodeId: "test-node" });
    expect(status.body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("admin token", () => {
  let guarded: ServerHandle;
  beforeAll(async () => {
    guarded = await startTestServer({ adminToken: "s3cret-token" });
  });
  afterAll(() => guarded.stop());

  it("protects every mutating route and leaves reads open", async () => {
    const b = guarded.url;
    const body = { name: "web", address: "10.0.0.1", port: 1 };
    for (const [method, path, payload] of [
      ["PUT", "/v1/services/a", body],
      ["DELETE", "/v1/services/a", undefined],
      ["POST", "/v1/services/bulk", { register: [] }],
      ["POST", "/v1/checks", undefined],
      ["DELETE", "/v1/cache", undefined],
      ["POST", "/v1/sync", undefined],
    ] as const) {
      const none = await api(b, method, path, payload);
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(none.body.error.code).toBe("unauthorized");
      expect((await api(b, method, path, payload, { authorization: "Bearer wrong-token" })).status).toBe(401);
    }
    expect((await api(b, "PUT", "/v1/services/a", body, { authorization: "Bearer s3cret-token" })).status).toBe(201);
    expect((await api(b, "GET", "/v1/services?name=web")).body.count).toBe(1);
    expect((await api(b, "GET", "/v1/stats")).status).toBe(200);
  });
});
