// Debian's Caddy 2.6 with examples/caddy/Caddyfile, in a network namespace whose only resolver is our server (so
// no lookup of Caddy's can leave the machine): `dynamic srv` routes to the healthy instances only, and follows a
// change within its refresh. Needs root and iproute2 (installed by .ci/run), as test/e2e/netns.test.ts.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root } from "./built-server.js";

const ns = `hd-caddy-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "hd-caddy-"));
const children: ChildProcess[] = [];
const EXAMPLE = fileURLToPath(new URL("../../examples/caddy/Caddyfile", import.meta.url));

function inNs(cmd: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync("ip", ["netns", "exec", ns, cmd, ...args], { encoding: "utf8", timeout: 15_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}
function startInNs(args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn("ip", ["netns", "exec", ns, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}
async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const api = (method: string, path: string, body?: unknown) =>
  inNs("curl", ["-sS", "-X", method, `http://127.0.0.1:8500${path}`, ...(body ? ["-H", "content-type: application/json", "-d", JSON.stringify(body)] : [])]);
/** Who answered ten requests through Caddy. */
const through = () => new Set(Array.from({ length: 10 }, () => inNs("curl", ["-sS", "--max-time", "3", "http://127.0.0.1:8080/"]).out));

beforeAll(async () => {
  execFileSync("ip", ["netns", "add", ns]);
  execFileSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  writeFileSync(`/etc/netns/${ns}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
  const server = startInNs([process.execPath, join(root, "dist/src/main.js"), "--in-memory", "--dns-listen", "127.0.0.1:8600", "--http-listen", "127.0.0.1:8500", "--zones-dir", work]);
  await until("the server", () => server.out().includes("HTTP API listening"));
  for (const [name, port] of [["web-a", 9001], ["web-b", 9002]] as const) {
    const app = startInNs([process.execPath, "-e", `require("http").createServer((q, s) => s.end(${JSON.stringify(name)})).listen(${port}, "127.0.0.1", () => console.log("up"));`]);
    await until(name, () => app.out().includes("up"));
    // TTL checks: the test says which instance is healthy.
    expect(api("PUT", `/v1/services/${name}`, { name: "web", address: "127.0.0.1", port, ttl: 60_000 }).out).toContain(`"id":"${name}"`);
    api("PUT", `/v1/services/${name}/heartbeat`);
  }
  writeFileSync(join(work, "Caddyfile"), readFileSync(EXAMPLE, "utf8").replace("refresh 5s", "refresh 1s"));
  const caddy = startInNs(["caddy", "run", "--config", join(work, "Caddyfile"), "--adapter", "caddyfile"]);
  await until("caddy", () => inNs("curl", ["-sS", "--max-time", "2", "http://127.0.0.1:8080/"]).code === 0 || caddy.child.exitCode !== null);
  expect(caddy.child.exitCode, caddy.out()).toBeNull();
}, 60_000);

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  spawnSync("ip", ["netns", "del", ns]);
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe("Caddy's reverse_proxy with dynamic srv, as in examples/caddy", () => {
  it("spreads requests over the healthy instances", async () => {
    await until("both instances behind Caddy", () => through().size === 2);
    expect([...through()].sort()).toEqual(["web-a", "web-b"]);
  });

  it("stops routing to an instance that turns unhealthy, and routes to it again when it recovers", async () => {
    api("PUT", "/v1/services/web-b/heartbeat", { status: "unhealthy" });
    await until("web-b out", () => {
      const seen = through();
      return seen.size === 1 && seen.has("web-a");
    });
    api("PUT", "/v1/services/web-b/heartbeat");
    await until("web-b back", () => through().size === 2);
  });
});
