// Debian's VictoriaMetrics with examples/consul-clients/victoriametrics.yml, its consul_sd_configs pointed at the
// built server: it reads /v1/agent/self, then /v1/catalog/services and /v1/health/service/<name> as blocking
// queries, and its targets are exactly our passing instances tagged "metrics", labelled from tags and metadata. A
// failing one leaves, a new one joins and a deregistered one leaves, each within a refresh. The instances register
// through the Consul agent API, with TTL checks, and are HTTP servers on loopback that VictoriaMetrics scrapes.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, closedPort, startPeer } from "../helpers.js";
import { startBuiltServer, type BuiltServer } from "./built-server.js";
import { instancesOf, untilTargets, type ScrapeTarget } from "./scrape-targets.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/consul-clients/victoriametrics.yml", import.meta.url));
let server: BuiltServer;
let vm: ChildProcess;
let vmUrl: string;
let dir: string;
const peers: Awaited<ReturnType<typeof startPeer>>[] = [];

const until = (what: string, ok: (t: ScrapeTarget[]) => boolean, ms?: number) => untilTargets(vmUrl, what, ok, ms);
const instances = instancesOf;
const at = (i: number) => `127.0.0.1:${peers[i]!.port}`;

/** Consul's way: the agent API, a TTL check that starts passing. */
const register = (id: string, peer: number, tags: string[]) =>
  api(server.url, "PUT", "/v1/agent/service/register", { Name: "exporter", ID: id, Address: "127.0.0.1", Port: peers[peer]!.port, Tags: tags, Meta: { team: "ops" }, Check: { TTL: "60s", Status: "passing" } });

beforeAll(async () => {
  server = await startBuiltServer();
  for (let i = 0; i < 4; i++) peers.push(await startPeer((_req, res) => res.end("up 1\n")));
  expect((await register("exp-1", 0, ["metrics", "prod"])).status).toBe(200);
  expect((await register("exp-2", 1, ["metrics"])).status).toBe(200);
  expect((await register("quiet", 2, ["prod"])).status).toBe(200); // no "metrics" tag: the example's tags filter leaves it out
  dir = await mkdtemp(join(tmpdir(), "hd-victoriametrics-"));
  const config = (await readFile(EXAMPLE, "utf8")).replace("127.0.0.1:8500", new URL(server.url).host).replace("scrape_interval: 15s", "scrape_interval: 1s");
  await writeFile(join(dir, "scrape.yml"), config);
  const port = await closedPort();
  vmUrl = `http://127.0.0.1:${port}`;
  vm = spawn(
    "victoria-metrics",
    [`-promscrape.config=${join(dir, "scrape.yml")}`, `-storageDataPath=${join(dir, "data")}`, `-httpListenAddr=127.0.0.1:${port}`, "-promscrape.consulSDCheckInterval=1s"],
    { stdio: "ignore" },
  );
});
afterAll(async () => {
  vm?.kill("SIGKILL");
  await server?.stop();
  for (const p of peers) await p.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("VictoriaMetrics consul_sd_configs, as in examples/consul-clients", () => {
  it("scrapes exactly our passing instances tagged metrics, labelled as Consul's would be", async () => {
    const t = await until("the two tagged instances", (x) => x.length === 2 && x.every((y) => y.health === "up"));
    expect(instances(t)).toEqual([at(0), at(1)].sort());
    const one = t.find((x) => x.labels.instance === at(0))!;
    expect(one.labels).toMatchObject({ job: "homelab-consul", service: "exporter", tags: ",metrics,prod,", team: "ops" });
    expect(one.discoveredLabels).toMatchObject({ __meta_consul_dc: "homelab", __meta_consul_health: "passing", __meta_consul_service_id: "exp-1", __meta_consul_service_port: String(peers[0]!.port) });
    // It watches through blocking queries (catalog/services and each service's health), not by polling.
    await expect.poll(async () => (await api(server.url, "GET", "/v1/stats")).body.blockingQueries).toBeGreaterThanOrEqual(2);
  });

  it("drops an instance whose check fails, takes a new one and drops a deregistered one, within a refresh", async () => {
    expect((await api(server.url, "PUT", "/v1/agent/check/fail/service:exp-2")).status).toBe(200);
    await until("exp-2 gone", (x) => instances(x).join() === at(0));
    expect((await register("exp-4", 3, ["metrics"])).status).toBe(200);
    await until("exp-4 in", (x) => instances(x).join() === [at(0), at(3)].sort().join());
    expect((await api(server.url, "PUT", "/v1/agent/service/deregister/exp-1")).status).toBe(200);
    await until("exp-1 gone", (x) => instances(x).join() === at(3));
  });
});
