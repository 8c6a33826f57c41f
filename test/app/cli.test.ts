// The built CLI as an operator runs it: help, a bad setting (exit 2), startup logs, and SIGTERM (exit 0).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { closedPort } from "../helpers.js";

const main = fileURLToPath(new URL("../../dist/src/main.js", import.meta.url));

describe("the CLI", () => {
  it("prints help and its version", () => {
    const help = spawnSync(process.execPath, [main, "--help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("Usage: homelab-discovery [serve] [options]");
    const version = spawnSync(process.execPath, [main, "--version"], { encoding: "utf8" });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("exits 2 naming the setting on a bad value", () => {
    const r = spawnSync(process.execPath, [main, "--http-listen", "nowhere"], { encoding: "utf8", env: { ...process.env, HD_CACHE_TTL: "-1" } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--http-listen");
    expect(r.stderr).toContain("HD_CACHE_TTL");
  });

  it("starts, serves, logs JSON lines and stops with exit 0 on SIGTERM", async () => {
    const port = await closedPort();
    const child = spawn(process.execPath, [main, "--in-memory", "--node-id", "cli-test"], {
      env: { ...process.env, HD_HTTP_LISTEN: `127.0.0.1:${port}`, HD_DNS_LISTEN: "127.0.0.1:0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes("HTTP API listening"));
    const lines = out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.msg === "homelab-discovery starting")).toMatchObject({ nodeId: "cli-test", domain: "home.arpa" });
    expect(lines.find((l) => l.msg === "HTTP API listening")).toMatchObject({ component: "http", address: `127.0.0.1:${port}` });
    expect(lines.find((l) => l.msg === "DNS listening")).toMatchObject({ component: "dns", transports: ["udp", "tcp"], domain: "home.arpa" });

    const res = await fetch(`http://127.0.0.1:${port}/v1/status`);
    expect(((await res.json()) as { nodeId: string }).nodeId).toBe("cli-test");

    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const t0 = Date.now();
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(out).toContain('"msg":"stopped"');
  });

  it("exits 1 naming the file and line of a broken zone file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-cli-zones-"));
    writeFileSync(join(dir, "home.arpa.zone"), "@ IN SOA ns hostmaster 1 1h 10m 1w 30\nnas IN A 10.0.0.300\n");
    const r = spawnSync(process.execPath, [main, "--in-memory", "--zones-dir", dir, "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("home.arpa.zone:2: ");
    expect(r.stdout).toContain("10.0.0.300");
  });

  it("warns when the API listens beyond loopback without an admin token", async () => {
    const port = await closedPort();
    const child = spawn(process.execPath, [main, "--in-memory", "--http-listen", `0.0.0.0:${port}`, "--dns-listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes("HTTP API listening"));
    expect(out).toContain("without --admin-token");
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for the server");
    await new Promise((r) => setTimeout(r, 20));
  }
}
