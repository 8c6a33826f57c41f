// The Consul-compatible routes driven by the real npm `consul` client (and fetch where a client has no call):
// registration with checks, TTL heartbeats, catalog and health reads, blocking queries, maintenance, the token.
import { EventEmitter } from "node:events";
import Consul from "consul";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startPeer, startTestServer } from "../helpers.js";

let server: ServerHandle;
let consul: Consul;
let peer: Awaited<ReturnType<typeof startPeer>>;
let peerHealthy = true;

beforeAll(async () => {
  server = await startTestServer();
  const { port } = new URL(server.url);
  consul = new Consul({ host: "127.0.0.1", port: Number(port) });
  peer = await startPeer((_req, res) => {
    res.writeHead(peerHealthy ? 200 : 500).end(peerHealthy ? "ok" : "down");
  });
});
afterAll(async () => {
  consul.destroy();
  await peer.close();
  await server.stop();
});

/** The npm client's way to get the response too: a ctx that asks for it. */
function withResponse(): EventEmitter & { includeResponse: true } {
  return Object.assign(new EventEmitter(), { includeResponse: true as const });
}
type Res = { statusCode: number; headers: Record<string, string> };

describe("Consul's agent, catalog and status reads", () => {
  it("agent.self names our cluster as the datacenter and this node", async () => {
    const self = (await consul.agent.self()) as { Config: { Datacenter: string; NodeName: string }; Member: { Name: string; Addr: string } };
    expect(self.Config).toMatchObject({ Datacenter: "test", NodeName: "test-node" });
    expect(self.Member).toMatchObject({ Name: "test-node", Addr: "127.0.0.1" });
    expect(await consul.status.leader()).toBe(new URL(server.url).host);
  });

  it("every read carries X-Consul-Index (never 0), X-Consul-KnownLeader and X-Consul-LastContact", async () => {
    for (const path of ["/v1/agent/self", "/v1/catalog/services", "/v1/health/service/web", "/v1/catalog/service/web", "/v1/health/state/any", "/v1/catalog/nodes", "/v1/status/leader"]) {
      const r = await api(server.url, "GET", path);
      expect(r.status, path).toBe(200);
      expect(Number(r.headers.get("x-consul-index")), path).toBeGreaterThan(0);
      expect(r.headers.get("x-consul-knownleader"), path).toBe("true");
      expect(r.headers.get("x-consul-lastcontact"), path).toBe("0");
    }
  });
});

describe("agent.service.register and deregister, catalog and health reads", () => {
  it("registers a service with an HTTP check; health.service with passing lists it once the check passed", async () => {
    await consul.agent.service.register({
      name: "web",
      id: "web-1",
      address: "127.0.0.1",
      port: peer.port,
      tags: ["prod", "traefik.http.routers.web.rule=Host(`web.home.arpa`)"],
      meta: { team: "ops" },
      check: { name: "web health", http: `http://127.0.0.1:${peer.port}/health`, interval: "1s", timeout: "500ms", deregistercriticalserviceafter: "1m" },
    });
    await expect.poll(async () => (await consul.health.service({ service: "web", passing: true })).length).toBe(1);
    const [entry] = (await consul.health.service({ service: "web", passing: true })) as any[];
    expect(entry.Node).toMatchObject({ Node: "test-node", Datacenter: "test", Address: "127.0.0.1" });
    expect(entry.Service).toMatchObject({ ID: "web-1", Service: "web", Address: "127.0.0.1", Port: peer.port, Meta: { team: "ops" } });
    expect(entry.Service.Tags).toEqual(["prod", "traefik.http.routers.web.rule=Host(`web.home.arpa`)"]);
    expect(entry.Checks).toEqual([expect.objectContaining({ CheckID: "service:web-1", Status: "passing", ServiceID: "web-1", ServiceName: "web", Type: "http", Interval: "1s" })]);
    // Our own API holds it with the check mapped onto our fields.
    const ours = (await api(server.url, "GET", "/v1/services/web-1")).body;
    expect(ours).toMatchObject({ healthEndpoint: `http://127.0.0.1:${peer.port}/health`, healthCheckInterval: 1000, deregisterAfter: 60_000, healthStatus: "healthy" });
  });

  it("catalog.service.list and catalog.service.nodes answer in Consul's field names", async () => {
    await consul.agent.service.register({ name: "db", id: "db-1", address: "10.0.0.5", port: 5432, tags: ["primary"] });
    expect(await consul.catalog.service.list()).toEqual({ db: ["primary"], web: ["prod", "traefik.http.routers.web.rule=Host(`web.home.arpa`)"] });
    const nodes = (await consul.catalog.service.nodes("db")) as any[];
    expect(nodes).toEqual([
      expect.objectContaining({
        Node: "test-node",
        Datacenter: "test",
        ServiceID: "db-1",
        ServiceName: "db",
        ServiceTags: ["primary"],
        ServiceAddress: "10.0.0.5",
        ServicePort: 5432,
        ServiceMeta: {},
        ServiceWeights: { Passing: 1, Warning: 1 },
      }),
    ]);
    expect(nodes[0].CreateIndex).toBeGreaterThan(0);
    expect(await consul.catalog.service.nodes({ service: "db", tag: "replica" })).toEqual([]);
    expect(await consul.catalog.service.nodes("nothing-here")).toEqual([]);
    expect(((await consul.catalog.node.list()) as any[]).map((n) => n.Node)).toEqual(["test-node"]);
  });

  it("health.service with passing leaves out a failing instance; health.state lists checks by state", async () => {
    peerHealthy = false;
    // Two failures in a row make it unhealthy (critical), a check a second.
    await expect.poll(async () => (await consul.health.service({ service: "web", passing: true })).length, { timeout: 5_000 }).toBe(0);
    const [all] = (await consul.health.service("web")) as any[];
    expect(all.Checks[0].Status).toBe("critical");
    expect(((await consul.health.state("critical")) as any[]).map((c) => c.CheckID)).toContain("service:web-1");
    expect(((await consul.health.state("passing")) as any[]).map((c) => c.CheckID)).not.toContain("service:web-1");
    peerHealthy = true;
    await expect.poll(async () => (await consul.health.service({ service: "web", passing: true })).length, { timeout: 5_000 }).toBe(1);
  });

  it("deregisters; the instance leaves the catalog", async () => {
    await consul.agent.service.deregister("db-1");
    expect(await consul.catalog.service.list()).not.toHaveProperty("db");
    expect((await api(server.url, "GET", "/v1/services/db-1")).status).toBe(404);
    await expect(consul.agent.service.deregister("db-1")).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe("TTL checks: agent.check.pass, warn and fail", () => {
  it("a TTL check starts critical unless Status says; pass, warn and fail set it, passing follows", async () => {
    await consul.agent.service.register({ name: "job", id: "job-1", address: "127.0.0.1", port: 9000, check: { name: "job heartbeat", ttl: "30s", timeout: "1s" } });
    const status = async () => ((await consul.health.service("job")) as any[])[0].Checks[0].Status;
    const passingCount = async () => (await consul.health.service({ service: "job", passing: true })).length;
    expect(await status()).toBe("critical");
    expect(await passingCount()).toBe(0);
    await consul.agent.check.pass({ id: "service:job-1", note: "all good" });
    expect(await status()).toBe("passing");
    expect(await passingCount()).toBe(1);
    await consul.agent.check.warn("service:job-1");
    expect(await status()).toBe("warning");
    expect(await passingCount()).toBe(0);
    await consul.agent.check.fail("service:job-1");
    expect(await status()).toBe("critical");
    // PUT /v1/agent/check/update (no call in the npm client).
    expect((await api(server.url, "PUT", "/v1/agent/check/update/service:job-1", { Status: "passing", Output: "fine" })).status).toBe(200);
    expect(await status()).toBe("passing");
    expect((await api(server.url, "GET", "/v1/services/job-1")).body).toMatchObject({ ttl: 30_000, healthStatus: "healthy" });

    await consul.agent.service.register({ name: "job", id: "job-2", address: "127.0.0.1", port: 9001, check: { name: "job heartbeat", ttl: "30s", timeout: "1s", status: "passing" } });
    expect(await passingCount()).toBe(2);
    await expect(consul.agent.check.pass("service:nope")).rejects.toMatchObject({ statusCode: 404 });
    await expect(consul.agent.check.pass("web-1")).rejects.toMatchObject({ statusCode: 404 });
    // An HTTP check is run, not reported.
    await expect(consul.agent.check.pass("service:web-1")).rejects.toMatchObject({ statusCode: 409 });
  });
});

describe("maintenance", () => {
  it("agent.service.maintenance adds Consul's _service_maintenance check and hides the instance from passing", async () => {
    await consul.agent.service.register({ name: "cache", id: "cache-1", address: "10.0.0.7", port: 6379 });
    const [before] = (await consul.health.service("cache")) as any[];
    expect(before.Checks).toEqual([]);
    await consul.agent.service.maintenance({ id: "cache-1", enable: true, reason: "upgrade" });
    const [during] = (await consul.health.service("cache")) as any[];
    expect(during.Checks).toEqual([expect.objectContaining({ CheckID: "_service_maintenance:cache-1", Status: "critical", Notes: "upgrade", ServiceID: "cache-1" })]);
    expect(await consul.health.service({ service: "cache", passing: true })).toEqual([]);
    expect((await api(server.url, "GET", "/v1/services/cache-1")).body.maintenance).toMatchObject({ reason: "upgrade" });
    await consul.agent.service.maintenance({ id: "cache-1", enable: false });
    expect(await consul.health.service({ service: "cache", passing: true })).toHaveLength(1);
  });
});

describe("blocking queries (index and wait)", () => {
  it("health.service with the last index waits for a change and answers with a new index", async () => {
    await consul.agent.service.register({ name: "blk", id: "blk-1", address: "10.0.0.8", port: 80 });
    const [first] = (await consul.health.service({ service: "blk", ctx: withResponse() } as never)) as unknown as [Res, unknown[]];
    const index = first.headers["x-consul-index"]!;
    const started = Date.now();
    const blocked = consul.health.service({ service: "blk", index, wait: "5s", ctx: withResponse() } as never) as unknown as Promise<[Res, any[]]>;
    await expect.poll(() => server.discovery.changes.waiters).toBe(1);
    // Another service's change does not end the wait.
    await consul.agent.service.register({ name: "other", id: "other-1", address: "10.0.0.9", port: 80 });
    expect(server.discovery.changes.waiters).toBe(1);
    await consul.agent.service.register({ name: "blk", id: "blk-2", address: "10.0.0.10", port: 80 });
    const [res, body] = await blocked;
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(BigInt(res.headers["x-consul-index"]!)).toBeGreaterThan(BigInt(index));
    expect(body.map((e) => e.Service.ID)).toEqual(["blk-1", "blk-2"]);
  });

  it("times out after wait with the same index when nothing changed", async () => {
    const [first] = (await consul.catalog.service.nodes({ service: "blk", ctx: withResponse() } as never)) as unknown as [Res, unknown[]];
    const index = first.headers["x-consul-index"]!;
    const started = Date.now();
    const [res, body] = (await consul.catalog.service.nodes({ service: "blk", index, wait: "300ms", ctx: withResponse() } as never)) as unknown as [Res, any[]];
    // The wait plus at most 1/16 of it, as Consul's jitter.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(res.headers["x-consul-index"]).toBe(index);
    expect(body).toHaveLength(2);
  });

  it("consul.watch follows catalog.services through blocking queries", async () => {
    const seen: Record<string, string[]>[] = [];
    const watch = consul.watch({ method: consul.catalog.service.list, options: { wait: "5s" } });
    watch.on("change", (data: Record<string, string[]>) => seen.push(data));
    watch.on("error", () => {});
    try {
      await expect.poll(() => seen.length).toBe(1);
      await consul.agent.service.register({ name: "watched", id: "watched-1", address: "10.0.0.11", port: 80 });
      await expect.poll(() => seen.length).toBe(2);
      expect(seen[1]).toHaveProperty("watched");
    } finally {
      watch.end();
    }
  });

  it("takes Go durations for wait and clamps it at 10m; refuses a bad index or wait", async () => {
    expect((await api(server.url, "GET", "/v1/catalog/services?wait=1m30s")).status).toBe(200);
    expect((await api(server.url, "GET", "/v1/catalog/services?wait=20m")).status).toBe(200);
    expect((await api(server.url, "GET", "/v1/catalog/services?index=abc")).status).toBe(400);
    const bad = await api(server.url, "GET", "/v1/catalog/services?index=1&wait=5 minutes");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/wait must be a duration/);
  });
});

describe("blocking queries share --max-watchers with ours", () => {
  let small: ServerHandle;
  beforeAll(async () => {
    small = await startTestServer({ maxWatchers: 1 });
  });
  afterAll(() => small.stop());

  it("one more than --max-watchers is a 503; a client that goes away stops waiting", async () => {
    const first = await api(small.url, "GET", "/v1/catalog/services");
    const index = first.headers.get("x-consul-index")!;
    const abort = new AbortController();
    const waiting = fetch(`${small.url}/v1/health/service/web?index=${index}&wait=30s`, { signal: abort.signal }).catch(() => "aborted");
    await expect.poll(() => small.discovery.changes.waiters).toBe(1);
    const refused = await api(small.url, "GET", `/v1/catalog/services?index=${index}&wait=30s`);
    expect(refused.status).toBe(503);
    expect(refused.body.error.message).toMatch(/--max-watchers/);
    abort.abort();
    expect(await waiting).toBe("aborted");
    await expect.poll(() => small.discovery.changes.waiters).toBe(0);
  });
});

describe("bad input is a 400 with the reason, and changes nothing", () => {
  const register = (body: unknown) => api(server.url, "PUT", "/v1/agent/service/register", body);

  it("refuses what it cannot map, naming Consul's field", async () => {
    const cases: [unknown, RegExp][] = [
      [{ ID: "bad-1", Port: 80 }, /Name: is required/],
      [{ Name: "bad", ID: "bad-1", Address: "10.0.0.1" }, /Port: is required/],
      [{ Name: "bad_name", ID: "bad-1", Port: 80 }, /Name: must be a DNS label/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { GRPC: "127.0.0.2:80", Interval: "10s" } }, /Check.GRPC: a gRPC check dials the instance's own Address/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { GRPC: "127.0.0.1:80", GRPCUseTLS: true, Interval: "10s" } }, /Check.GRPCUseTLS: not served: gRPC checks are plaintext/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { HTTP: "http://127.0.0.1/" } }, /Check.Interval: is required/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { TTL: "ten seconds" } }, /Check.TTL: must be a duration/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { TTL: "100ms" } }, /Check.TTL: must be at least 1000 ms/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { TCP: "127.0.0.2:80", Interval: "10s" } }, /Check.TCP: a TCP check dials the instance's own Address:Port/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Checks: [{ TTL: "10s" }, { HTTP: "http://127.0.0.2/", Interval: "10s" }] }, /Checks.1.HTTP: a check goes to the instance's own address/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Checks: [{ TTL: "10s" }, { HTTP: "/", Interval: "10s", Method: "BREW" }] }, /Checks.1.Method: /],
      [{ Name: "bad", ID: "bad-1", Port: 80, Address: "127.0.0.1", Check: { HTTP: "http://127.0.0.2/", Interval: "10s" } }, /Check.HTTP: a check goes to the instance's own address/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Connect: { Native: true } }, /Connect: not served/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Weights: { Passing: 10, Warning: 1 } }, /Weights/],
      [{ Name: "bad", ID: "bad-1", Port: 80, Colour: "red" }, /Colour: is not a field/],
      ["not json", /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const r = await register(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message, JSON.stringify(body)).toMatch(message);
    }
    expect((await api(server.url, "GET", "/v1/services?name=bad")).body.count).toBe(0);
    expect((await api(server.url, "GET", "/v1/services/bad-1")).status).toBe(404);
  });

  it("reads Consul's JSON as Consul does: any key case, snake_case, any Content-Type; ID defaults to Name", async () => {
    const r = await api(server.url, "PUT", "/v1/agent/service/register", JSON.stringify({ name: "lower", port: 81, address: "127.0.0.1", check: { tcp: "127.0.0.1:81", interval: "10s", deregister_critical_service_after: "90s" } }), {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(r.status).toBe(200);
    expect((await api(server.url, "GET", "/v1/services/lower")).body).toMatchObject({ name: "lower", tcpCheck: true, healthCheckInterval: 10_000, deregisterAfter: 90_000 });
    // A JSON number is a Go time.Duration: nanoseconds.
    expect((await api(server.url, "PUT", "/v1/agent/service/register", { Name: "nanos", Port: 82, Check: { TTL: 15_000_000_000 } })).status).toBe(200);
    expect((await api(server.url, "GET", "/v1/services/nanos")).body).toMatchObject({ ttl: 15_000, address: "127.0.0.1" });
  });

  it("refuses unknown parameters and ones it cannot honour, and accepts Consul's common ones", async () => {
    expect((await api(server.url, "GET", "/v1/health/service/web?stale&consistent&cached&dc=test&near=_agent&pretty&ns=default&partition=default&token=x")).status).toBe(200);
    expect((await api(server.url, "GET", "/v1/health/service/web?dc=elsewhere")).body.error.message).toMatch(/dc 'elsewhere' is not this cluster's/);
    expect((await api(server.url, "GET", "/v1/health/service/web?node-meta=rack:1")).status).toBe(400);
    expect((await api(server.url, "GET", "/v1/health/service/web?filter=Service.Port==80")).status).toBe(400);
    expect((await api(server.url, "GET", "/v1/health/service/web?tags=prod")).body.error.message).toMatch(/unknown parameter 'tags'/);
    expect((await api(server.url, "GET", "/v1/health/state/broken")).status).toBe(400);
    expect((await api(server.url, "PUT", "/v1/agent/service/maintenance/web-1?enable=yes")).status).toBe(400);
  });

  it("filters by several tags at once", async () => {
    await consul.agent.service.register({ name: "tagged", id: "tagged-1", address: "10.0.0.12", port: 80, tags: ["a", "b"] });
    await consul.agent.service.register({ name: "tagged", id: "tagged-2", address: "10.0.0.13", port: 80, tags: ["a"] });
    const ids = async (query: string) => (await api(server.url, "GET", `/v1/health/service/tagged?${query}`)).body.map((e: { Service: { ID: string } }) => e.Service.ID);
    expect(await ids("tag=a")).toEqual(["tagged-1", "tagged-2"]);
    expect(await ids("tag=a&tag=b")).toEqual(["tagged-1"]);
    // A tag as Consul's clients write it, comma and all: ?tag= here does not split.
    await consul.agent.service.register({ name: "tagged", id: "tagged-3", address: "10.0.0.14", port: 80, tags: ["zone=eu,rack=2"] });
    expect(await ids(`tag=${encodeURIComponent("zone=eu,rack=2")}`)).toEqual(["tagged-3"]);
  });

  it("serves no KV, ACLs or catalog writes: those paths are 404", async () => {
    for (const [method, path] of [["GET", "/v1/kv/app/config"], ["PUT", "/v1/catalog/register"], ["PUT", "/v1/agent/check/register"], ["GET", "/v1/acl/tokens"]] as const) {
      expect((await api(server.url, method, path, method === "PUT" ? {} : undefined)).status, path).toBe(404);
    }
  });
});

describe("the admin token, as Consul's clients send it", () => {
  let guarded: ServerHandle;
  beforeAll(async () => {
    guarded = await startTestServer({ adminToken: "s3cret-token" });
  });
  afterAll(() => guarded.stop());

  it("accepts X-Consul-Token, ?token= and Bearer on the Consul paths; refuses none or a wrong one", async () => {
    const { port } = new URL(guarded.url);
    const body = { Name: "tok", ID: "tok-1", Address: "10.0.0.20", Port: 80 };
    expect((await api(guarded.url, "PUT", "/v1/agent/service/register", body)).status).toBe(401);
    expect((await api(guarded.url, "PUT", "/v1/agent/service/register", body, { "x-consul-token": "wrong-token" })).status).toBe(401);
    const client = new Consul({ host: "127.0.0.1", port: Number(port), defaults: { token: "s3cret-token" } });
    try {
      await client.agent.service.register({ name: "tok", id: "tok-1", address: "10.0.0.20", port: 80 });
    } finally {
      client.destroy();
    }
    expect((await api(guarded.url, "PUT", "/v1/agent/service/maintenance/tok-1?enable=true&token=s3cret-token")).status).toBe(200);
    expect((await api(guarded.url, "PUT", "/v1/agent/service/deregister/tok-1", undefined, { authorization: "Bearer s3cret-token" })).status).toBe(200);
    // Our own routes still take the bearer only.
    expect((await api(guarded.url, "PUT", "/v1/services/x-1", { name: "x", address: "10.0.0.1", port: 1 }, { "x-consul-token": "s3cret-token" })).status).toBe(401);
    // Reads need no token.
    expect((await api(guarded.url, "GET", "/v1/catalog/services")).status).toBe(200);
  });
});
