// Shared test fixtures: a real server on port 0 with a silent logger, and small HTTP/TCP peers on loopback.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { defaultConfig, type Config } from "../src/app/config.js";
import type { ServiceEntry } from "../src/model/schema.js";
import { startServer, type ServerDeps, type ServerHandle } from "../src/app/server.js";

export const silent = pino({ level: "silent" });

/** The real defaults (app/config.ts), with what tests change: loopback port 0, no disk, no logs, quicker checks. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return defaultConfig({
    httpListen: { host: "127.0.0.1", port: 0 },
    dnsListen: { host: "127.0.0.1", port: 0 },
    nodeId: "test-node",
    clusterName: "test",
    inMemory: true,
    logLevel: "silent",
    checkTimeout: 1_000,
    checkConcurrency: 64,
    // The server's own instances (service discovery) would be in every listing and count; test/app/self.test.ts
    // turns it back on.
    selfRegister: false,
    ...overrides,
  });
}

export function startTestServer(overrides: Partial<Config> = {}, deps: Partial<ServerDeps> = {}): Promise<ServerHandle> {
  return startServer(testConfig(overrides), { logger: silent, ...deps });
}

/** An HTTP server on 127.0.0.1 whose handler a test can swap at any time. */
export async function startPeer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{
  port: number;
  server: Server;
  setHandler(h: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}> {
  let current = handler;
  const server = createServer((req, res) => current(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    setHandler: (h) => {
      current = h;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, read, released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A stored entry as the registry holds it (healthy web instance on n1 unless overridden), for pure tests. */
export function serviceEntry(over: Partial<ServiceEntry> = {}): ServiceEntry {
  return {
    id: "x",
    name: "web",
    version: "1.0.0",
    nodeId: "n1",
    address: "10.0.0.1",
    port: 80,
    healthStatus: "healthy",
    metadata: {},
    tags: [],
    registeredAt: "2026-01-01T00:00:00.000Z",
    lastHealthCheck: null,
    healthCheckInterval: 30_000,
    ...over,
  };
}

/** The samples of a Prometheus text exposition, by `name{labels}` exactly as written (labels in prom-client's order). */
export function metricSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}
