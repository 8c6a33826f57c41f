// Behaviour through c-ares (Node's dns.Resolver), a real independent client, against the real server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { resolverFor } from "./helpers.js";

let server: ServerHandle;
let resolver: ReturnType<typeof resolverFor>;
const put = (id: string, body: Record<string, unknown>) => api(server.url, "PUT", `/v1/services/${id}`, body);
const code = (p: Promise<unknown>) => p.then(() => "answered", (err: NodeJS.ErrnoException) => err.code);

beforeAll(async () => {
  server = await startTestServer({ nodeId: "nas" });
  resolver = resolverFor(server.dnsAddress.port);
  await put("web-1", { name: "web", address: "10.0.0.1", port: 8080, tags: ["prod", "eu"] });
  await put("web-2", { name: "web", address: "10.0.0.2", port: 8081, tags: ["prod"] });
  await put("web-3", { name: "web", address: "fd00::3", port: 8082, tags: ["canary"] });
  await put("db-1", { name: "db", address: "10.0.1.1", port: 5432, nodeId: "pi" });
  await put("nas-1", { name: "files", address: "nas.example.net", port: 445 });
});
afterAll(() => server.stop());

describe("DNS through c-ares", () => {
  it("answers A and AAAA with healthy instances, case-insensitively", async () => {
    expect((await resolver.resolve4("web.service.home.arpa")).sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect((await resolver.resolve4("WeB.Service.HOME.arpa")).sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(await resolver.resolve6("web.service.home.arpa")).toEqual(["fd00::3"]);
  });

  it("answers SRV with ports and targets that resolve here", async () => {
    const srv = (await resolver.resolveSrv("_web._tcp.service.home.arpa")).sort((a, b) => a.port - b.port);
    expect(srv.map((r) => [r.port, r.name, r.weight, r.priority])).toEqual([
      [8080, "0a000001.addr.home.arpa", 2560, 1],
      [8081, "0a000002.addr.home.arpa", 2560, 1],
      [8082, "fd000000000000000000000000000003.addr.home.arpa", 2560, 1],
    ]);
    expect(await resolver.resolve4(srv[0]!.name)).toEqual(["10.0.0.1"]);
    expect(await resolver.resolve6(srv[2]!.name)).toEqual(["fd00::3"]);
    expect((await resolver.resolveSrv("web.service.home.arpa")).length).toBe(3);
  });

  it("filters by one or several tag labels, and RFC 2782 tag names", async () => {
    expect((await resolver.resolve4("prod.web.service.home.arpa")).sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(await resolver.resolve4("eu.prod.web.service.home.arpa")).toEqual(["10.0.0.1"]);
    expect((await resolver.resolveSrv("_web._eu.service.home.arpa")).map((r) => r.port)).toEqual([8080]);
    expect(await code(resolver.resolve4("us.web.service.home.arpa"))).toBe("ENODATA");
  });

  it("says NXDOMAIN for unknown names and NODATA for known ones with nothing to return", async () => {
    expect(await code(resolver.resolve4("nothing.service.home.arpa"))).toBe("ENOTFOUND");
    expect(await code(resolver.resolve4("x.home.arpa"))).toBe("ENOTFOUND");
    expect(await code(resolver.resolve6("db.service.home.arpa"))).toBe("ENODATA");
    expect(await code(resolver.resolve4("_web._tcp.service.home.arpa"))).toBe("ENODATA");
    expect(await code(resolver.resolve4("service.home.arpa"))).toBe("ENODATA");
  });

  it("follows registrations, health changes and deregistrations in the next answer", async () => {
    await put("api-1", { name: "api", address: "10.0.2.1", port: 80 });
    expect(await resolver.resolve4("api.service.home.arpa")).toEqual(["10.0.2.1"]);
    server.discovery.registry.setHealth("api-1", "unhealthy");
    // a known service with no healthy instance is NODATA, never NXDOMAIN (which resolvers would cache and extend)
    expect(await code(resolver.resolve4("api.service.home.arpa"))).toBe("ENODATA");
    server.discovery.registry.setHealth("api-1", "degraded");
    expect(await code(resolver.resolve4("api.service.home.arpa"))).toBe("ENODATA");
    server.discovery.registry.setHealth("api-1", "healthy");
    expect(await resolver.resolve4("api.service.home.arpa")).toEqual(["10.0.2.1"]);
    await api(server.url, "DELETE", "/v1/services/api-1");
    expect(await code(resolver.resolve4("api.service.home.arpa"))).toBe("ENOTFOUND");
  });

  it("encodes IPv4-mapped IPv6 addresses correctly", async () => {
    await put("mapped-1", { name: "mapped", address: "::ffff:192.0.2.7", port: 80 });
    expect(await resolver.resolve6("mapped.service.home.arpa")).toEqual(["::ffff:192.0.2.7"]);
    await api(server.url, "DELETE", "/v1/services/mapped-1");
  });

  it("answers nodes, addresses, reverse names, the apex and the cluster-qualified form", async () => {
    expect(await resolver.resolve4("pi.node.home.arpa")).toEqual(["10.0.1.1"]);
    expect((await resolver.resolve4("nas.node.home.arpa")).sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(await code(resolver.resolve4("ghost.node.home.arpa"))).toBe("ENOTFOUND");
    expect(await resolver.reverse("10.0.1.1")).toEqual(["db.service.home.arpa"]);
    expect(await resolver.resolve4("db.service.test.home.arpa")).toEqual(["10.0.1.1"]);
    const soa = await resolver.resolveSoa("home.arpa");
    expect(soa).toMatchObject({ nsname: "ns.home.arpa", hostmaster: "hostmaster.home.arpa", minttl: 5 });
    expect(await resolver.resolveNs("home.arpa")).toEqual(["ns.home.arpa"]);
    expect(await resolver.resolve4("ns.home.arpa")).toEqual(["127.0.0.1"]);
  });

  it("answers a host-name instance with a CNAME and uses the host name as SRV target", async () => {
    expect(await resolver.resolveCname("files.service.home.arpa")).toEqual(["nas.example.net"]);
    expect((await resolver.resolveSrv("_files._tcp.service.home.arpa"))[0]).toMatchObject({ name: "nas.example.net", port: 445 });
  });

  it("answers a large service with 128 records at most, rotating over all of them: UDP truncates, c-ares retries over TCP", async () => {
    const register = Array.from({ length: 200 }, (_, i) => ({ id: `big-${i}`, name: "big", address: `10.9.${i >> 8}.${i & 255}`, port: 1000 + i }));
    await api(server.url, "POST", "/v1/services/bulk", { register });
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const answer = await resolver.resolve4("big.service.home.arpa");
      expect(answer.length).toBe(128);
      for (const address of answer) seen.add(address);
    }
    expect(seen.size).toBe(200); // the rotations' windows cover the whole set
    expect((await resolver.resolveSrv("_big._tcp.service.home.arpa")).length).toBe(128);
    const stats = (await api(server.url, "GET", "/v1/stats")).body;
    expect(stats.dns.truncated).toBeGreaterThan(0);
    expect(stats.dns.tcp).toBeGreaterThan(0);
  });

  it("browses with DNS-SD: types, instances, subtypes, SRV and TXT per instance", async () => {
    await put("Web.Eu.1", { name: "web", address: "10.0.0.9", port: 9000, tags: ["eu"], version: "2.1.0", metadata: { team: "platform", path: "/api" } });
    const types = await resolver.resolvePtr("_services._dns-sd._udp.home.arpa");
    expect(types).toEqual(expect.arrayContaining(["_web._tcp.home.arpa", "_db._tcp.home.arpa", "_files._tcp.home.arpa"]));
    const instances = await resolver.resolvePtr("_web._tcp.home.arpa");
    expect(instances.sort()).toEqual(["web-1._web._tcp.home.arpa", "web-2._web._tcp.home.arpa", "web-3._web._tcp.home.arpa", "web-eu-1._web._tcp.home.arpa"]);
    expect((await resolver.resolvePtr("_eu._sub._web._tcp.home.arpa")).sort()).toEqual(["web-1._web._tcp.home.arpa", "web-eu-1._web._tcp.home.arpa"]);
    const srv = await resolver.resolveSrv("web-eu-1._web._tcp.home.arpa");
    expect(srv).toMatchObject([{ name: "0a000009.addr.home.arpa", port: 9000, priority: 1, weight: 2560 }]); // Node 24 adds a ttl
    expect(await resolver.resolveTxt("web-eu-1._web._tcp.home.arpa")).toEqual([["version=2.1.0", "path=/api", "team=platform"]]);
    expect(await resolver.resolveTxt("web-2._web._tcp.home.arpa")).toEqual([["version=0.0.0"]]);
    expect(await code(resolver.resolveSrv("ghost._web._tcp.home.arpa"))).toBe("ENOTFOUND");
    expect(await code(resolver.resolvePtr("_ghost._tcp.home.arpa"))).toBe("ENOTFOUND");
    expect(await code(resolver.resolvePtr("_tcp.home.arpa"))).toBe("ENODATA");
    await api(server.url, "DELETE", "/v1/services/Web.Eu.1");
  });

  it("gives ids that would share a DNS-SD label (col.1, col-1, COL-1) a label each, all reachable", async () => {
    for (const [id, port] of [["col.1", 1], ["col-1", 2], ["COL-1", 3]] as const) await put(id, { name: "col", address: "10.0.7.1", port });
    const instances = await resolver.resolvePtr("_col._tcp.home.arpa");
    expect(new Set(instances).size).toBe(3);
    const ports = await Promise.all(instances.map(async (instance) => (await resolver.resolveSrv(instance))[0]!.port));
    expect(ports.sort()).toEqual([1, 2, 3]);
    for (const id of ["col.1", "col-1", "COL-1"]) await api(server.url, "DELETE", `/v1/services/${id}`);
  });

  it("refuses names outside the zone", async () => {
    expect(await code(resolver.resolve4("example.com"))).toBe("EREFUSED");
  });
});

describe("a set of many windows", () => {
  it("covers every instance when the set needs more than 8 windows of --dns-max-answers (500 instances, windows of 20)", async () => {
    const big = await startTestServer({ dnsMaxAnswers: 20 });
    try {
      const register = Array.from({ length: 500 }, (_, i) => ({ id: `w-${i}`, name: "wide", address: `10.8.${i >> 8}.${i & 255}`, port: 80 }));
      await api(big.url, "POST", "/v1/services/bulk", { register });
      const r = resolverFor(big.dnsAddress.port);
      const seen = new Set<string>();
      for (let i = 0; i < 25; i++) for (const a of await r.resolve4("wide.service.home.arpa")) seen.add(a);
      expect(seen.size).toBe(500); // 25 queries, 25 windows of 20: each instance in exactly one
      // SRV keeps its stable order (HAProxy drops a server missing from one answer): the same first 20 each time.
      const first = (await r.resolveSrv("_wide._tcp.service.home.arpa")).map((s) => s.name);
      expect(first).toHaveLength(20);
      expect((await r.resolveSrv("_wide._tcp.service.home.arpa")).map((s) => s.name)).toEqual(first);
    } finally {
      await big.stop();
    }
  });
});
