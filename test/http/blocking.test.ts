// Blocking queries over HTTP (Consul's ?index=&wait=): real requests against a started server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";

let server: ServerHandle;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

const svc = (name: string, over: Record<string, unknown> = {}) => ({ name, address: "10.0.0.1", port: 80, ...over });
const indexOf = (res: { headers: Headers }) => Number(res.headers.get("x-index"));

describe("GET /v1/services?index=&wait= (blocking queries)", () => {
  it("every answer carries X-Index, and it grows with a change", async () => {
    const first = await api(server.url, "GET", "/v1/services?name=idx");
    expect(first.status).toBe(200);
    expect(indexOf(first)).toBeGreaterThan(0);
    await api(server.url, "PUT", "/v1/services/idx-1", svc("idx"));
    const second = await api(server.url, "GET", "/v1/services?name=idx");
    expect(indexOf(second)).toBeGreaterThan(indexOf(first));
  });

  it("waits for a change to its name and answers with it; changes to other names do not end the wait", async () => {
    const start = await api(server.url, "GET", "/v1/services?name=blk&tag=a");
    expect(start.body.count).toBe(0);
    const blocked = api(server.url, "GET", `/v1/services?name=blk&tag=a&index=${indexOf(start)}&wait=20s`);
    await expect.poll(() => server.discovery.changes.waiters).toBe(1);
    await api(server.url, "PUT", "/v1/services/other-1", svc("other"));
    expect(server.discovery.changes.waiters).toBe(1);
    const registered = await api(server.url, "PUT", "/v1/services/blk-1", svc("blk", { tags: ["a"] }));
    expect(registered.status).toBe(201);
    const afterRegister = indexOf(await api(server.url, "GET", "/v1/services?name=blk"));
    const res = await blocked;
    expect(res.status).toBe(200);
    expect(res.body.services.map((s: { id: string }) => s.id)).toEqual(["blk-1"]);
    // Woken by blk-1, not by other-1 (which came first, with a lower index).
    expect(indexOf(res)).toBe(afterRegister);
  });

  it("answers with the same index when the wait runs out, and at once for an index already passed", async () => {
    await api(server.url, "PUT", "/v1/services/quiet-1", svc("quiet"));
    const start = await api(server.url, "GET", "/v1/services?name=quiet");
    const timedOut = await api(server.url, "GET", `/v1/services?name=quiet&index=${indexOf(start)}&wait=50ms`);
    expect(timedOut.status).toBe(200);
    expect(timedOut.body).toEqual(start.body);
    expect(indexOf(timedOut)).toBe(indexOf(start));

    await api(server.url, "PUT", "/v1/services/quiet-2", svc("quiet"));
    // The old index: answers at once (a 10-minute wait would time the test out).
    const passed = await api(server.url, "GET", `/v1/services?name=quiet&index=${indexOf(start)}&wait=10m`);
    expect(passed.body.count).toBe(2);
  });

  it("a query without a name wakes on any change; a deregistration wakes its name", async () => {
    await api(server.url, "PUT", "/v1/services/gone-1", svc("gone"));
    const start = await api(server.url, "GET", "/v1/services?node=elsewhere");
    const any = api(server.url, "GET", `/v1/services?node=elsewhere&index=${indexOf(start)}`);
    const named = api(server.url, "GET", `/v1/services?name=gone&index=${indexOf(start)}`);
    await expect.poll(() => server.discovery.changes.waiters).toBe(2);
    expect((await api(server.url, "DELETE", "/v1/services/gone-1")).status).toBe(200);
    expect((await any).status).toBe(200);
    expect((await named).body.count).toBe(0);
  });

  it("a client that goes away stops waiting", async () => {
    const start = await api(server.url, "GET", "/v1/services?name=leave");
    const abort = new AbortController();
    const pending = fetch(`${server.url}/v1/services?name=leave&index=${indexOf(start)}`, { signal: abort.signal }).catch(() => "aborted");
    await expect.poll(() => server.discovery.changes.waiters).toBe(1);
    const stats = await api(server.url, "GET", "/v1/stats");
    expect(stats.body).toMatchObject({ blockingQueries: 1, index: indexOf(start) });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^homelab_discovery_blocking_queries 1$/m);
    abort.abort();
    expect(await pending).toBe("aborted");
    await expect.poll(() => server.discovery.changes.waiters).toBe(0);
  });

  it("rejects bad parameters with a 400 that says what is wrong, before waiting", async () => {
    const cases: [string, RegExp][] = [
      ["index=abc", /index must be the X-Index of an earlier answer/],
      ["index=1&index=2", /'index' may be given once/],
      ["index=1&wait=11m", /wait may be at most 10m/],
      ["index=1&wait=soon", /wait must be a duration such as 250ms, 30s or 5m/],
      [`index=${Number.MAX_SAFE_INTEGER}&wait=10m&tags=a`, /unknown parameter 'tags'/],
      [`index=${Number.MAX_SAFE_INTEGER}&wait=10m&health=sick`, /health/],
    ];
    for (const [params, message] of cases) {
      const res = await api(server.url, "GET", `/v1/services?${params}`);
      expect(res.status, params).toBe(400);
      expect(res.body.error.message, params).toMatch(message);
    }
  });

  it("a metadata key named index or wait is a metadata filter, not a blocking parameter", async () => {
    await api(server.url, "PUT", "/v1/services/meta-1", svc("metaidx", { metadata: { index: "7", wait: "no" } }));
    const res = await api(server.url, "GET", "/v1/services?meta.index=7&meta.wait=no");
    expect(res.status).toBe(200);
    expect(res.body.services.map((s: { id: string }) => s.id)).toEqual(["meta-1"]);
  });
});

describe("GET /v1/services/{id}?index=&wait= (one instance)", () => {
  it("carries X-Index on 200 and 404, waits for the id to appear, and only its name's changes wake it", async () => {
    const absent = await api(server.url, "GET", "/v1/services/one-1");
    expect(absent.status).toBe(404);
    expect(absent.body.error.message).toBe("service one-1 is not registered");
    expect(indexOf(absent)).toBeGreaterThan(0);
    const appearing = api(server.url, "GET", `/v1/services/one-1?index=${indexOf(absent)}&wait=20s`);
    await expect.poll(() => server.discovery.changes.waiters).toBe(1);
    await api(server.url, "PUT", "/v1/services/one-1", svc("one"));
    const registered = await appearing;
    expect(registered.status).toBe(200);
    expect(registered.body.id).toBe("one-1");

    const changing = api(server.url, "GET", `/v1/services/one-1?index=${indexOf(registered)}&wait=20s`);
    await expect.poll(() => server.discovery.changes.waiters).toBe(1);
    await api(server.url, "PUT", "/v1/services/two-1", svc("two"));
    expect(server.discovery.changes.waiters).toBe(1);
    await api(server.url, "PUT", "/v1/services/one-1/maintenance", { enable: true, reason: "disk" });
    const res = await changing;
    expect(res.body.maintenance.reason).toBe("disk");
    expect(indexOf(res)).toBeGreaterThan(indexOf(registered));

    const going = api(server.url, "GET", `/v1/services/one-1?index=${indexOf(res)}`);
    await expect.poll(() => server.discovery.changes.waiters).toBe(1);
    await api(server.url, "DELETE", "/v1/services/one-1");
    expect((await going).status).toBe(404);
  });

  it("rejects unknown and bad parameters with a 400, so a typo never answers at once silently", async () => {
    for (const [params, message] of [
      ["wiat=5s", /unknown parameter 'wiat'/],
      ["index=x", /index must be the X-Index/],
      ["index=1&wait=11m", /wait may be at most 10m/],
    ] as const) {
      const res = await api(server.url, "GET", `/v1/services/one-2?${params}`);
      expect(res.status, params).toBe(400);
      expect(res.body.error.message, params).toMatch(message);
    }
  });
});

describe("blocking queries and shutdown", () => {
  it("a stop answers the queries still waiting instead of waiting for them", async () => {
    const own = await startTestServer();
    const start = await api(own.url, "GET", "/v1/services?name=stopping");
    const pending = api(own.url, "GET", `/v1/services?name=stopping&index=${indexOf(start)}&wait=10m`);
    await expect.poll(() => own.discovery.changes.waiters).toBe(1);
    const t0 = performance.now();
    await own.stop();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(indexOf(res)).toBe(indexOf(start));
    // Not the 10 minutes of the wait, nor the client's keep-alive on the connection it came on (3 s here).
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});
