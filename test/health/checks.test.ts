// Several checks on one instance, through the API, against real peers on 127.0.0.1 with an injected clock: each
// check with its own kind, interval and timeout; the instance as healthy as its worst check; each check's last
// status, output, duration and time in the entry, the Consul views and /metrics; secrets kept out of every answer
// and every log line.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { ManualClock } from "../../src/lib/clock.js";
import { api, metricSamples, startPeer, startTestServer } from "../helpers.js";

let server: ServerHandle;
let clock: ManualClock;
let peer: Awaited<ReturnType<typeof startPeer>>;
let tcp: TcpServer;
let tcpPort: number;
const logs: string[] = [];
/** Status per path; hits per path; the headers each path last saw. */
const statusOf = new Map<string, number>();
const hits = new Map<string, number>();
const lastHeaders = new Map<string, Record<string, string | string[] | undefined>>();

const call = (method: string, path: string, body?: unknown) => api(server.url, method, path, body);
const tick = async (ms: number) => {
  clock.advance(ms);
  await server.discovery.checker.settled();
};
const entry = async (id: string) => (await call("GET", `/v1/services/${id}`)).body;

beforeAll(async () => {
  clock = new ManualClock(Date.now());
  const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(line) });
  server = await startTestServer({ checkTimeout: 1_000 }, { clock, logger });
  peer = await startPeer((req, res) => {
    const path = req.url ?? "";
    hits.set(path, (hits.get(path) ?? 0) + 1);
    lastHeaders.set(path, req.headers);
    if (path === "/hang") return; // never answered
    const code = statusOf.get(path) ?? 200;
    res.writeHead(code).end(`${path} says ${code}`);
  });
  tcp = createTcpServer((s) => s.destroy());
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  tcpPort = (tcp.address() as AddressInfo).port;
});
afterAll(async () => {
  await server.stop();
  await peer.close();
  await new Promise((resolve) => tcp.close(resolve));
});

describe("several checks on one instance", () => {
  it("runs each with its own interval and shows each one's status, output, duration and time", async () => {
    const r = await call("PUT", "/v1/services/nas-1", {
      name: "nas",
      address: "127.0.0.1",
      port: peer.port,
      checks: [
        { kind: "http", url: "/ui", interval: 10_000 },
        { id: "ssh", name: "SSH answers", kind: "tcp", port: tcpPort, interval: 60_000 },
      ],
    });
    expect(r.status).toBe(201);
    expect(r.body.healthStatus).toBe("unknown");
    await server.discovery.checker.settled();
    const e = await entry("nas-1");
    expect(e.healthStatus).toBe("healthy");
    expect(e.checks).toEqual([
      { id: "1", kind: "http", url: "/ui", interval: 10_000, status: "healthy", output: "HTTP 200: /ui says 200", durationMs: expect.any(Number), checkedAt: expect.any(String) },
      { id: "ssh", name: "SSH answers", kind: "tcp", port: tcpPort, interval: 60_000, status: "healthy", output: `TCP 127.0.0.1:${tcpPort}: connected`, durationMs: expect.any(Number), checkedAt: expect.any(String) },
    ]);
    const before = hits.get("/ui") ?? 0;
    for (let i = 0; i < 10; i++) await tick(6_100); // each run schedules the next when it ends: one step each
    const uiRuns = (hits.get("/ui") ?? 0) - before;
    expect(uiRuns).toBeGreaterThanOrEqual(5); // every ~10 s (the first of them anywhere in the interval)
    expect(uiRuns).toBeLessThanOrEqual(8);
    const runs = (await call("GET", "/v1/stats")).body.checks.runsByKind;
    expect(runs.tcp.healthy).toBeGreaterThanOrEqual(2);
    expect(runs.tcp.healthy).toBeLessThan(uiRuns);
  });

  it("is as healthy as its worst check: degraded when one warns, unhealthy when one fails, back when it passes", async () => {
    await call("PUT", "/v1/services/pair-1", {
      name: "pair",
      address: "127.0.0.1",
      port: peer.port,
      checks: [
        { kind: "http", url: "/pair-a", interval: 10_000 },
        { kind: "http", url: "/pair-b", interval: 10_000 },
      ],
    });
    await server.discovery.checker.settled();
    expect((await entry("pair-1")).healthStatus).toBe("healthy");
    statusOf.set("/pair-b", 429);
    await tick(11_000);
    let e = await entry("pair-1");
    expect(e.healthStatus).toBe("degraded");
    expect(e.checks.map((c: { status: string }) => c.status)).toEqual(["healthy", "degraded"]);
    statusOf.set("/pair-b", 503);
    await tick(11_000);
    await tick(3_000); // the thresholds hold per check: the second failure in a row
    e = await entry("pair-1");
    expect(e.healthStatus).toBe("unhealthy");
    expect(e.checks[1]).toMatchObject({ status: "unhealthy", output: "HTTP 503: /pair-b says 503" });
    expect((await call("GET", "/v1/services?name=pair&health=healthy")).body.count).toBe(0);
    expect(logs.some((l) => l.includes('"health changed"') && l.includes('"check":"2"') && l.includes('"to":"unhealthy"'))).toBe(true);
    statusOf.delete("/pair-b");
    await tick(25_000);
    expect((await entry("pair-1")).healthStatus).toBe("healthy");
  });

  it("times each check out on its own timeout", async () => {
    await call("PUT", "/v1/services/slowpoke-1", { name: "slowpoke", address: "127.0.0.1", port: peer.port, checks: [{ kind: "http", url: "/hang", timeout: 200 }] });
    const t0 = performance.now();
    await server.discovery.checker.settled();
    expect(performance.now() - t0).toBeLessThan(900); // the server's --check-timeout is 1000 ms
    const e = await entry("slowpoke-1");
    expect(e.checks[0]).toMatchObject({ status: "unhealthy", output: `GET http://127.0.0.1:${peer.port}/hang: timed out after 200 ms` });
    const now = await call("POST", "/v1/services/slowpoke-1/check");
    expect(now.body.checks).toEqual([{ id: "1", kind: "http", status: "unhealthy", output: expect.stringContaining("timed out after 200 ms"), checkedAt: expect.any(String), durationMs: expect.any(Number) }]);
  });

  it("takes heartbeats per TTL check, naming the check when there are several", async () => {
    await call("PUT", "/v1/services/cron-1", {
      name: "cron",
      address: "127.0.0.1",
      port: 1,
      checks: [
        { id: "backup", kind: "ttl", ttl: 60_000 },
        { id: "sync", kind: "ttl", ttl: 60_000 },
      ],
    });
    expect((await call("PUT", "/v1/services/cron-1/heartbeat", {})).body.error.message).toContain('name one as "check"');
    expect((await call("PUT", "/v1/services/cron-1/heartbeat", { check: "nope" })).status).toBe(404);
    expect((await call("PUT", "/v1/services/cron-1/heartbeat", { check: "backup" })).body.healthStatus).toBe("unknown"); // sync not heard from yet
    const consul = await call("PUT", "/v1/agent/check/warn/service:cron-1:sync?note=behind");
    expect(consul.status).toBe(200);
    const e = await entry("cron-1");
    expect(e.healthStatus).toBe("degraded");
    expect(e.checks.map((c: { status: string; output: string }) => [c.status, c.output])).toEqual([
      ["healthy", "heartbeat"],
      ["degraded", "heartbeat: behind"],
    ]);
    await tick(61_000);
    expect((await entry("cron-1")).checks[0]).toMatchObject({ status: "unhealthy", output: "TTL expired: no heartbeat within 60000 ms" });
  });

  it("shows each check in the Consul views and counts them in /metrics by kind", async () => {
    const health = await call("GET", "/v1/health/service/nas");
    expect(health.body[0].Checks).toEqual([
      expect.objectContaining({ CheckID: "service:nas-1:1", Status: "passing", Type: "http", Interval: "10s", Output: "HTTP 200: /ui says 200" }),
      expect.objectContaining({ CheckID: "service:nas-1:ssh", Name: "SSH answers", Status: "passing", Type: "tcp", Interval: "1m0s" }),
    ]);
    const metrics = metricSamples((await call("GET", "/metrics")).body as string);
    expect(metrics.get('homelab_discovery_health_check_status{kind="tcp",status="healthy"}')).toBe(1);
    expect(metrics.get('homelab_discovery_health_check_status{kind="ttl",status="unhealthy"}')).toBe(2); // cron-1's two, expired
    expect(metrics.get('homelab_discovery_health_check_runs_total{kind="http",result="unhealthy"}')).toBeGreaterThanOrEqual(3);
  });

  it("registers several checks through Consul's Checks, with headers, methods and timeouts", async () => {
    const r = await call("PUT", "/v1/agent/service/register", {
      Name: "grafana",
      ID: "grafana-1",
      Address: "127.0.0.1",
      Port: peer.port,
      Checks: [
        { HTTP: `http://127.0.0.1:${peer.port}/api/health`, Interval: "10s", Timeout: "2s", Method: "HEAD", Header: { "X-Scope": ["a", "b"] } },
        { TCP: `127.0.0.1:${tcpPort}`, Interval: "30s" },
      ],
    });
    expect(r.status).toBe(200);
    await server.discovery.checker.settled();
    const e = await entry("grafana-1");
    expect(e.checks).toMatchObject([
      { id: "1", kind: "http", method: "HEAD", headers: { "X-Scope": "<redacted>" }, timeout: 2_000, interval: 10_000, status: "healthy" },
      { id: "2", kind: "tcp", port: tcpPort, interval: 30_000, status: "healthy" },
    ]);
    expect(lastHeaders.get("/api/health")?.["x-scope"]).toBe("a, b");
  });
});

describe("secrets in checks", () => {
  const SECRET = "s3cret-bearer-9f8e7d";

  it("sends header values and never shows them: not in any API answer, not in the log", async () => {
    const body = {
      name: "vault",
      address: "127.0.0.1",
      port: peer.port,
      checks: [{ kind: "http", url: "/v1/sys/health", headers: { Authorization: `Bearer ${SECRET}` }, expectStatus: [200, 429] }],
    };
    const answers: string[] = [];
    const keep = async (r: Promise<{ status: number; body: unknown }>) => {
      const got = await r;
      answers.push(typeof got.body === "string" ? got.body : JSON.stringify(got.body));
      return got;
    };
    expect((await keep(call("PUT", "/v1/services/vault-1", body))).status).toBe(201);
    await server.discovery.checker.settled();
    expect(lastHeaders.get("/v1/sys/health")?.authorization).toBe(`Bearer ${SECRET}`);
    const got = await keep(call("GET", "/v1/services/vault-1"));
    expect((got.body as { checks: { headers: unknown }[] }).checks[0]!.headers).toEqual({ Authorization: "<redacted>" });
    await keep(call("GET", "/v1/services?name=vault"));
    await keep(call("GET", "/v1/services?name=vault&index=1&wait=1s"));
    await keep(call("POST", "/v1/services/bulk", { register: [{ ...body, id: "vault-2" }] }));
    await keep(call("POST", "/v1/services/vault-1/check"));
    await keep(call("POST", "/v1/checks"));
    await keep(call("GET", "/v1/stats"));
    await keep(call("GET", "/metrics"));
    await keep(call("GET", "/v1/health/service/vault"));
    await keep(call("GET", "/v1/agent/checks"));
    await keep(call("GET", "/v1/agent/services"));
    await keep(call("GET", "/v1/catalog/service/vault"));
    await keep(call("GET", "/v1/prometheus/targets"));
    await keep(call("PUT", "/v1/services/vault-1/maintenance", { enable: true, reason: "test" }));
    await keep(call("DELETE", "/v1/services/vault-2"));
    // A fetched entry sent back (redacted) keeps the secret it had.
    await keep(call("PUT", "/v1/services/vault-1", got.body));
    await server.discovery.checker.settled();
    expect(lastHeaders.get("/v1/sys/health")?.authorization).toBe(`Bearer ${SECRET}`);
    expect(answers.length).toBeGreaterThan(15);
    for (const a of answers) expect(a).not.toContain(SECRET);
    expect(logs.length).toBeGreaterThan(5);
    for (const line of logs) expect(line).not.toContain(SECRET);
  });
});

describe("bad checks are refused with the reason, and register nothing", () => {
  it.each([
    [{ checks: [{ kind: "smtp" }] }, /checks\.0\.kind: unknown check kind "smtp"/],
    [{ checks: [{ kind: "http" }] }, /checks\.0\.url: is required/],
    [{ checks: [{ kind: "http", url: "/", method: "BREW" }] }, /checks\.0\.method: /],
    [{ checks: [{ kind: "http", url: "/", expectStatus: "abc" }] }, /checks\.0\.expectStatus/],
    [{ checks: [{ kind: "tcp", prot: 22 }] }, /checks\.0: Unrecognized key: "prot"/],
    [{ checks: [{ kind: "http", url: "http://127.0.0.2/" }] }, /checks\.0\.url: a check goes to the instance's own address/],
    [{ checks: [{ kind: "tcp", interval: 10 }] }, /checks\.0\.interval: must be at least 1000 ms/],
    [{ healthEndpoint: "/h", checks: [{ kind: "tcp" }] }, /checks: declare checks, or one of healthEndpoint/],
  ])("%j", async (extra, message) => {
    const r = await call("PUT", "/v1/services/bad-1", { name: "bad", address: "127.0.0.1", port: 80, ...extra });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(message);
    expect((await call("GET", "/v1/services/bad-1")).status).toBe(404);
  });

  it("keeps the one-check form as it was: no checks field", async () => {
    const r = await call("PUT", "/v1/services/old-1", { name: "old", address: "127.0.0.1", port: peer.port, healthEndpoint: "/old" });
    await server.discovery.checker.settled();
    expect("checks" in r.body).toBe(false);
    expect((await entry("old-1")).healthStatus).toBe("healthy");
  });
});

describe("stored checks", () => {
  it("survive a restart from the data dir, beside one-check entries, their results forgotten until checked again", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "hd-checks-store-"));
    const start = () => startTestServer({ inMemory: false, dataDir, checkTimeout: 1_000 }, { clock: new ManualClock(Date.now()) });
    let own = await start();
    await api(own.url, "PUT", "/v1/services/kept-1", { name: "kept", address: "127.0.0.1", port: peer.port, checks: [{ kind: "http", url: "/kept", headers: { "X-Key": "k" } }, { kind: "tcp", port: tcpPort }] });
    await api(own.url, "PUT", "/v1/services/old-2", { name: "old", address: "127.0.0.1", port: peer.port, healthEndpoint: "/old2" });
    await own.discovery.checker.settled();
    await api(own.url, "PUT", "/v1/services/kept-1/maintenance", { enable: true, reason: "written again, with results" });
    await own.stop();
    statusOf.set("/kept", 500);
    own = await start();
    const kept = own.discovery.registry.get("kept-1")!;
    expect(kept.checks!.map((c) => [c.id, c.kind])).toEqual([["1", "http"], ["2", "tcp"]]);
    expect(kept.checks![0]!.headers).toEqual({ "X-Key": "k" });
    await own.discovery.checker.settled();
    // One failure makes it unhealthy: from unknown the first result decides. Had the stored "healthy" come back,
    // the thresholds (2 failures in a row) would have kept it healthy.
    const after = (await api(own.url, "GET", "/v1/services/kept-1")).body;
    expect(after.checks.map((c: { status: string }) => c.status)).toEqual(["unhealthy", "healthy"]);
    expect(after.healthStatus).toBe("unhealthy");
    expect((await api(own.url, "GET", "/v1/services/old-2")).body).toMatchObject({ healthEndpoint: "/old2", healthStatus: "healthy" });
    await own.stop();
    statusOf.delete("/kept");
    rmSync(dataDir, { recursive: true, force: true });
  });
});
