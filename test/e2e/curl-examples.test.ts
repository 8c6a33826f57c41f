// The built server, started as the README starts it, driven by the curl scripts in examples/curl.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root, startBuiltServer, type BuiltServer } from "./built-server.js";

let server: BuiltServer;
let url: string;

beforeAll(async () => {
  server = await startBuiltServer({ HD_ADMIN_TOKEN: "e2e-admin-token" });
  url = server.url;
});
afterAll(() => server.stop());

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
