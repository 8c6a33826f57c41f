// GET /v1/traefik/config, the endpoint of Traefik's HTTP provider. Traefik cannot be installed here, so the
// expected answers are ported from Traefik's own tests of the Consul Catalog provider
// (traefik/traefik pkg/provider/consulcatalog/config_test.go, Test_buildConfiguration, at commit fd5a576): same
// tags, same addresses, the JSON its Go structs marshal to. That test runs with exposedByDefault true and
// defaultRule Host(`{{ normalize .Name }}.traefik.wtf`), so the ported cases ask for both. Our names are DNS
// labels (lowercase), so Traefik's "Test" is "test" here; its Node1 is our test-node.
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";

const AS_TRAEFIK_TEST = "exposedByDefault=true&defaultRule=" + encodeURIComponent("Host(`{{ normalize .Name }}.traefik.wtf`)");
/** ServersLoadBalancer after SetDefaults, as every expected service in config_test.go has it. */
const lb = (...urls: string[]) => ({
  loadBalancer: { servers: urls.map((url) => ({ url })), strategy: "wrr", passHostHeader: true, responseForwarding: { flushInterval: "100ms" } },
});

let server: ServerHandle;
let logs: { level: number; msg: string; id?: string; reason?: string }[];
beforeEach(async () => {
  logs = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line !== "") logs.push(JSON.parse(line));
      done();
    },
  });
  server = await startTestServer({}, { logger: pino({ level: "warn" }, sink) });
});
afterEach(() => server.stop());

async function register(...instances: { id: string; name?: string; address?: string; port?: number; tags?: string[]; ttl?: number }[]) {
  const r = await api(server.url, "POST", "/v1/services/bulk", {
    register: instances.map((i) => ({ name: "test", address: "127.0.0.1", port: 80, ...i })),
  });
  expect(r.status).toBe(200);
}
const config = (query = AS_TRAEFIK_TEST) => api(server.url, "GET", `/v1/traefik/config${query === "" ? "" : `?${query}`}`);

describe("the cases of Traefik's consulcatalog Test_buildConfiguration", () => {
  it('"two containers with same service name no label": one router, one service, a server per instance', async () => {
    await register({ id: "1" }, { id: "2", address: "127.0.0.2" });
    const r = await config();
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.body).toEqual({
      http: {
        routers: { test: { service: "test", rule: "Host(`test.traefik.wtf`)" } },
        services: { test: lb("http://127.0.0.1:80", "http://127.0.0.2:80") },
      },
    });
  });

  it('"one container with labels": a named router and service', async () => {
    await register({
      id: "test",
      tags: [
        "traefik.http.services.Service1.loadbalancer.passhostheader=true",
        "traefik.http.routers.Router1.rule=Host(`foo.com`)",
        "traefik.http.routers.Router1.service=Service1",
      ],
    });
    expect((await config()).body).toEqual({
      http: { routers: { Router1: { service: "Service1", rule: "Host(`foo.com`)" } }, services: { Service1: lb("http://127.0.0.1:80") } },
    });
  });

  it('"one container with label port": scheme and port labels make the server URL', async () => {
    await register({
      id: "test",
      tags: ["traefik.http.services.Service1.LoadBalancer.server.scheme=h2c", "traefik.http.services.Service1.LoadBalancer.server.port=8080"],
    });
    expect((await config()).body).toEqual({
      http: { routers: { test: { service: "Service1", rule: "Host(`test.traefik.wtf`)" } }, services: { Service1: lb("h2c://127.0.0.1:8080") } },
    });
  });

  it('"two containers with same service name and different passhostheader": the conflicting service is dropped, its router kept', async () => {
    await register(
      { id: "1", tags: ["traefik.http.services.Service1.loadbalancer.passhostheader=true"] },
      { id: "2", address: "127.0.0.2", tags: ["traefik.http.services.Service1.loadbalancer.passhostheader=false"] },
    );
    const r = await config();
    expect(r.body).toEqual({ http: { routers: { test: { service: "Service1", rule: "Host(`test.traefik.wtf`)" } } } });
    expect(r.headers.get("x-traefik-conflicts")).toBe("http.services.Service1");
  });

  it('"two containers with two different routers with same name": the router is dropped, the servers merged', async () => {
    await register(
      { id: "1", tags: ["traefik.http.routers.Router1.rule=Host(`foo.com`)"] },
      { id: "2", address: "127.0.0.2", tags: ["traefik.http.routers.Router1.rule=Host(`bar.com`)"] },
    );
    expect((await config()).body).toEqual({ http: { services: { test: lb("http://127.0.0.1:80", "http://127.0.0.2:80") } } });
  });

  it('"Middlewares used in router": a middleware from labels, named on the default router', async () => {
    await register({
      id: "test",
      tags: [
        "traefik.http.middlewares.Middleware1.basicauth.users=test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/,test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0",
        "traefik.http.routers.Test.middlewares=Middleware1",
      ],
    });
    expect((await config()).body).toEqual({
      http: {
        routers: { Test: { service: "test", rule: "Host(`test.traefik.wtf`)", middlewares: ["Middleware1"] } },
        services: { test: lb("http://127.0.0.1:80") },
        middlewares: { Middleware1: { basicAuth: { users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0"] } } },
      },
    });
  });

  it('"one container with InFlightReq in label (default value)"', async () => {
    await register({ id: "test", tags: ["traefik.http.middlewares.Middleware1.inflightreq.amount=42"] });
    expect((await config()).body.http.middlewares).toEqual({ Middleware1: { inFlightReq: { amount: 42 } } });
  });

  it('"tcp with label without rule": a TCP service and no router (a TCP router needs a rule)', async () => {
    await register({ id: "test", tags: ["traefik.tcp.routers.foo.tls=true"] });
    expect((await config()).body).toEqual({ tcp: { services: { test: { loadBalancer: { servers: [{ address: "127.0.0.1:80" }] } } } } });
  });

  it('"tcp with label" (without Connect): a TCP router with TLS', async () => {
    await register({ id: "test", tags: ["traefik.tcp.routers.foo.rule=HostSNI(`foo.bar`)", "traefik.tcp.routers.foo.tls=true"] });
    expect((await config()).body).toEqual({
      tcp: {
        routers: { foo: { service: "test", rule: "HostSNI(`foo.bar`)", tls: { passthrough: false } } },
        services: { test: { loadBalancer: { servers: [{ address: "127.0.0.1:80" }] } } },
      },
    });
  });

  it('"one container with bad label": a label outside traefik.http/tcp is not configuration, and changes nothing', async () => {
    await register({ id: "test", tags: ["traefik.wrong.label=42"] });
    expect((await config()).body).toEqual({
      http: { routers: { test: { service: "test", rule: "Host(`test.traefik.wtf`)" } }, services: { test: lb("http://127.0.0.1:80") } },
    });
  });

  it('"one container with traefik.enable false" and "one container not healthy": nothing', async () => {
    await register({ id: "off", tags: ["traefik.enable=false"] }, { id: "down", name: "other", ttl: 60_000 });
    await api(server.url, "PUT", "/v1/services/down/heartbeat", { status: "unhealthy" });
    expect((await config()).body).toEqual({});
  });
});

describe("what we decided", () => {
  it("serves only instances tagged traefik.enable=true unless exposedByDefault=true", async () => {
    await register({ id: "web-1", name: "web", tags: ["traefik.enable=true"] }, { id: "db-1", name: "db", port: 5432 });
    const r = await config("");
    // The default rule is Host(`<name>.<domain>`), our --domain (home.arpa in the tests' config).
    expect(r.body).toEqual({ http: { routers: { web: { service: "web", rule: "Host(`web.home.arpa`)" } }, services: { web: lb("http://127.0.0.1:80") } } });
    expect(Object.keys((await config("exposedByDefault=true")).body.http.services)).toEqual(["db", "web"]);
  });

  it("reads the tags of the brief's example: rule, entrypoints, tls, middlewares, port", async () => {
    await register(
      {
        id: "web-1",
        name: "web",
        port: 31001,
        tags: [
          "traefik.enable=true",
          "traefik.http.routers.web.rule=Host(`web.example`)",
          "traefik.http.routers.web.entrypoints=websecure",
          "traefik.http.routers.web.tls=true",
          "traefik.http.routers.web.tls.certresolver=le",
          "traefik.http.routers.web.middlewares=compress,secure",
          "traefik.http.middlewares.compress.compress=true",
          "traefik.http.middlewares.secure.headers.stsSeconds=31536000",
          "traefik.http.middlewares.secure.headers.customResponseHeaders.X-Served-By=homelab",
          "traefik.http.services.web.loadbalancer.server.port=8080",
          "traefik.http.services.web.loadbalancer.server.scheme=https",
          "version=2",
        ],
      },
      // A second instance on another port: one service, two servers, each with its own port (its tag or its own).
      { id: "web-2", name: "web", address: "127.0.0.2", port: 31002, tags: ["traefik.enable=true", "traefik.http.routers.web.rule=Host(`web.example`)",
        "traefik.http.routers.web.entrypoints=websecure", "traefik.http.routers.web.tls=true", "traefik.http.routers.web.tls.certresolver=le",
        "traefik.http.routers.web.middlewares=compress,secure", "traefik.http.services.web.loadbalancer.server.scheme=https"] },
    );
    expect((await config("")).body).toEqual({
      http: {
        routers: { web: { entryPoints: ["websecure"], middlewares: ["compress", "secure"], service: "web", rule: "Host(`web.example`)", tls: { certResolver: "le" } } },
        services: { web: lb("https://127.0.0.1:8080", "https://127.0.0.2:31002") },
        middlewares: { compress: { compress: {} }, secure: { headers: { customResponseHeaders: { "X-Served-By": "homelab" }, stsSeconds: 31536000 } } },
      },
    });
  });

  it("serves healthy and degraded instances (Traefik's default strictChecks: passing, warning), never maintenance; strictChecks narrows it", async () => {
    await register(
      { id: "ok", ttl: 60_000, tags: ["traefik.enable=true"] },
      { id: "slow", address: "127.0.0.2", ttl: 60_000, tags: ["traefik.enable=true"] },
      { id: "bad", address: "127.0.0.3", ttl: 60_000, tags: ["traefik.enable=true"] },
      { id: "new", address: "127.0.0.4", ttl: 60_000, tags: ["traefik.enable=true"] },
      { id: "paused", address: "127.0.0.5", tags: ["traefik.enable=true"] },
    );
    await api(server.url, "PUT", "/v1/services/ok/heartbeat", {});
    await api(server.url, "PUT", "/v1/services/slow/heartbeat", { status: "degraded" });
    await api(server.url, "PUT", "/v1/services/bad/heartbeat", { status: "unhealthy" });
    await api(server.url, "PUT", "/v1/services/paused/maintenance", { enable: true, reason: "upgrade" });
    const urls = async (q: string) => (await config(q)).body.http?.services.test.loadBalancer.servers.map((s: { url: string }) => s.url);
    expect(await urls("")).toEqual(["http://127.0.0.1:80", "http://127.0.0.2:80"]);
    expect(await urls("strictChecks=passing")).toEqual(["http://127.0.0.1:80"]);
    expect(await urls("strictChecks=any")).toHaveLength(5);
    // A service with no instance left is gone, router and all, as consulcatalog drops it.
    await api(server.url, "PUT", "/v1/services/ok/heartbeat", { status: "unhealthy" });
    await api(server.url, "PUT", "/v1/services/slow/heartbeat", { status: "unhealthy" });
    expect((await config("")).body).toEqual({});
  });

  it("leaves out an instance with unusable traefik tags, says so in X-Traefik-Skipped, and warns once per instance", async () => {
    await register(
      { id: "good", tags: ["traefik.enable=true"] },
      { id: "typo", address: "127.0.0.2", tags: ["traefik.enable=true", "traefik.http.routers.web.rulle=Host(`x`)"] },
      { id: "notbool", address: "127.0.0.3", tags: ["traefik.enable=true", "traefik.http.services.s.loadbalancer.passhostheader=yes"] },
    );
    for (let i = 0; i < 3; i++) {
      await api(server.url, "DELETE", "/v1/cache"); // each poll renders again: the warning still comes once
      const r = await config("");
      expect(r.body.http.services.test.loadBalancer.servers).toEqual([{ url: "http://127.0.0.1:80" }]);
      expect(r.headers.get("x-traefik-skipped")).toBe("notbool,typo");
    }
    const warnings = logs.filter((l) => l.level === 40 && l.id !== undefined);
    expect(warnings.map((w) => [w.id, w.reason])).toEqual([
      ["notbool", "traefik.http.services.s.loadbalancer.passhostheader=yes: not a boolean (true or false)"],
      ["typo", expect.stringContaining("traefik.http.routers.web.rulle: Traefik has no such option")],
    ]);
  });

  it("refuses unknown parameters and templates it cannot run", async () => {
    expect((await config("exposedbydefault=true")).status).toBe(400);
    expect((await config("strictChecks=ok")).status).toBe(400);
    expect((await config(`defaultRule=${encodeURIComponent("Host(`{{ .Name | lower }}`)")}`)).status).toBe(400);
    const rule = encodeURIComponent('Host(`{{ index .Labels "traefik.host" }}`)');
    await register({ id: "a", tags: ["traefik.enable=true", "traefik.host=a.lan"] });
    expect((await config(`defaultRule=${rule}`)).body.http.routers.test.rule).toBe("Host(`a.lan`)");
  });

  it("answers with an ETag and X-Index, 304 to If-None-Match, and blocks on index like /v1/services", async () => {
    await register({ id: "a", tags: ["traefik.enable=true"] });
    const first = await config("");
    const etag = first.headers.get("etag")!;
    const index = Number(first.headers.get("x-index"));
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect((await fetch(`${server.url}/v1/traefik/config`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const waiting = config(`index=${index}&wait=5s`);
    await register({ id: "b", address: "127.0.0.2", tags: ["traefik.enable=true"] });
    const next = await waiting;
    expect(Number(next.headers.get("x-index"))).toBeGreaterThan(index);
    expect(next.headers.get("etag")).not.toBe(etag);
    expect(next.body.http.services.test.loadBalancer.servers).toHaveLength(2);
  });
});

describe("examples/traefik/traefik.yml", () => {
  it("points Traefik's HTTP provider at the route we serve", async () => {
    const file = parse(readFileSync(new URL("../../examples/traefik/traefik.yml", import.meta.url), "utf8"));
    const endpoint = new URL(file.providers.http.endpoint);
    expect(endpoint.pathname).toBe("/v1/traefik/config");
    expect(file.providers.http.pollInterval).toMatch(/^\d+(ms|s|m)$/);
    await register({ id: "a", name: "whoami", tags: ["traefik.enable=true"] });
    const r = await api(server.url, "GET", `${endpoint.pathname}${endpoint.search}`);
    expect(r.status).toBe(200);
    expect(r.body.http.routers.whoami.rule).toBe("Host(`whoami.home.arpa`)");
  });
});
