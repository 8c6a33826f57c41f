// Containers register themselves (issue 19): the built server with --docker-socket on Podman's Docker-compatible
// API (Debian's podman 4.3 with runc, `podman system service` on a socket in a temp dir), containers from an image
// made here offline (a static busybox, `podman import`), host networking and loopback ports only.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, closedPort } from "../helpers.js";
import { startBuiltServer, type BuiltServer } from "./built-server.js";
import { BUSYBOX_IMAGE, podmanArgs, podmanImage, removePodmanStore, RUN_FLAGS } from "./podman.js";

let dir: string;
let socket: string;
let service: ChildProcess | undefined;
let server: BuiltServer;
const podman = (...args: string[]) => execFileSync("podman", [...podmanArgs(dir), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

function startService(): ChildProcess {
  const child = spawn("podman", [...podmanArgs(dir), "system", "service", "--time=0", `unix://${socket}`], { stdio: "ignore" });
  return child;
}
async function serviceUp(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync("curl", ["-sf", "--unix-socket", socket, "http://d/v1.41/_ping"], { stdio: "ignore" });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("podman system service did not answer");
}

/** A container serving /www on 127.0.0.1:port with host networking, with these labels. */
function run(name: string, port: number, labels: Record<string, string>): void {
  podman("run", "-d", "--name", name, ...RUN_FLAGS, ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]), BUSYBOX_IMAGE, "/bin/httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/www");
}

async function dig(name: string, type = "A"): Promise<string[]> {
  const out = execFileSync("dig", ["+short", "+tries=1", "+time=2", "-p", String(server.dnsPort), "@127.0.0.1", name, type], { encoding: "utf8" });
  return out.trim().split("\n").filter((l) => l !== "").sort();
}
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hd-docker-"));
  socket = join(dir, "engine.sock");
  podmanImage(dir); // offline: a static busybox with sh and httpd, and a page to check
  service = startService();
  await serviceUp();
  server = await startBuiltServer({}, ["--in-memory", "--docker-socket", `unix://${socket}`]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  try {
    podman("rm", "-af", "-t", "0");
  } catch {
    // nothing to remove
  }
  if (service && service.exitCode === null) {
    const exited = new Promise((r) => service!.once("exit", r));
    service.kill("SIGTERM");
    await exited;
  }
  removePodmanStore(dir);
}, 60_000);

describe("containers from Podman's Docker API", () => {
  const ports: number[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 4; i++) ports.push(await closedPort());
  });

  it("registers a labelled container, checks it, and answers it in DNS; ignores one without labels", async () => {
    run("web-a", ports[0]!, { "homelab.service": "web", "homelab.port": String(ports[0]), "homelab.health": "/health", "homelab.tags": "prod", "homelab.meta.team": "platform" });
    run("plain", ports[1]!, {});
    expect(await until("web-a in DNS", () => dig("prod.web.service.home.arpa"), (a) => a.length === 1)).toEqual(["127.0.0.1"]);
    const srv = await dig("_web._tcp.service.home.arpa", "SRV");
    expect(srv[0]).toContain(` ${ports[0]} `);
    const entry = (await api(server.url, "GET", "/v1/services/web-a")).body;
    expect(entry).toMatchObject({ name: "web", port: ports[0], healthStatus: "healthy", tags: ["prod"], source: "docker", metadata: { team: "platform", "container.name": "web-a" } });
    expect(entry.version).toBe("1"); // the image's tag
    const list = (await api(server.url, "GET", "/v1/services")).body;
    expect(JSON.stringify(list)).not.toContain("plain");
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^homelab_discovery_docker_connected 1$/m);
    expect(metrics).toMatch(/^homelab_discovery_docker_instances 1$/m);
  });

  it("refuses an API write to a container's instance without force", async () => {
    const r = await api(server.url, "DELETE", "/v1/services/web-a");
    expect(r.status).toBe(409);
    expect(JSON.stringify(r.body)).toContain("web-a");
    expect((await api(server.url, "GET", "/v1/services/web-a")).status).toBe(200);
  });

  it("skips a container with a bad label, with one warning naming the container and the label", async () => {
    run("bad-one", ports[2]!, { "homelab.service": "web", "homelab.port": "99999" });
    await until("the warning", async () => server.log(), (log) => log.includes("container bad-one: homelab.port"));
    expect(server.log().split("container bad-one: homelab.port").length - 1).toBe(1);
    expect((await api(server.url, "GET", "/v1/services/bad-one")).status).toBe(404);
  });

  it("takes the engine's healthcheck as the health of an instance without a check of ours", { timeout: 60_000 }, async () => {
    const port = await closedPort();
    podman("run", "-d", "--name", "hc", ...RUN_FLAGS, "--health-cmd", "exit 1", "--health-interval", "0", "--health-retries", "1", "--label", "homelab.service=hc", "--label", `homelab.port=${port}`, BUSYBOX_IMAGE, "/bin/httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/www");
    // Podman's healthcheck "starting": unknown, not in DNS yet.
    const first = await until("hc registered", async () => (await api(server.url, "GET", "/v1/services/hc")).body, (e) => e?.name === "hc");
    expect(first.healthStatus).toBe("unknown");
    expect(await dig("hc.service.home.arpa")).toEqual([]);
    try {
      podman("healthcheck", "run", "hc"); // fails: the container is now unhealthy
    } catch {
      // exit 1 is the point
    }
    await until("hc unhealthy", async () => (await api(server.url, "GET", "/v1/services/hc")).body.healthStatus, (h) => h === "unhealthy", 30_000).catch((err: Error) => {
      const inspect = execFileSync("curl", ["-s", "--unix-socket", socket, "http://d/v1.41/containers/hc/json"], { encoding: "utf8" });
      throw new Error(`${err.message}\nthe engine's state: ${JSON.stringify(JSON.parse(inspect).State)}\n${server.log().split("\n").filter((l) => l.includes("docker")).join("\n")}`);
    });
    expect(await dig("hc.service.home.arpa")).toEqual([]);
    podman("rm", "-f", "-t", "0", "hc");
  });

  it("takes a stopped container out of DNS within a second", async () => {
    const started = Date.now();
    podman("stop", "-t", "0", "web-a");
    await until("web-a gone", () => dig("web.service.home.arpa"), (a) => a.length === 0, 5_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${server.log()}`);
    });
    expect(Date.now() - started).toBeLessThan(3_000); // podman stop itself takes most of it
    expect((await api(server.url, "GET", "/v1/services/web-a")).status).toBe(404);
  });

  it("reconciles when the engine's API comes back: a container started meanwhile is registered", async () => {
    // The API service dies (SIGKILL: a crash, its event stream cut), and a container starts meanwhile.
    const gone = new Promise((r) => service!.once("exit", r));
    service!.kill("SIGKILL");
    await gone;
    await until("the source sees the engine gone", async () => (await api(server.url, "GET", "/v1/stats")).body.docker.connected, (c) => c === false);
    run("web-b", ports[3]!, { "homelab.service": "web", "homelab.port": String(ports[3]), "homelab.check": "tcp" });
    await new Promise((r) => setTimeout(r, 300));
    expect((await api(server.url, "GET", "/v1/services/web-b")).status).toBe(404); // nobody told us yet
    rmSync(socket, { force: true });
    service = startService();
    await serviceUp();
    const entry = await until("web-b registered", async () => (await api(server.url, "GET", "/v1/services/web-b")).body, (e) => e?.healthStatus === "healthy", 40_000);
    expect(entry).toMatchObject({ port: ports[3], tcpCheck: true });
    expect((await api(server.url, "GET", "/v1/stats")).body.docker.connected).toBe(true);
  }, 60_000);

  it("starts while the engine is down, says so, and registers its containers once the engine is up", { timeout: 60_000 }, async () => {
    const late = join(dir, "late.sock");
    const second = await startBuiltServer({}, ["--in-memory", "--docker-socket", `unix://${late}`]);
    try {
      await until("the warning", async () => second.log(), (log) => log.includes("container engine unreachable; retrying"));
      const status = (await api(second.url, "GET", "/v1/status")).body;
      expect(status).toMatchObject({ status: "ok", docker: { connected: false } });
      expect(status.docker.lastError).toBeTruthy();
      // web-b (from the test before) runs; the engine's API comes up on the socket this server was given.
      const engine = spawn("podman", [...podmanArgs(dir), "system", "service", "--time=0", `unix://${late}`], { stdio: "ignore" });
      try {
        await until("web-b on the late server", async () => (await api(second.url, "GET", "/v1/services/web-b")).status, (s) => s === 200, 40_000);
        expect((await api(second.url, "GET", "/v1/status")).body.docker).toMatchObject({ connected: true, lastError: null });
      } finally {
        const exited = new Promise((r) => engine.once("exit", r));
        engine.kill("SIGTERM");
        await exited;
      }
    } finally {
      await second.stop();
    }
  });
});
