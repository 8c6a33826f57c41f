// On-demand checks against real sockets on loopback: the status follows what the instance answers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/server.js";
import { api, closedPort, startPeer, startTestServer } from "../helpers.js";

let server: ServerHandle;
let peer: Awaited<ReturnType<typeof startPeer>>;
let status = 200;
let body = "ok";

beforeAll(async () => {
  server = await startTestServer({ checkTimeout: 300 });
  peer = await startPeer((_req, res) => {
    res.writeHead(status, status === 302 ? { location: "http://127.0.0.2:1/elsewhere" } : {});
    res.end(body);
  });
  await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "127.0.0.1", port: peer.port, healthEndpoint: "/health" });
});
afterAll(async () => {
  await server.stop();
  await peer.close();
});

const check = async (id = "web-1") => {
  const r = await api(server.url, "POST", `/v1/services/${id}/check`);
  expect(r.status).toBe(200);
  return r.body;
};
const healthOf = async (id = "web-1") => (await api(server.url, "GET", `/v1/services/${id}`)).body.healthStatus;

describe("on-demand health checks", () => {
  it("starts unknown, then follows 200, 429, 500 and a redirect", async () => {
    expect(await healthOf()).toBe("unknown");
    expect((await api(server.url, "GET", "/v1/services?name=web&health=healthy")).body.count).toBe(0);

    status = 200;
    const ok = await check();
    expect(ok).toMatchObject({ id: "web-1", kind: "http", status: "healthy", previousStatus: "unknown", output: "HTTP 200: ok" });
    expect(await healthOf()).toBe("healthy");
    expect((await api(server.url, "GET", "/v1/services?name=web&health=healthy")).body.count).toBe(1);
    expect(Date.parse((await api(server.url, "GET", "/v1/services/web-1")).body.lastHealthCheck)).not.toBeNaN();

    status = 429;
    expect((await check()).status).toBe("degraded");
    status = 500;
    expect((await check()).status).toBe("unhealthy");
    expect((await api(server.url, "GET", "/v1/services?name=web&health=healthy")).body.count).toBe(0);
    status = 302; // redirects are not followed
    expect(await check()).toMatchObject({ status: "unhealthy", output: expect.stringContaining("HTTP 302") });
  });

  it("keeps at most 4 KB of the body as output", async () => {
    status = 200;
    body = "x".repeat(100_000);
    const r = await check();
    expect(r.status).toBe("healthy");
    expect(r.output.length).toBeLessThanOrEqual("HTTP 200: ".length + 4096);
    body = "ok";
  });

  it("is unhealthy when the port is closed or the endpoint hangs past the timeout", async () => {
    const port = await closedPort();
    await api(server.url, "PUT", "/v1/services/dead-1", { name: "dead", address: "127.0.0.1", port, healthEndpoint: "/health" });
    const refused = await check("dead-1");
    expect(refused.status).toBe("unhealthy");
    expect(refused.output).toContain("ECONNREFUSED");

    const hang = await startPeer(() => undefined); // never answers
    await api(server.url, "PUT", "/v1/services/slow-1", { name: "slow", address: "127.0.0.1", port: hang.port, healthEndpoint: "/health" });
    const slow = await check("slow-1");
    expect(slow.status).toBe("unhealthy");
    expect(slow.output).toContain("timed out after 300 ms");
    expect(slow.durationMs).toBeGreaterThanOrEqual(250);
    await hang.close();
  });

  it("checks every instance that declares a check with POST /v1/checks", async () => {
    status = 200;
    await api(server.url, "PUT", "/v1/services/nocheck", { name: "static", address: "10.0.0.1", port: 1 });
    const r = await api(server.url, "POST", "/v1/checks");
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: { id: string }) => x.id)).toEqual(["dead-1", "slow-1", "web-1"]);
    expect(r.body.byStatus).toEqual({ healthy: 1, degraded: 0, unhealthy: 2, unknown: 0 });
    expect(r.body.checked).toBe(3);
  });
});
