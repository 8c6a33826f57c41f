// The server's own registration (--self-register): service discovery, an API and a DNS instance per node, found
// through the server's own DNS port by c-ares (node:dns), checked over loopback.
import { Resolver } from "node:dns/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { advertisedAddress, selfId, selfInstances } from "../../src/app/self.js";
import { loadConfig } from "../../src/app/config.js";
import type { ServerHandle } from "../../src/app/server.js";
import { VERSION } from "../../src/lib/version.js";
import { api, startTestServer } from "../helpers.js";

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read().catch(() => undefined as T);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > end) throw new Error(`not reached within ${ms} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("self-registration", () => {
  let server: ServerHandle;
  let resolver: Resolver;
  beforeAll(async () => {
    server = await startTestServer({ selfRegister: true });
    resolver = new Resolver({ timeout: 1_000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.dnsAddress.port}`]);
  });
  afterAll(() => server.stop());

  it("answers discovery.service.<domain> with its address once its own checks pass", async () => {
    expect(await until(() => resolver.resolve4("discovery.service.home.arpa"), (a) => a.length > 0)).toEqual(["127.0.0.1"]);
    const { body } = await api(server.url, "GET", "/v1/services?name=discovery");
    expect(body.count).toBe(2);
    const byId = Object.fromEntries(body.services.map((s: any) => [s.id, s]));
    const apiEntry = byId[selfId("test-node", "api")];
    const dnsEntry = byId[selfId("test-node", "dns")];
    expect(apiEntry).toMatchObject({ name: "discovery", port: server.http.port, tags: ["api", "http"], source: "self", version: VERSION, nodeId: "test-node", metadata: { node: "test-node", version: VERSION, role: "api" } });
    expect(dnsEntry).toMatchObject({ port: server.dnsAddress.port, tags: ["dns", "udp"], source: "self", metadata: { role: "dns" } });
    await until(() => api(server.url, "GET", "/v1/services?name=discovery&health=healthy"), (r) => r.body.count === 2);
  });

  it("serves the API and DNS ports at the RFC 2782 names and the tag form", async () => {
    await until(() => resolver.resolve4("discovery.service.home.arpa"), (a) => a.length > 0);
    const target = "7f000001.addr.home.arpa";
    const srv = (name: string) => until(() => resolver.resolveSrv(name), (r) => r.length > 0);
    expect((await srv("_discovery._api.service.home.arpa")).map((r) => [r.name, r.port])).toEqual([[target, server.http.port]]);
    expect((await srv("api.discovery.service.home.arpa")).map((r) => r.port)).toEqual([server.http.port]);
    expect((await srv("_discovery._dns.service.home.arpa")).map((r) => [r.name, r.port])).toEqual([[target, server.dnsAddress.port]]);
    expect((await srv("_discovery._udp.service.home.arpa")).map((r) => r.port)).toEqual([server.dnsAddress.port]);
    // Every instance under _tcp (the DNS server takes TCP too): both ports.
    expect((await srv("_discovery._tcp.service.home.arpa")).map((r) => r.port).sort()).toEqual([server.http.port, server.dnsAddress.port].sort());
  });

  it("is the server's own: an API write needs force, and its HTTP check runs against the API over loopback", async () => {
    const id = selfId("test-node", "api");
    const { body: entry } = await api(server.url, "GET", `/v1/services/${id}`);
    const put = await api(server.url, "PUT", `/v1/services/${id}`, { ...entry, port: 1 });
    expect(put.status).toBe(409);
    expect(put.body.error.message).toMatch(/--self-register/);
    const del = await api(server.url, "DELETE", `/v1/services/${id}`);
    expect(del.status).toBe(409);
    const check = await api(server.url, "POST", `/v1/services/${id}/check`);
    expect(check.status).toBe(200);
    expect(JSON.stringify(check.body)).toMatch(/HTTP 200/);
  });
});

describe("self-registration settings", () => {
  it("advertises the bound address; for a wildcard --advertise-address, else the first LAN address, else 127.0.0.1", () => {
    const lo = { lo: [{ address: "127.0.0.1", family: "IPv4", internal: true } as any] };
    const lan = { ...lo, eth0: [{ address: "fe80::1", family: "IPv6", internal: false } as any, { address: "169.254.3.4", family: "IPv4", internal: false } as any, { address: "192.168.1.10", family: "IPv4", internal: false } as any] };
    expect(advertisedAddress("127.0.0.1", "10.0.0.1", lan)).toBe("127.0.0.1");
    expect(advertisedAddress("localhost", undefined, lan)).toBe("127.0.0.1");
    expect(advertisedAddress("192.168.1.20", undefined, lan)).toBe("192.168.1.20");
    expect(advertisedAddress("0.0.0.0", "10.0.0.1", lan)).toBe("10.0.0.1");
    expect(advertisedAddress("0.0.0.0", undefined, lan)).toBe("192.168.1.10");
    expect(advertisedAddress("::", undefined, lo)).toBe("127.0.0.1");
  });

  it("checks a wildcard listener over loopback, at the advertised address's own DNS name", () => {
    const [apiInput, dnsInput] = selfInstances({ nodeId: "n1", clusterName: "c", domain: "home.arpa", version: "1.2.3", http: { host: "0.0.0.0", port: 8500 }, dns: { host: "0.0.0.0", port: 53 }, advertiseAddress: "192.168.1.10" });
    expect(apiInput).toMatchObject({ address: "192.168.1.10", checks: [{ kind: "http", url: "http://127.0.0.1:8500/v1/status" }] });
    expect(dnsInput).toMatchObject({ address: "192.168.1.10", port: 53, checks: [{ kind: "dns", resolver: "127.0.0.1:53", query: "c0a8010a.addr.home.arpa", expect: "192.168.1.10" }] });
  });

  it("does not advertise a loopback-only listener when the other one is on the LAN: a LAN client is never sent to 127.0.0.1", async () => {
    // As the systemd unit runs it: DNS on 0.0.0.0 (port 53 for the LAN), the API on 127.0.0.1. The instances are
    // registered into a real server whose DNS port stands in for port 53 (the DNS instance's check queries it over
    // loopback, as it would), so the A answer below is the one a LAN client gets.
    const lan = { lo: [{ address: "127.0.0.1", family: "IPv4", internal: true } as any], eth0: [{ address: "192.168.1.10", family: "IPv4", internal: false } as any] };
    const server = await startTestServer({ selfRegister: false });
    try {
      const inputs = selfInstances({ nodeId: "n1", clusterName: "c", domain: "home.arpa", version: "1.2.3", http: { host: "127.0.0.1", port: server.http.port }, dns: { host: "0.0.0.0", port: server.dnsAddress.port }, interfaces: lan });
      expect(inputs.map((i) => [i.id, i.address])).toEqual([[selfId("n1", "dns"), "192.168.1.10"]]);
      await server.discovery.syncSelf(inputs);
      // Both checks passed (or the one): the A answer holds every address it will hold.
      await until(() => api(server.url, "GET", "/v1/services?name=discovery&health=healthy"), (r) => r.body.count === inputs.length);
      const resolver = new Resolver({ timeout: 1_000, tries: 1 });
      resolver.setServers([`127.0.0.1:${server.dnsAddress.port}`]);
      expect(await until(() => resolver.resolve4("discovery.service.home.arpa"), (a) => a.length > 0)).toEqual(["192.168.1.10"]);
    } finally {
      await server.stop();
    }
    // And the other way round: the API on the LAN, DNS on loopback only (behind a forwarder such as dnsmasq).
    const apiOnLan = selfInstances({ nodeId: "n1", clusterName: "c", domain: "home.arpa", version: "1.2.3", http: { host: "192.168.1.10", port: 8500 }, dns: { host: "127.0.0.1", port: 8600 }, interfaces: lan });
    expect(apiOnLan.map((i) => [i.id, i.address])).toEqual([[selfId("n1", "api"), "192.168.1.10"]]);
    // All on loopback (the defaults: every client is on this machine), or all on the LAN: both instances.
    const local = selfInstances({ nodeId: "n1", clusterName: "c", domain: "home.arpa", version: "1.2.3", http: { host: "127.0.0.1", port: 8500 }, dns: { host: "127.0.0.1", port: 8600 }, interfaces: lan });
    expect(local.map((i) => i.address)).toEqual(["127.0.0.1", "127.0.0.1"]);
    const noLanAddress = selfInstances({ nodeId: "n1", clusterName: "c", domain: "home.arpa", version: "1.2.3", http: { host: "127.0.0.1", port: 8500 }, dns: { host: "0.0.0.0", port: 53 }, interfaces: { lo: lan.lo } });
    expect(noLanAddress.map((i) => i.address)).toEqual(["127.0.0.1", "127.0.0.1"]);
  });

  it("--self-register=false, HD_SELF_REGISTER and --advertise-address are read and checked like every setting", () => {
    const serve = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const c = loadConfig(argv, env);
      if (c.kind !== "serve") throw new Error("not serve");
      return c.config;
    };
    expect(serve([]).selfRegister).toBe(true);
    expect(serve(["--self-register=false"]).selfRegister).toBe(false);
    expect(serve([], { HD_SELF_REGISTER: "no" }).selfRegister).toBe(false);
    expect(serve(["--advertise-address", "192.168.1.10"]).advertiseAddress).toBe("192.168.1.10");
    expect(() => serve(["--advertise-address", "nas.lan"])).toThrow(/--advertise-address .*must be an IPv4 or IPv6 address/);
  });

  it("defaults the data dir to $STATE_DIRECTORY and zones/services to $CONFIGURATION_DIRECTORY; flags still win", () => {
    const serve = (argv: string[], env: NodeJS.ProcessEnv) => {
      const c = loadConfig(argv, env);
      if (c.kind !== "serve") throw new Error("not serve");
      return c.config;
    };
    const plain = serve([], {});
    expect([plain.dataDir, plain.zonesDir, plain.servicesDir]).toEqual(["./data", "./zones", undefined]);
    const unit = serve([], { STATE_DIRECTORY: "/var/lib/homelab-discovery:/var/lib/other", CONFIGURATION_DIRECTORY: "/etc/homelab-discovery" });
    expect([unit.dataDir, unit.zonesDir, unit.servicesDir]).toEqual(["/var/lib/homelab-discovery", "/etc/homelab-discovery/zones", "/etc/homelab-discovery/services.d"]);
    expect(serve(["--data-dir", "/srv/hd"], { STATE_DIRECTORY: "/var/lib/homelab-discovery" }).dataDir).toBe("/srv/hd");
  });

  it("turned off, removes the instances an earlier run registered (same data dir)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "hd-self-"));
    try {
      const first = await startTestServer({ selfRegister: true, inMemory: false, dataDir });
      expect((await api(first.url, "GET", "/v1/services?name=discovery")).body.count).toBe(2);
      await first.stop();
      const second = await startTestServer({ selfRegister: false, inMemory: false, dataDir });
      expect((await api(second.url, "GET", "/v1/services?name=discovery")).body.count).toBe(0);
      await second.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("a registry loaded past --max-instances still starts and serves, without its own entry, and says so", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "hd-self-full-"));
    try {
      const first = await startTestServer({ selfRegister: false, inMemory: false, dataDir });
      for (const i of [1, 2]) {
        expect((await api(first.url, "PUT", `/v1/services/full-${i}`, { name: "web", address: "10.0.0.1", port: 8000 + i })).status).toBe(201);
      }
      await first.stop();
      const lines: string[] = [];
      const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
      const second = await startTestServer({ selfRegister: true, inMemory: false, dataDir, maxInstances: 2 }, { logger });
      try {
        expect((await api(second.url, "GET", "/v1/services?name=web")).body.count).toBe(2);
        expect((await api(second.url, "GET", "/v1/services?name=discovery")).body.count).toBe(0);
        const warned = lines.map((l) => JSON.parse(l)).find((r) => /could not register this server/.test(r.msg));
        expect(warned?.err).toMatch(/--max-instances/);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
