// Unmodified apps in a network namespace whose resolv.conf points at our server on 127.0.0.1:53: glibc
// (getent), curl and Node's fetch reach a healthy instance by name, and stop resolving it once unhealthy.
// This is a homelab host that uses us as its resolver. Needs root and iproute2 (installed by .ci/run).
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root } from "./built-server.js";

const ns = `hd-e2e-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "hd-netns-"));
const statusFile = join(work, "status");
const children: ChildProcess[] = [];

/** Runs a command inside the namespace; returns its exit code and output. */
function inNs(cmd: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync("ip", ["netns", "exec", ns, cmd, ...args], { encoding: "utf8", timeout: 15_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}
function startInNs(args: string[]): ChildProcess {
  const child = spawn("ip", ["netns", "exec", ns, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return child;
}
async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const api = (method: string, path: string, body?: unknown) =>
  inNs("curl", ["-sS", "-X", method, `http://127.0.0.1:8500${path}`, ...(body ? ["-H", "content-type: application/json", "-d", JSON.stringify(body)] : [])]);

beforeAll(async () => {
  execFileSync("ip", ["netns", "add", ns]);
  execFileSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  writeFileSync(`/etc/netns/${ns}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n");
  // The server as a homelab host runs it: DNS on 127.0.0.1:53, inside the namespace.
  const server = startInNs([process.execPath, join(root, "dist/src/main.js"), "--in-memory", "--dns-listen", "127.0.0.1:53", "--http-listen", "127.0.0.1:8500", "--zones-dir", work]);
  let log = "";
  server.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  await until("the server", () => log.includes("HTTP API listening"));
  // The app instance: an HTTP server whose health answer is read from a file the test flips.
  writeFileSync(statusFile, "200");
  const app = startInNs([
    process.execPath,
    "-e",
    `require("http").createServer((q, s) => { const c = Number(require("fs").readFileSync(${JSON.stringify(statusFile)}, "utf8")); s.writeHead(q.url === "/health" ? c : 200); s.end("hello from web-api"); }).listen(8080, "127.0.0.1", () => console.log("up"));`,
  ]);
  let appOut = "";
  app.stdout!.on("data", (d: Buffer) => (appOut += d.toString()));
  await until("the app", () => appOut.includes("up"));
  const r = api("PUT", "/v1/services/web-api-1", { name: "web-api", address: "127.0.0.1", port: 8080, healthEndpoint: "/health", healthCheckInterval: 1000 });
  expect(r.out).toContain('"id":"web-api-1"');
}, 30_000);

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  spawnSync("ip", ["netns", "del", ns]);
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe("unmodified apps resolving through us", () => {
  it("getent (glibc), curl and Node's fetch reach the healthy instance by name", async () => {
    await until("web-api to resolve", () => inNs("getent", ["hosts", "web-api.service.home.arpa"]).code === 0);
    expect(inNs("getent", ["hosts", "web-api.service.home.arpa"]).out).toMatch(/^127\.0\.0\.1\s+web-api\.service\.home\.arpa/);
    expect(inNs("curl", ["-sS", "http://web-api.service.home.arpa:8080/"]).out).toBe("hello from web-api");
    const node = inNs(process.execPath, ["-e", `fetch("http://web-api.service.home.arpa:8080/").then(r => r.text()).then(t => console.log(t))`]);
    expect(node.out.trim()).toBe("hello from web-api");
  });

  it("stops resolving it once it is unhealthy, and resolves it again when it recovers", async () => {
    writeFileSync(statusFile, "500");
    await until("web-api to disappear", () => inNs("getent", ["hosts", "web-api.service.home.arpa"]).code !== 0);
    expect(inNs("curl", ["-sS", "http://web-api.service.home.arpa:8080/"]).code).not.toBe(0);
    writeFileSync(statusFile, "200");
    await until("web-api to come back", () => inNs("getent", ["hosts", "web-api.service.home.arpa"]).code === 0);
  });
});
