// The built server, started as the README starts it, driven by the curl scripts in examples/curl.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort } from "../helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
let child: ChildProcess;
let url: string;

beforeAll(async () => {
  const port = await closedPort();
  url = `http://127.0.0.1:${port}`;
  child = spawn("npm", ["start", "--silent", "--", "--in-memory"], {
    cwd: root,
    env: { ...process.env, HD_HTTP_LISTEN: `127.0.0.1:${port}`, HD_ADMIN_TOKEN: "e2e-admin-token" },
    stdio: ["ignore", "pipe", "inherit"],
    detached: true, // its own process group: npm, the shell and node stop together
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 10_000;
  while (!out.includes("HTTP API listening")) {
    if (Date.now() > end) throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(-child.pid!, "SIGTERM");
  await exited;
});

function script(name: string, args: string[] = [], token = "e2e-admin-token") {
  const r = spawnSync("sh", [`${root}/examples/curl/${name}`, ...args], {
    encoding: "utf8",
    env: { ...process.env, HD_URL: url, HD_ADMIN_TOKEN: token },
  });
  return { status: r.status, json: r.stdout.trim() ? (JSON.parse(r.stdout) as any) : undefined, stdout: r.stdout };
}

describe("examples/curl against the built server", () => {
  it("register.sh registers, query.sh finds it", () => {
    const reg = script("register.sh");
    expect(reg.status).toBe(0);
    expect(reg.json).toMatchObject({ id: "web-api-1", name: "web-api", healthStatus: "healthy" });
    const q = script("query.sh");
    expect(q.status).toBe(0);
    expect(q.json.services.map((s: { id: string }) => s.id)).toEqual(["web-api-1"]);
  });

  it("bulk.sh registers static services in one call", () => {
    const r = script("bulk.sh");
    expect(r.status).toBe(0);
    expect(r.json.registered.map((s: { id: string }) => s.id)).toEqual(["nas", "printer"]);
  });

  it("deregister.sh removes it; a wrong token fails with 401 and changes nothing", () => {
    const denied = script("deregister.sh", ["web-api-1"], "wrong-token-123");
    expect(denied.status).not.toBe(0);
    expect(denied.json.error.code).toBe("unauthorized");
    expect(script("deregister.sh", ["web-api-1"]).json.id).toBe("web-api-1");
    expect(script("query.sh").json.count).toBe(0);
    expect(script("deregister.sh", ["web-api-1"]).json.error.code).toBe("not_found");
  });
});
