// Scoped tokens over real HTTP: every route the app serves has an explicit scope in auth.ts's table (a new route
// cannot be left out by accident), and every route, called with no token, an unknown one and each scope's token,
// answers as its scope says: 401 without a known token, 403 with a token below the scope, through otherwise.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { createHttpApp, servedRoutes } from "../../src/http/index.js";
import { ROUTE_SCOPES, scopeOf, type Scope } from "../../src/http/auth.js";
import { DiscoveryClient } from "../../src/client/index.js";
import { api, silent, startTestServer } from "../helpers.js";

const ADMIN = "admin-token-1234";
const WRITE = "write-token-1234";
const READ = "read-token-12345";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const SAMPLE: Record<string, string> = { id: "web-1", name: "web", node: "test-node", state: "any", check: "service:web-1" };
const concrete = (path: string) => path.replace(/:([^/]+)/g, (_, p: string) => SAMPLE[p] ?? p);

let server: ServerHandle;
beforeAll(async () => {
  server = await startTestServer({ adminToken: ADMIN, writeToken: WRITE, readToken: READ });
});
// The table test deregisters and restores: each test starts with web-1 registered.
beforeEach(async () => {
  expect((await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "127.0.0.1", port: 8080, ttl: 60_000 }, bearer(WRITE))).status).toBeLessThan(300);
});
afterAll(() => server.stop());

/** Every route the app serves, as the table sees it (the metrics route too). */
function routes(): { method: string; path: string }[] {
  const app = createHttpApp(server.discovery, { logger: silent, metrics: { contentType: "text/plain", render: async () => "" } });
  return servedRoutes(app);
}

/** One call; an event stream is cut off once its status is known. */
async function call(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const abort = new AbortController();
  const init: RequestInit = { method, headers: { ...headers }, signal: abort.signal };
  if (method !== "GET" && method !== "DELETE") {
    init.body = "{}";
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await fetch(`${server.url}${path}`, init);
  if ((res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    abort.abort();
    return { status: res.status, body: undefined };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a page, a script, the metrics text
  }
  return { status: res.status, body };
}

describe("the route table", () => {
  it("gives every served route an explicit scope, and names no route that is not served", () => {
    const served = routes();
    const missing = served.filter((r) => ROUTE_SCOPES[`${r.method} ${r.path}`] === undefined).map((r) => `${r.method} ${r.path}`);
    expect(missing, "routes without a line in src/http/auth.ts ROUTE_SCOPES").toEqual([]);
    const keys = new Set(served.map((r) => `${r.method} ${r.path}`));
    expect(Object.keys(ROUTE_SCOPES).filter((k) => !keys.has(k))).toEqual([]);
    // Reads are GETs; nothing that changes state is open or read.
    for (const r of served) if (r.method !== "GET") expect(["write", "admin"], `${r.method} ${r.path}`).toContain(scopeOf(r.method, r.path));
    expect(scopeOf("GET", "/v1/snapshot")).toBe("admin");
  });
});

describe("a server with read, write and admin tokens", () => {
  it("answers every route as its scope says, for no token, an unknown one and each scope's token", async () => {
    const tokens: [string, Record<string, string>, number][] = [
      ["none", {}, 0],
      ["unknown", bearer("not-a-token-of-ours"), -1],
      ["read", bearer(READ), 1],
      ["write", bearer(WRITE), 2],
      ["admin", bearer(ADMIN), 3],
    ];
    const level: Record<Scope, number> = { open: 0, read: 1, write: 2, admin: 3 };
    const seen: string[] = [];
    // Reads first, then writes, then admin routes (a restore or a deregistration would change what follows).
    const order = routes().sort((a, b) => level[scopeOf(a.method, a.path)!] - level[scopeOf(b.method, b.path)!]);
    for (const { method, path } of order) {
      const scope = scopeOf(method, path)!;
      const url = concrete(path);
      // The write and admin tokens are tried last: a write that goes through may change the next calls' answers.
      for (const [name, headers, have] of tokens) {
        const { status, body } = await call(method, url, headers);
        const label = `${method} ${url} with ${name} token (route scope ${scope})`;
        if (scope === "open" || have >= level[scope]) {
          expect([401, 403], label).not.toContain(status);
        } else if (have <= 0) {
          expect(status, label).toBe(401);
          expect(body.error.code, label).toBe("unauthorized");
          expect(body.error.message, label).toMatch(new RegExp(`needs the ${scope} token`));
        } else {
          expect(status, label).toBe(403);
          expect(body.error.code, label).toBe("forbidden");
          expect(body.error.message, label).toContain(`the ${name} token does not have the ${scope} scope`);
        }
      }
      seen.push(`${method} ${path}`);
    }
    expect(seen.length).toBe(Object.keys(ROUTE_SCOPES).length);
  });

  it("names the tokens that would do in a 403: a read token writing is told the write or admin token", async () => {
    const r = await call("PUT", "/v1/services/web-9", bearer(READ));
    expect(r.status).toBe(403);
    expect(r.body.error.message).toBe("PUT /v1/services/web-9 needs the write token (or the admin token); the read token does not have the write scope");
    const snap = await call("GET", "/v1/snapshot", bearer(WRITE));
    expect(snap.status).toBe(403);
    expect(snap.body.error.message).toContain("needs the admin token");
  });

  it("takes Consul's ways on the Consul paths: X-Consul-Token and ?token=", async () => {
    expect((await call("GET", "/v1/catalog/services")).status).toBe(401);
    expect((await call("GET", "/v1/catalog/services", { "x-consul-token": READ })).status).toBe(200);
    expect((await call("GET", `/v1/health/service/web?token=${READ}`)).status).toBe(200);
    expect((await call("PUT", "/v1/agent/check/pass/service:web-1", { "x-consul-token": READ })).status).toBe(403);
    expect((await call("PUT", "/v1/agent/check/pass/service:web-1", { "x-consul-token": WRITE })).status).toBe(200);
    // Not on our own paths: a token in a URL lands in logs.
    expect((await call("GET", `/v1/services?token=${READ}`)).status).toBe(401);
  });

  it("keeps /v1/status a health probe for anyone, its details for a reader", async () => {
    const open = await call("GET", "/v1/status");
    expect(open.status).toBe(200);
    expect(open.body).toEqual({ status: "ok" });
    const full = await call("GET", "/v1/status", bearer(READ));
    expect(full.body).toMatchObject({ status: "ok", nodeId: "test-node" });
  });

  it("serves the dashboard as a shell with no data, which reads with the token typed in", async () => {
    const res = await fetch(`${server.url}/ui`);
    expect(res.status).toBe(200);
    const page = await res.text();
    const data = JSON.parse(/<script id="initial" type="application\/json">(.*?)<\/script>/s.exec(page)![1]!) as { services: unknown[]; locked: boolean };
    expect(data).toMatchObject({ services: [], locked: true });
    expect(page).not.toContain("web-1");
  });

  it("the client sends its token on every request, the event stream included; adminToken still works", async () => {
    const reader = new DiscoveryClient({ url: server.url, token: READ });
    const writer = new DiscoveryClient({ url: server.url, adminToken: WRITE });
    const stranger = new DiscoveryClient({ url: server.url });
    try {
      expect((await reader.discoverServices({ name: "web" })).map((s) => s.id)).toContain("web-1");
      await expect(reader.heartbeat("web-1")).rejects.toMatchObject({ kind: "forbidden" });
      await expect(stranger.discoverServices()).rejects.toMatchObject({ kind: "unauthorized" });
      await expect(stranger.serviceEvents().next()).rejects.toMatchObject({ kind: "unauthorized" });
      const abort = new AbortController();
      // From the index before the write: the registration is on the stream whenever it connects.
      const events = reader.serviceEvents({ name: "web" }, { after: server.discovery.changes.current, signal: abort.signal });
      const first = events.next();
      await writer.registerService({ id: "web-2", name: "web", version: "1.0.0", nodeId: "test-node", address: "127.0.0.2", port: 8080 } as never);
      expect((await first).value).toMatchObject({ type: "registered", instance: { id: "web-2" } });
      abort.abort();
    } finally {
      await Promise.all([reader.stop(), writer.stop(), stranger.stop()]);
    }
  });
});

describe("/metrics", () => {
  it("needs a read token when one is set, unless --metrics-open", async () => {
    expect((await call("GET", "/metrics")).status).toBe(401);
    expect((await call("GET", "/metrics", bearer(READ))).status).toBe(200);
    const open = await startTestServer({ adminToken: ADMIN, readToken: READ, metricsOpen: true });
    try {
      expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${open.url}/v1/services`)).status).toBe(401);
    } finally {
      await open.stop();
    }
  });
});

describe("a server with the admin token alone (as before scoped tokens)", () => {
  it("leaves reads open, the event stream and the providers included, and takes the admin token for writes", async () => {
    const solo = await startTestServer({ adminToken: ADMIN });
    try {
      for (const path of ["/v1/services", "/v1/catalog/services", "/v1/prometheus/targets", "/v1/traefik/config", "/v1/stats"]) {
        expect((await fetch(`${solo.url}${path}`)).status, path).toBe(200);
      }
      const abort = new AbortController();
      expect((await fetch(`${solo.url}/v1/events`, { signal: abort.signal })).status).toBe(200);
      abort.abort();
      const denied = await api(solo.url, "PUT", "/v1/services/a", { name: "a", address: "10.0.0.1", port: 1 });
      expect(denied.status).toBe(401);
      expect(denied.body.error.message).toBe("this route needs the admin token: Authorization: Bearer <token>");
      expect((await api(solo.url, "PUT", "/v1/services/a", { name: "a", address: "10.0.0.1", port: 1 }, bearer(ADMIN))).status).toBe(201);
      expect((await api(solo.url, "GET", "/v1/snapshot")).status).toBe(401);
    } finally {
      await solo.stop();
    }
  });
});
