// The built server, started as the README starts it, driven by the curl scripts in examples/curl.
import { spawn, spawnSync } from "node:child_process";
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

  it("watch.sh prints the answer, then the next one when an instance of the name arrives", async () => {
    const watch = spawn("sh", [`${root}/examples/curl/watch.sh`, "watched", "2"], { env: { ...process.env, HD_URL: url } });
    let out = "";
    watch.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => watch.once("exit", resolve));
    await expect.poll(() => out.split("\n").length, { timeout: 10_000 }).toBe(2); // the first answer, and waiting
    const reg = await fetch(`${url}/v1/services/watched-1`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: "Bearer e2e-admin-token" },
      body: JSON.stringify({ name: "watched", address: "10.0.0.9", port: 80 }),
    });
    expect(reg.status).toBe(201);
    expect(await exited).toBe(0);
    const answers = out.trim().split("\n").map((line) => JSON.parse(line) as { count: number; services: { id: string }[] });
    expect(answers.map((a) => a.services.map((s) => s.id))).toEqual([[], ["watched-1"]]);
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
