// The gRPC kind against a real grpc-js server implementing grpc.health.v1.Health/Check on 127.0.0.1. Its messages
// are encoded by protobufjs here, apart from the kind's own encoding: the two must agree on the wire.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { decodeHealthResponse, encodeHealthRequest } from "../../src/health/kinds/grpc.js";
import { api, closedPort, startTestServer } from "../helpers.js";

const Request = new protobuf.Type("HealthCheckRequest").add(new protobuf.Field("service", 1, "string"));
const Response = new protobuf.Type("HealthCheckResponse").add(new protobuf.Field("status", 1, "int32"));
new protobuf.Root().add(Request).add(Response);
const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;

/** Status by service name ("" the server's own); a name missing is SERVICE_UNKNOWN; "hang" never answers. */
const statuses = new Map<string, number>([["", SERVING]]);
const asked: string[] = [];
let server: grpc.Server;
let port: number;
let app: ServerHandle;

beforeAll(async () => {
  server = new grpc.Server();
  const bytes = (b: Buffer) => b;
  server.addService(
    { Check: { path: "/grpc.health.v1.Health/Check", requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes } },
    {
      Check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const { service } = Request.toObject(Request.decode(call.request), { defaults: true }) as { service: string };
        asked.push(service);
        if (service === "hang") return;
        const status = statuses.get(service);
        if (status === undefined) return callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` } as grpc.ServiceError);
        callback(null, Buffer.from(Response.encode({ status }).finish()));
      },
    },
  );
  port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  app = await startTestServer({ checkTimeout: 500 });
});
afterAll(async () => {
  await app.stop();
  server.forceShutdown();
});

const register = (id: string, check: Record<string, unknown>) => api(app.url, "PUT", `/v1/services/${id}`, { name: "grpc", address: "127.0.0.1", port, checks: [{ kind: "grpc", ...check }] });
const runNow = async (id: string) => (await api(app.url, "POST", `/v1/services/${id}/check`)).body.checks[0] as { status: string; output: string };

describe("the gRPC health kind", () => {
  it("encodes the request and decodes the response as protobufjs does", () => {
    for (const service of ["a", "shop.Cart", "x".repeat(200)]) expect(encodeHealthRequest(service)).toEqual(Buffer.from(Request.encode({ service }).finish()));
    // proto3 leaves a default out; protobufjs writes it (0a 00): both read as "".
    expect(Request.toObject(Request.decode(encodeHealthRequest("")), { defaults: true })).toEqual({ service: "" });
    for (const status of [0, 1, 2, 3]) expect(decodeHealthResponse(Buffer.from(Response.encode({ status }).finish()))).toBe(status);
  });

  it("is healthy while the server (or the named service) is SERVING", async () => {
    expect((await register("g-1", {})).status).toBe(201);
    statuses.set("shop.Cart", SERVING);
    await register("g-2", { service: "shop.Cart" });
    await app.discovery.checker.settled();
    expect((await api(app.url, "GET", "/v1/services/g-1")).body.checks[0]).toMatchObject({ status: "healthy", output: `gRPC 127.0.0.1:${port} (server): SERVING` });
    expect((await api(app.url, "GET", "/v1/services/g-2")).body.healthStatus).toBe("healthy");
    expect(asked).toContain("shop.Cart");
  });

  it("is unhealthy on NOT_SERVING, on SERVICE_UNKNOWN, on an error status and at the timeout", async () => {
    statuses.set("shop.Cart", NOT_SERVING);
    expect(await runNow("g-2")).toMatchObject({ status: "unhealthy", output: expect.stringContaining("NOT_SERVING") });
    statuses.set("shop.Cart", SERVICE_UNKNOWN);
    expect((await runNow("g-2")).output).toContain("SERVICE_UNKNOWN");
    await register("g-3", { service: "shop.Gone" });
    expect(await runNow("g-3")).toMatchObject({ status: "unhealthy", output: expect.stringContaining("NOT_FOUND unknown service shop.Gone") });
    await register("g-4", { service: "hang" });
    expect(await runNow("g-4")).toMatchObject({ status: "unhealthy", output: expect.stringContaining("timed out after 500 ms") });
    statuses.set("shop.Cart", SERVING);
    expect((await runNow("g-2")).status).toBe("healthy");
  });

  it("is unhealthy when nothing listens", async () => {
    const dead = await closedPort();
    await api(app.url, "PUT", "/v1/services/g-dead", { name: "grpc", address: "127.0.0.1", port: dead, checks: [{ kind: "grpc" }] });
    const r = await runNow("g-dead");
    expect(r.status).toBe("unhealthy");
    expect(r.output).toMatch(/UNAVAILABLE|ECONNREFUSED|timed out/);
  });

  it("is registered through Consul's GRPC field (host:port/service)", async () => {
    statuses.set("shop.Cart", SERVING);
    const r = await api(app.url, "PUT", "/v1/agent/service/register", { Name: "cart", ID: "cart-1", Address: "127.0.0.1", Port: port, Check: { GRPC: `127.0.0.1:${port}/shop.Cart`, Interval: "10s" } });
    expect(r.status).toBe(200);
    await app.discovery.checker.settled();
    expect((await api(app.url, "GET", "/v1/services/cart-1")).body).toMatchObject({ healthStatus: "healthy", checks: [{ kind: "grpc", port, service: "shop.Cart", interval: 10_000 }] });
    expect((await api(app.url, "GET", "/v1/health/service/cart?passing")).body[0].Checks[0]).toMatchObject({ CheckID: "service:cart-1:1", Type: "grpc", Status: "passing" });
  });
});
