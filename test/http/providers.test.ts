// GET /v1/prometheus/targets, the shape Prometheus' http_sd_configs reads: one group per healthy instance, our
// query filters, labels under __meta_homelab_ with metadata keys made into label names.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { labelName } from "../../src/http/providers.js";
import { api, startTestServer } from "../helpers.js";

let server: ServerHandle;
beforeAll(async () => {
  server = await startTestServer();
  await api(server.url, "POST", "/v1/services/bulk", {
    register: [
      { id: "node-1", name: "node-exporter", version: "1.8.0", address: "10.0.0.1", port: 9100, tags: ["prod", "zone=eu"], metadata: { "team.name": "ops", "9lives": "x" } },
      { id: "node-2", name: "node-exporter", address: "fd00::2", port: 9100 },
      { id: "web-1", name: "web", address: "10.0.0.3", port: 80, tags: ["prod"] },
    ],
  });
  await api(server.url, "PUT", "/v1/services/web-1/maintenance", { enable: true, reason: "upgrade" });
});
afterAll(() => server.stop());

describe("GET /v1/prometheus/targets", () => {
  it("answers one target group per healthy instance, as JSON, with labels Prometheus accepts", async () => {
    const r = await api(server.url, "GET", "/v1/prometheus/targets?name=node-exporter");
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.body).toEqual([
      {
        targets: ["10.0.0.1:9100"],
        labels: {
          __meta_homelab_service: "node-exporter",
          __meta_homelab_id: "node-1",
          __meta_homelab_version: "1.8.0",
          __meta_homelab_node: "test-node",
          __meta_homelab_address: "10.0.0.1",
          __meta_homelab_port: "9100",
          __meta_homelab_health: "healthy",
          __meta_homelab_tags: ",prod,zone=eu,",
          __meta_homelab_meta_team_name: "ops",
          __meta_homelab_meta__9lives: "x",
        },
      },
      { targets: ["[fd00::2]:9100"], labels: expect.objectContaining({ __meta_homelab_id: "node-2", __meta_homelab_tags: "" }) },
    ]);
    for (const group of r.body) for (const name of Object.keys(group.labels)) expect(name).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
  });

  it("leaves out instances in maintenance or failing, and takes our filters", async () => {
    expect((await api(server.url, "GET", "/v1/prometheus/targets?tag=prod")).body.map((g: { labels: { __meta_homelab_id: string } }) => g.labels.__meta_homelab_id)).toEqual(["node-1"]);
    expect((await api(server.url, "GET", "/v1/prometheus/targets")).body).toHaveLength(2);
    expect((await api(server.url, "GET", "/v1/prometheus/targets?tags=prod")).status).toBe(400);
  });

  it("makes any metadata key a label name", () => {
    expect(["team.name", "9lives", "a-b/c", "ok_1"].map(labelName)).toEqual(["team_name", "_9lives", "a_b_c", "ok_1"]);
  });
});
