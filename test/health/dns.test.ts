// The DNS kind against real resolvers on loopback: an upstream (test/dns/helpers.ts), our own DNS server, and a
// UDP socket that never answers.
import { createSocket, type Socket } from "node:dgram";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { startUpstream, type Upstream } from "../dns/helpers.js";
import { api, startTestServer } from "../helpers.js";

let app: ServerHandle;
let upstream: Upstream;
let silent: Socket;
let silentPort: number;
beforeAll(async () => {
  app = await startTestServer({ checkTimeout: 400 });
  upstream = await startUpstream();
  silent = createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as AddressInfo).port;
});
afterAll(async () => {
  await app.stop();
  await upstream.close();
  silent.close();
});

const check = async (id: string, port: number, options: Record<string, unknown>) => {
  const r = await api(app.url, "PUT", `/v1/services/${id}`, { name: "resolver", address: "127.0.0.1", port, checks: [{ kind: "dns", ...options }] });
  if (r.status !== 201 && r.status !== 200) return r;
  await app.discovery.checker.settled();
  return { status: r.status, body: (await api(app.url, "GET", `/v1/services/${id}`)).body.checks[0] };
};

describe("the DNS kind", () => {
  it("asks the instance itself by default: healthy when the name resolves", async () => {
    const before = upstream.queries.length;
    expect((await check("d-1", upstream.port, { query: "example.test" })).body).toMatchObject({ status: "healthy", output: `DNS A example.test at 127.0.0.1:${upstream.port}: 192.0.2.10` });
    expect(upstream.queries.slice(before)).toContain("example.test/udp");
  });

  it("checks the expected address", async () => {
    expect((await check("d-2", upstream.port, { query: "example.test", expect: "192.0.2.10" })).body.status).toBe("healthy");
    expect((await check("d-3", upstream.port, { query: "example.test", expect: ["192.0.2.98", "192.0.2.99"] })).body).toMatchObject({
      status: "unhealthy",
      output: expect.stringContaining("192.0.2.10, none of 192.0.2.98, 192.0.2.99"),
    });
  });

  it("is unhealthy on NXDOMAIN and when the resolver does not answer", async () => {
    expect((await check("d-4", upstream.port, { query: "missing.example.test" })).body).toMatchObject({ status: "unhealthy", output: expect.stringContaining("ENOTFOUND") });
    expect((await check("d-5", silentPort, { query: "example.test" })).body).toMatchObject({ status: "unhealthy", output: expect.stringContaining("timed out after 400 ms") });
  });

  it("asks a given resolver: our own DNS for a registered service", async () => {
    await api(app.url, "PUT", "/v1/services/web-1", { name: "web", address: "127.0.0.1", port: 80 });
    const r = await check("d-6", 53, { query: "web.service.home.arpa", resolver: `127.0.0.1:${app.dnsAddress.port}`, expect: "127.0.0.1" });
    expect(r.body).toMatchObject({ status: "healthy", output: `DNS A web.service.home.arpa at 127.0.0.1:${app.dnsAddress.port}: 127.0.0.1` });
  });

  it("refuses a resolver on another host and a bad name", async () => {
    const r = await check("d-7", 53, { query: "example.test", resolver: "127.0.0.2" });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("checks.0.resolver: a check goes to the instance's own address");
    expect((await check("d-8", 53, { query: "not a name" })).body.error.message).toContain("checks.0.query: must be a host name");
    expect((await check("d-9", 53, { query: "example.test", resolver: "dns.example" })).body.error.message).toContain("checks.0.resolver: must be an IP address");
  });
});
