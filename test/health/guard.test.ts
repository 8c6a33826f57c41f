// The service-level guard: more than --check-service-alarm-share of a service's checked instances unhealthy at
// once is said (a warning, /v1/stats, /metrics), once, and said to be over when they come back.
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { ManualClock } from "../../src/lib/clock.js";
import { api, metricSamples, startPeer, startTestServer } from "../helpers.js";

let server: ServerHandle;
let clock: ManualClock;
let peer: Awaited<ReturnType<typeof startPeer>>;
const failing = new Set<string>();
const logs: { level: number; msg: string; name?: string; unhealthy?: number; instances?: number }[] = [];

const tick = async (ms: number) => {
  clock.advance(ms);
  await server.discovery.checker.settled();
};
/** Two failing runs in a row: the scheduled one and its quick recheck. */
const twice = async () => {
  await tick(11_000);
  await tick(3_000);
};
const alarms = async () => (await api(server.url, "GET", "/v1/stats")).body.checks.alarms as { service: string; unhealthy: number; instances: number }[];
const warnings = () => logs.filter((l) => l.level === 40 && l.msg.startsWith("most of a service's instances"));

beforeAll(async () => {
  clock = new ManualClock(Date.now());
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  server = await startTestServer({}, { clock, logger });
  peer = await startPeer((req, res) => res.writeHead(failing.has(req.url!) ? 500 : 200).end());
  const register = Array.from({ length: 4 }, (_, i) => ({ id: `shop-${i}`, name: "shop", address: "127.0.0.1", port: peer.port, healthEndpoint: `/shop-${i}`, healthCheckInterval: 10_000 }));
  await api(server.url, "POST", "/v1/services/bulk", { register: [...register, { id: "lone-0", name: "lone", address: "127.0.0.1", port: peer.port, healthEndpoint: "/lone-0", healthCheckInterval: 10_000 }] });
  await server.discovery.checker.settled();
});
afterAll(async () => {
  await server.stop();
  await peer.close();
});

describe("the service-level guard", () => {
  it("says nothing while half or fewer fail, or for a service of one instance", async () => {
    failing.add("/shop-0").add("/shop-1").add("/lone-0");
    await twice();
    expect((await api(server.url, "GET", "/v1/services?name=shop&health=unhealthy")).body.count).toBe(2);
    expect((await api(server.url, "GET", "/v1/services/lone-0")).body.healthStatus).toBe("unhealthy");
    expect(await alarms()).toEqual([]);
    expect(warnings()).toEqual([]);
  });

  it("warns once when more than half fail at once, and shows the service in /v1/stats and /metrics", async () => {
    failing.add("/shop-2");
    await twice();
    expect(await alarms()).toEqual([{ service: "shop", unhealthy: 3, instances: 4, since: expect.any(String) }]);
    expect(warnings()).toEqual([expect.objectContaining({ name: "shop", unhealthy: 3, instances: 4 })]);
    failing.add("/shop-3");
    await twice();
    await twice();
    expect(warnings()).toHaveLength(1); // said once, counted again
    expect((await alarms())[0]).toMatchObject({ unhealthy: 4 });
    const m = metricSamples((await api(server.url, "GET", "/metrics")).body as string);
    expect(m.get('homelab_discovery_health_service_alarm{service="shop"}')).toBe(1);
    expect(m.get('homelab_discovery_health_service_alarm_unhealthy_ratio{service="shop"}')).toBe(1);
    expect(m.get("homelab_discovery_health_service_alarms_total")).toBe(1);
  });

  it("says when it is over, as the instances come back", async () => {
    failing.clear();
    await tick(330_000); // the backed-off checks (--check-backoff-max 5 min) run and pass
    expect(await alarms()).toEqual([]);
    expect(logs.some((l) => l.msg === "a service's instances are back: alarm over" && l.name === "shop")).toBe(true);
    const m = metricSamples((await api(server.url, "GET", "/metrics")).body as string);
    expect(m.has('homelab_discovery_health_service_alarm{service="shop"}')).toBe(false);
  });

  it("is off with a share of 1", async () => {
    const ownClock = new ManualClock(Date.now());
    const own = await startTestServer({ checkServiceAlarmShare: 1 }, { clock: ownClock });
    const register = Array.from({ length: 3 }, (_, i) => ({ id: `off-${i}`, name: "off", address: "127.0.0.1", port: peer.port, healthEndpoint: "/off", healthCheckInterval: 10_000 }));
    failing.add("/off");
    await api(own.url, "POST", "/v1/services/bulk", { register });
    await own.discovery.checker.settled();
    expect((await api(own.url, "GET", "/v1/services?name=off&health=unhealthy")).body.count).toBe(3);
    expect((await api(own.url, "GET", "/v1/stats")).body.checks.alarms).toEqual([]);
    await own.stop();
  });
});
