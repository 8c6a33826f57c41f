// Cluster test fixtures: our nodes (in this process or as built child processes) against a real etcd, and the
// checks a test makes through them: DNS via c-ares, the JSON API via fetch.
import { Resolver } from "node:dns/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import pino from "pino";
import type { Config } from "../../src/app/config.js";
import type { ServerDeps, ServerHandle } from "../../src/app/server.js";
import { startTestServer } from "../helpers.js";

export interface TestNode {
  readonly nodeId: string;
  server: ServerHandle;
  readonly dataDir: string;
  /** A c-ares resolver pointed at the node's DNS port. */
  readonly resolver: Resolver;
  api<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
  /** The healthy addresses the node's DNS answers for a service (empty for NODATA/NXDOMAIN). */
  addresses(name: string): Promise<string[]>;
  /** Stops the node (graceful leave) and starts it again on the same data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const dirs: string[] = [];
process.once("exit", () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts one of our nodes in this process, durable in its own temp data dir, in cluster mode on `endpoints`. */
export async function startNode(nodeId: string, endpoints: string[], overrides: Partial<Config> = {}, deps: Partial<ServerDeps> = {}): Promise<TestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), `hd-${nodeId}-`));
  dirs.push(dataDir);
  const config: Partial<Config> = {
    nodeId,
    clusterName: "test",
    inMemory: false,
    dataDir,
    store: "etcd",
    etcdEndpoints: endpoints,
    etcdLeaseTtl: 2,
    ...overrides,
  };
  // HD_TEST_LOG=debug shows every node's log on stderr, tagged with its node id.
  if (process.env.HD_TEST_LOG && deps.logger === undefined) deps = { ...deps, logger: pino({ level: process.env.HD_TEST_LOG, base: { n: nodeId } }) };
  let server = await startTestServer(config, deps);
  const resolver = new Resolver({ timeout: 1_000, tries: 1 });
  const point = () => resolver.setServers([`127.0.0.1:${server.dnsAddress.port}`]);
  point();
  const node: TestNode = {
    nodeId,
    dataDir,
    resolver,
    get server() {
      return server;
    },
    set server(s) {
      server = s;
    },
    async api<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
    },
    async addresses(name: string) {
      try {
        return (await resolver.resolve4(`${name}.service.home.arpa`)).sort();
      } catch (err) {
        if ((err as { code?: string }).code === "ENODATA" || (err as { code?: string }).code === "ENOTFOUND") return [];
        throw err;
      }
    },
    async restart() {
      await server.stop();
      server = await startTestServer({ ...config, httpListen: { host: "127.0.0.1", port: 0 } }, deps);
      point();
    },
    stop: () => server.stop(),
  };
  return node;
}

/** Polls `fn` every 10 ms until it returns true; returns the time it took, or throws after timeoutMs. */
export async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    let last: unknown;
    try {
      if (await fn()) return performance.now() - t0;
    } catch (err) {
      last = err;
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function service(id: string, name: string, address: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, name, version: "1.0.0", address, port: 8080, ...extra };
}

/** A TCP proxy on loopback in front of an etcd member, which a test can cut (every connection reset, new ones refused) and restore. */
export async function tcpProxy(target: string): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const cut = () => {
    open = false;
    for (const s of sockets) s.resetAndDestroy();
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut,
    restore: () => {
      open = true;
    },
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
