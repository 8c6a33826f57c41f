// The compose example's app, run as it is written there, against a real server: it registers itself,
// heartbeats, and deregisters on SIGTERM.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ServerHandle } from "../../src/app/server.js";
import { api, closedPort, startTestServer } from "../helpers.js";

let server: ServerHandle;
const compose = parse(readFileSync(fileURLToPath(new URL("../../examples/compose/compose.yaml", import.meta.url)), "utf8")) as {
  services: { whoami: { command: string[] }; discovery: { environment: Record<string, string> } };
};
const token = compose.services.discovery.environment.HD_ADMIN_TOKEN!;

beforeAll(async () => {
  server = await startTestServer({ adminToken: token });
});
afterAll(() => server.stop());

describe("examples/compose", () => {
  it("runs the app container's script: registration, heartbeat, deregistration on SIGTERM", async () => {
    const [cmd, ...args] = compose.services.whoami.command;
    expect(cmd).toBe("node");
    const port = await closedPort();
    const app = spawn(process.execPath, args, { env: { ...process.env, HD_URL: server.url, HD_ADMIN_TOKEN: token, PORT: String(port), HEARTBEAT_MS: "200" }, stdio: "inherit" });
    const find = async () => (await api(server.url, "GET", "/v1/services?name=whoami")).body.services as { id: string; healthStatus: string; port: number }[];
    const end = Date.now() + 10_000;
    let services = await find();
    while ((services.length === 0 || services[0]!.healthStatus !== "healthy") && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      services = await find();
    }
    expect(services).toHaveLength(1);
    expect(services[0]).toMatchObject({ healthStatus: "healthy", port });
    // Removed behind its back, the app registers again at its next heartbeat.
    await api(server.url, "DELETE", `/v1/services/${services[0]!.id}`, undefined, { authorization: `Bearer ${token}` });
    const back = Date.now() + 5_000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      services = await find();
    } while ((services.length === 0 || services[0]!.healthStatus !== "healthy") && Date.now() < back);
    expect(services).toHaveLength(1);
    const exited = new Promise((resolve) => app.once("exit", resolve));
    app.kill("SIGTERM");
    await exited;
    expect(await find()).toEqual([]);
  });
});
