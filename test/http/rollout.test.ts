// A rollout through the real server (issue 21): POST /v1/routing/<name>/rollout against instances whose health is
// a real HTTP check on loopback. The split steps on schedule in DNS (SRV weights over real UDP), /v1/status and
// /metrics show it, and when the canary's check starts failing the split goes back to 0 at once. Bad requests
// are 400 with the zod message, a rollout without a healthy canary is 409, and neither changes the policy.
import { afterEach, describe, expect, it } from "vitest";
import { api, startPeer, startTestServer } from "../helpers.js";
import { decode, Packet, query, udp } from "../dns/helpers.js";

const DOMAIN = "test.internal";

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("a rollout over HTTP", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup() {
    let canaryUp = true;
    const peer = await startPeer((req, res) => res.writeHead(req.url === "/canary" && !canaryUp ? 503 : 200).end());
    cleanup.push(() => peer.close());
    const s = await startTestServer({ domain: DOMAIN });
    cleanup.push(() => s.stop());
    const instance = (id: string, version: string, port: number, path: string) => ({
      id, name: "web", version, address: "127.0.0.1", port, checks: [{ kind: "http", url: `http://127.0.0.1:${peer.port}${path}`, interval: 1_000 }],
    });
    const reg = await api(s.url, "POST", "/v1/services/bulk", {
      register: [instance("web-2a", "2.0.0", 8001, "/stable"), instance("web-2b", "2.0.0", 8002, "/stable"), instance("web-3", "3.0.0", 8003, "/canary")],
    });
    expect(reg.status).toBe(200);
    await until("all healthy", async () => (await api(s.url, "GET", "/v1/services?name=web&health=healthy")).body.count === 3);
    const srv = async () =>
      decode((await udp(s.dnsAddress.port, query(`_web._tcp.service.${DOMAIN}`, Packet.TYPE.SRV)))!)
        .answers.map((a: any) => [a.port, Math.floor((a.weight + 255) / 256)])
        .sort((x: number[], y: number[]) => x[0]! - y[0]!);
    return { s, srv, failCanary: () => (canaryUp = false) };
  }

  it("refuses a bad request with the zod message and a rollout with no healthy canary, changing nothing", async () => {
    const { s } = await setup();
    const bad = await api(s.url, "POST", "/v1/routing/web/rollout", { from: "^2", to: "^3", pauseMs: 1000, steps: [10, 50] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("must end at 100");
    const none = await api(s.url, "POST", "/v1/routing/web/rollout", { from: "^2", to: "^4", pauseMs: 1000 });
    expect(none.status).toBe(409);
    expect(none.body.error.message).toMatch(/no healthy instance of web has a version matching "\^4"/);
    expect((await api(s.url, "GET", "/v1/routing/web")).status).toBe(404);
    expect((await api(s.url, "GET", "/v1/routing/web/rollout")).status).toBe(404);
    expect((await api(s.url, "DELETE", "/v1/routing/web/rollout")).status).toBe(404);
  });

  it("steps on schedule, shows in /v1/status and /metrics, and rolls back at once when the canary's check fails", { timeout: 30_000 }, async () => {
    const { s, srv, failCanary } = await setup();
    const started = await api(s.url, "POST", "/v1/routing/web/rollout", { from: "^2", to: "^3", pauseMs: 4_000, steps: [10, 50, 100] });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ name: "web", split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }], rollout: { state: "running", step: 0 } });
    // 90 / 10, as HAProxy reads the SRV weights: the stable version's two instances share its 90.
    expect(await srv()).toEqual([[8001, 45], [8002, 45], [8003, 10]]);
    const status = (await api(s.url, "GET", "/v1/status")).body;
    expect(status.rollouts).toEqual([expect.objectContaining({ service: "web", from: "^2", to: "^3", percent: 10, step: 1, of: 3 })]);
    expect(await (await fetch(`${s.url}/metrics`)).text()).toMatch(/^homelab_discovery_routing_rollouts_running 1$/m);

    await until("step 2 (50%)", async () => (await api(s.url, "GET", "/v1/routing/web/rollout")).body.rollout.step === 1, 6_000);
    expect(await srv()).toEqual([[8001, 25], [8002, 25], [8003, 50]]);

    // The canary's check fails: back to 0 as soon as the checker says so (a run a second, one rerun to confirm),
    // not at the next step, 4 s on.
    failCanary();
    const failedAt = Date.now();
    await until("rolled back", async () => (await api(s.url, "GET", "/v1/routing/web/rollout")).body.rollout.state !== "running", 6_000);
    expect((await api(s.url, "GET", "/v1/routing/web/rollout")).body.rollout.state).toBe("rolled-back");
    expect(Date.now() - failedAt).toBeLessThan(4_000);
    const after = (await api(s.url, "GET", "/v1/routing/web")).body;
    expect(after.split).toEqual([{ version: "^2", weight: 100 }, { version: "^3", weight: 0 }]);
    expect((await api(s.url, "GET", "/v1/routing/web/rollout")).body.rollout.reason).toMatch(/healthy/);
    expect((await srv()).map(([port]) => port)).toEqual([8001, 8002]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/^homelab_discovery_routing_rollouts_running 0$/m);
    expect(metrics).toMatch(/^homelab_discovery_routing_rollouts_total\{result="rolled_back"\} 1$/m);
    expect((await api(s.url, "GET", "/v1/status")).body.rollouts).toBeUndefined();
    // The canary stays registered and checked.
    expect((await api(s.url, "GET", "/v1/services/web-3")).status).toBe(200);
  });

  it("completes at 100, and a cancel keeps the split in force", { timeout: 30_000 }, async () => {
    const { s } = await setup();
    expect((await api(s.url, "POST", "/v1/routing/web/rollout", { from: "^2", to: "^3", pauseMs: 200, steps: [50, 100] })).status).toBe(201);
    // A second one while it runs is refused.
    expect((await api(s.url, "POST", "/v1/routing/web/rollout", { from: "^2", to: "^3", pauseMs: 200 })).status).toBe(409);
    await until("completed", async () => (await api(s.url, "GET", "/v1/routing/web/rollout")).body.rollout.state === "completed", 5_000);
    expect((await api(s.url, "GET", "/v1/routing/web")).body.split).toEqual([{ version: "^2", weight: 0 }, { version: "^3", weight: 100 }]);

    expect((await api(s.url, "POST", "/v1/routing/web/rollout", { from: "^3", to: "^2", pauseMs: 60_000, steps: [25, 100] })).status).toBe(201);
    const cancelled = await api(s.url, "DELETE", "/v1/routing/web/rollout");
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ split: [{ version: "^3", weight: 75 }, { version: "^2", weight: 25 }], rollout: { state: "cancelled" } });
  });
});
