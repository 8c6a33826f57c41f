// One suite, two implementations: the embedded Discovery and DiscoveryClient over HTTP must behave alike,
// so code moves between embedded and remote use unchanged. The seed's examples run against both.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databaseExample } from "../../examples/library/database.js";
import { loadBalancerExample } from "../../examples/library/load-balancer.js";
import { webApiExample } from "../../examples/library/web-api.js";
import { DiscoveryClient } from "../../src/client/client.js";
import { startDiscovery } from "../../src/app/index.js";
import type { DiscoveryApi } from "../../src/registry/index.js";
import { ConflictError, InvalidError, NotFoundError, UnauthorizedError, UnavailableError } from "../../src/lib/errors.js";
import { newServiceQuery } from "../../src/registry/query.js";
import { serviceUpdates } from "../../src/client/updates.js";
import type { ServerHandle } from "../../src/app/server.js";
import { closedPort, startTestServer } from "../helpers.js";

type Make = () => Promise<{ api: DiscoveryApi; close(): Promise<void> }>;

const implementations: [string, Make][] = [
  [
    "embedded",
    async () => {
      const api = await startDiscovery({ nodeId: "test-node" });
      return { api, close: () => api.stop() };
    },
  ],
  [
    "remote",
    async () => {
      const server = await startTestServer();
      const api = new DiscoveryClient({ url: server.url });
      return {
        api,
        close: async () => {
          await api.stop();
          await server.stop();
        },
      };
    },
  ],
];

describe.each(implementations)("DiscoveryApi (%s)", (_kind, make) => {
  let api: DiscoveryApi;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ api, close } = await make());
  });
  afterAll(() => close());

  it("runs the seed's web-api example", async () => {
    expect(await webApiExample(api)).toEqual({
      production: ["web-api-1 10.0.1.10:8080"],
      recent: ["web-api-2 v1.3.1"],
      platformApis: ["web-api-1", "web-api-2"],
    });
  });

  it("runs the seed's database example", async () => {
    expect(await databaseExample(api)).toEqual({ primary: "postgresql://10.0.2.10:5432/", candidates: 1 });
  });

  it("runs the seed's load-balancer example", async () => {
    expect(await loadBalancerExample(api)).toEqual({
      upstreams: ["10.0.3.10:9000", "10.0.3.11:9000", "10.0.3.12:9000"],
      picks: ["backend-1", "backend-2", "backend-3", "backend-1", "backend-2", "backend-3"],
    });
  });

  it("gets, deregisters and reports typed failures", async () => {
    expect((await api.getService("user-api-1")).name).toBe("user-api");
    expect((await api.deregisterService("user-api-1")).id).toBe("user-api-1");
    await expect(api.getService("user-api-1")).rejects.toBeInstanceOf(NotFoundError);
    await expect(api.deregisterService("user-api-1")).rejects.toBeInstanceOf(NotFoundError);
    const invalid = await api.registerService({ id: "x", name: "Bad Name", address: "10.0.0.1", port: 1 }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(InvalidError);
    expect((invalid as InvalidError).issues).toEqual([{ path: ["name"], message: expect.stringContaining("DNS label") }]);
    await expect(api.discoverServices({ healthStatus: "sick" as never })).rejects.toBeInstanceOf(InvalidError);
  });

  it("watches a query: an answer and its index, then the next answer once the query's name changes", async () => {
    const first = await api.watchServices(newServiceQuery().withName("watched"));
    expect(first.services).toEqual([]);
    expect(first.index).toBeGreaterThan(0);
    const next = api.watchServices(newServiceQuery().withName("watched"), { index: first.index, waitMs: 20_000 });
    await api.registerService({ id: "unrelated-1", name: "unrelated", address: "10.0.9.2", port: 1 });
    await api.registerService({ id: "watched-1", name: "watched", address: "10.0.9.3", port: 1 });
    const changed = await next;
    expect(changed.services.map((e) => e.id)).toEqual(["watched-1"]);
    expect(changed.index).toBeGreaterThan(first.index);
    const timedOut = await api.watchServices(newServiceQuery().withName("watched"), { index: changed.index, waitMs: 30 });
    expect(timedOut.index).toBe(changed.index);
    await expect(api.watchServices(undefined, { index: 1, waitMs: 11 * 60_000 })).rejects.toBeInstanceOf(InvalidError);
  });

  it("watches one instance: absent, registered, its status changed, gone", async () => {
    const absent = await api.watchService("single-1");
    expect(absent.service).toBeNull();
    const appearing = api.watchService("single-1", { index: absent.index, waitMs: 20_000 });
    await api.registerService({ id: "single-1", name: "single", address: "10.0.9.7", port: 1, ttl: 60_000 });
    const registered = await appearing;
    expect(registered.service?.healthStatus).toBe("unknown");
    expect(registered.index).toBeGreaterThan(absent.index);
    expect(await api.watchService("single-1", { index: registered.index, waitMs: 30 })).toEqual(registered);

    const changing = api.watchService("single-1", { index: registered.index, waitMs: 20_000 });
    await api.heartbeat("single-1");
    const healthy = await changing;
    expect(healthy.service?.healthStatus).toBe("healthy");
    expect(healthy.index).toBeGreaterThan(registered.index);

    const going = api.watchService("single-1", { index: healthy.index, waitMs: 20_000 });
    await api.deregisterService("single-1");
    expect((await going).service).toBeNull();
    await expect(api.watchService("single-1", { index: 1, waitMs: 11 * 60_000 })).rejects.toBeInstanceOf(InvalidError);
    await expect(api.watchService("not an id!")).rejects.toBeInstanceOf(InvalidError);
  });

  it("serviceUpdates yields the answer, then each different one, and ends when its signal aborts", async () => {
    const abort = new AbortController();
    const updates = serviceUpdates(api, newServiceQuery().withName("updated"), { signal: abort.signal });
    const seen: string[][] = [];
    const done = (async () => {
      for await (const services of updates) {
        seen.push(services.map((e) => e.id));
        if (seen.length === 1) await api.registerService({ id: "updated-1", name: "updated", address: "10.0.9.4", port: 1 });
        if (seen.length === 2) {
          await api.registerService({ id: "elsewhere-1", name: "elsewhere", address: "10.0.9.5", port: 1 });
          await api.registerService({ id: "updated-2", name: "updated", address: "10.0.9.6", port: 1 });
        }
        if (seen.length === 3) abort.abort();
      }
    })();
    await done;
    expect(seen).toEqual([[], ["updated-1"], ["updated-1", "updated-2"]]);
  });

  it("bulk-registers and reports per-item errors the same way", async () => {
    const ok = await api.bulk({ register: [{ id: "bulk-1", name: "bulk", address: "10.0.9.1", port: 1 }] });
    expect(ok.registered.map((e) => e.id)).toEqual(["bulk-1"]);
    const err = await api.bulk({ deregister: ["bulk-1", "ghost"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as InvalidError).details?.items).toEqual([{ index: 1, id: "ghost", code: "not_found", message: "service ghost is not registered" }]);
    expect((await api.getService("bulk-1")).id).toBe("bulk-1");
  });

  it("heartbeats a TTL instance and puts an instance in maintenance", async () => {
    await api.registerService({ id: "beat-1", name: "beat", address: "10.0.5.1", port: 1, ttl: 60_000 });
    expect((await api.getService("beat-1")).healthStatus).toBe("unknown");
    expect((await api.heartbeat("beat-1")).healthStatus).toBe("healthy");
    expect((await api.heartbeat("beat-1", { status: "degraded", note: "slow disk" })).healthStatus).toBe("degraded");
    await expect(api.heartbeat("backend-1")).rejects.toBeInstanceOf(ConflictError);
    await expect(api.heartbeat("beat-1", { status: "bogus" as never })).rejects.toBeInstanceOf(InvalidError);
    const on = await api.setMaintenance("backend-2", { enable: true, reason: "swap disk" });
    expect(on.maintenance?.reason).toBe("swap disk");
    expect((await api.discoverServices({ name: "backend", healthStatus: "healthy" })).map((e) => e.id)).toEqual(["backend-1", "backend-3"]);
    expect((await api.setMaintenance("backend-2", { enable: false })).maintenance).toBeUndefined();
    await expect(api.setMaintenance("ghost", { enable: true })).rejects.toBeInstanceOf(NotFoundError);
    await api.deregisterService("beat-1");
  });

  it("checks on demand, reports stats, clears the cache and syncs", async () => {
    const check = await api.healthCheckService("backend-1");
    expect(check).toMatchObject({ id: "backend-1", kind: "none", status: "healthy", previousStatus: "healthy" });
    const all = await api.healthCheckAll();
    expect(all.checked).toBe(0); // nothing here declares a check
    const stats = await api.getRegistryStats();
    expect(stats.localCount).toBe(stats.byHealth.healthy);
    expect(stats.cache.misses).toBeGreaterThan(0);
    expect((await api.clearCache()).cleared).toBeGreaterThanOrEqual(0);
    expect((await api.syncRegistry()).synced).toBe(false);
    expect((await api.discoverServices(newServiceQuery().withName("backend"))).length).toBe(3);
  });
});

describe("DiscoveryClient failures", () => {
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startTestServer({ adminToken: "token-12345" });
  });
  afterAll(() => server.stop());

  it("is UnauthorizedError without the token and works with it", async () => {
    const anonymous = new DiscoveryClient({ url: server.url });
    await expect(anonymous.registerService({ id: "a", name: "a", address: "10.0.0.1", port: 1 })).rejects.toBeInstanceOf(UnauthorizedError);
    const admin = new DiscoveryClient({ url: server.url, adminToken: "token-12345" });
    expect((await admin.registerService({ id: "a", name: "a", address: "10.0.0.1", port: 1 })).id).toBe("a");
    await Promise.all([anonymous.stop(), admin.stop()]);
  });

  it("is UnavailableError when nothing listens", async () => {
    const client = new DiscoveryClient({ url: `http://127.0.0.1:${await closedPort()}`, timeoutMs: 2_000 });
    await expect(client.getRegistryStats()).rejects.toBeInstanceOf(UnavailableError);
    await client.stop();
  });
});

describe.each(implementations)("serviceEvents (%s)", (_kind, make) => {
  it("yields what happens to the query's instances after `after`, in order, with their indexes", async () => {
    const { api, close } = await make();
    const abort = new AbortController();
    try {
      const { index } = await api.watchServices(newServiceQuery().withName("evt"));
      const events = api.serviceEvents(newServiceQuery().withName("evt"), { after: index, signal: abort.signal });
      await api.registerService({ id: "evt-1", name: "evt", address: "10.0.9.1", port: 1, ttl: 60_000 });
      await api.registerService({ id: "other-1", name: "other", address: "10.0.9.2", port: 1 });
      await api.heartbeat("evt-1", { status: "degraded", note: "slow disk" });
      await api.setMaintenance("evt-1", { enable: true, reason: "patching" });
      await api.deregisterService("evt-1");
      const seen = [];
      for await (const e of events) {
        seen.push(e);
        if (seen.length === 4) break;
      }
      expect(seen.map((e) => e.type)).toEqual(["registered", "health", "maintenance", "deregistered"]);
      expect(seen[1]).toMatchObject({ previousStatus: "unknown", healthStatus: "degraded", reason: "heartbeat: slow disk" });
      const indexes = seen.map((e) => e.index);
      expect(indexes[0]).toBeGreaterThan(index);
      expect([...indexes].sort((a, b) => a - b)).toEqual(indexes);
      // An invalid query is the same typed error embedded and remote.
      await expect(api.serviceEvents({ healthStatus: "sick" as never }).next()).rejects.toBeInstanceOf(InvalidError);
    } finally {
      abort.abort();
      await close();
    }
  });
});

describe("serviceEvents over HTTP", () => {
  it("reconnects after the server went away, with Last-Event-ID: a new process answers with a reset, never a gap", async () => {
    const first = await startTestServer();
    const port = Number(new URL(first.url).port);
    const client = new DiscoveryClient({ url: first.url, timeoutMs: 2_000 });
    const abort = new AbortController();
    let second: ServerHandle | undefined;
    try {
      const events = client.serviceEvents(undefined, { after: first.discovery.changes.current, signal: abort.signal, retryMs: [20, 50] });
      await first.discovery.registerService({ id: "a-1", name: "a", address: "10.0.9.3", port: 1 });
      expect((await events.next()).value).toMatchObject({ type: "registered", instance: { id: "a-1" } });
      await first.stop();
      second = await startTestServer({ httpListen: { host: "127.0.0.1", port } });
      const reset = (await events.next()).value;
      expect(reset).toMatchObject({ type: "reset", index: second.discovery.changes.current });
      await second.discovery.registerService({ id: "b-1", name: "b", address: "10.0.9.4", port: 1 });
      expect((await events.next()).value).toMatchObject({ type: "registered", instance: { id: "b-1" } });
    } finally {
      abort.abort();
      await client.stop();
      await second?.stop();
    }
  });
});

describe("serviceUpdates over HTTP", () => {
  it("asks again while the server cannot be reached, and goes on once it answers", async () => {
    const port = await closedPort();
    const client = new DiscoveryClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 2_000 });
    const abort = new AbortController();
    const first = serviceUpdates(client, newServiceQuery().withName("late"), { signal: abort.signal, retryMs: [20, 50] }).next();
    await new Promise((r) => setTimeout(r, 100)); // a few refused attempts
    const server = await startTestServer({ httpListen: { host: "127.0.0.1", port } });
    try {
      await server.discovery.registerService({ id: "late-1", name: "late", address: "10.0.9.7", port: 1 });
      const got = await first;
      expect(got.value?.map((e: { id: string }) => e.id)).toEqual(["late-1"]);
    } finally {
      abort.abort();
      await client.stop();
      await server.stop();
    }
  });

  it("an invalid query ends it with the error, and an aborted wait ends it quietly", async () => {
    const server = await startTestServer();
    const client = new DiscoveryClient({ url: server.url });
    try {
      await expect(serviceUpdates(client, { healthStatus: "sick" as never }).next()).rejects.toBeInstanceOf(InvalidError);
      const abort = new AbortController();
      const updates = serviceUpdates(client, newServiceQuery().withName("quiet"), { signal: abort.signal });
      expect((await updates.next()).value).toEqual([]);
      const next = updates.next(); // a blocking query now waits on the server
      await expect.poll(() => server.discovery.changes.waiters).toBe(1);
      abort.abort();
      expect(await next).toEqual({ done: true, value: undefined });
      await expect.poll(() => server.discovery.changes.waiters).toBe(0);
    } finally {
      await client.stop();
      await server.stop();
    }
  });
});
